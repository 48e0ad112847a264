"""The simulator's live state: devices, queue members, queues and the callers waiting in them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pbx.simulator.channels import STATE_DOWN, STATE_RINGING, SimulatedChannel
from pbx.simulator.clock import Timer


@dataclass
class Device:
    interface: str
    extension: str = ""
    name: str = ""
    company: str = ""
    reachable: bool = True
    channels: list[SimulatedChannel] = field(default_factory=list)
    state: str = "NOT_INUSE"

    def derived_state(self) -> str:
        if not self.reachable:
            return "UNAVAILABLE"
        # As Asterisk's ast_state_chan2dev: a Down channel leaves the device NOT_INUSE.
        ringing = any(ch.state == STATE_RINGING for ch in self.channels)
        busy = any(ch.state not in (STATE_DOWN, STATE_RINGING) for ch in self.channels)
        if ringing and busy:
            return "RINGINUSE"
        if ringing:
            return "RINGING"
        return "INUSE" if busy else "NOT_INUSE"


@dataclass
class Member:
    queue: str
    interface: str
    name: str
    state_interface: str
    membership: str = "static"
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    last_pause: int = 0
    login_time: int = 0
    calls_taken: int = 0
    last_call: int = 0
    in_call: bool = False


@dataclass
class QueueCall:
    """A caller in a queue, from joining until connected, abandoned or hung up."""

    queue: str
    channel: SimulatedChannel
    entered: float
    orig_position: int
    caller_num: str
    patience: Timer | None = None
    retry: Timer | None = None
    ring: Timer | None = None
    agent_channel: SimulatedChannel | None = None
    member: Member | None = None
    ring_started: float = 0.0
    connected_at: float = 0.0
    tried: set[str] = field(default_factory=set)
    bridge_id: str = ""


@dataclass
class QueueState:
    name: str
    company: str
    exten: str
    strategy: str
    service_level: int
    weight: int
    members: dict[str, Member] = field(default_factory=dict)
    callers: list[QueueCall] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    within_service_level: int = 0
    hold_total: float = 0.0
    talk_total: float = 0.0

    def position(self, call: QueueCall) -> int:
        return self.callers.index(call) + 1
