"""The gateway interface in domain words, its result types and its one error hierarchy."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pbx.gateway.events import PbxEvent
from pbx.gateway.frames import Frame, check_ami_value

# A channel or device as ChanSpy's first argument: `Tech/resource`, nothing the dialplan's
# argument parser would read as a separator, a quote or an escape.
SPY_TARGET_PATTERN = r"^[A-Za-z0-9_-]+/[^\s,\"'\\|]+\Z"
_SPY_TARGET = re.compile(SPY_TARGET_PATTERN)


@dataclass(frozen=True)
class PbxAddress:
    """Where one PBX's AMI is and how to log in; `name` is the PBX's, for logs."""

    name: str
    host: str
    port: int
    username: str
    secret: str
    timeout: float = 5.0

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"PbxAddress(name={self.name!r}, host={self.host!r}, port={self.port})"


class PbxError(Exception):
    """Anything the PBX could not do."""


class PbxUnavailable(PbxError):
    """The PBX could not be reached, refused the login, dropped the connection or timed out."""


class PbxActionFailed(PbxError):
    """The PBX answered the action with `Response: Error`; `message` is its `Message:` text."""

    def __init__(self, action: str, message: str):
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


@dataclass(frozen=True)
class OriginateRequest:
    channel: str  # the device to ring first, e.g. PJSIP/200
    context: str  # where, once answered, `exten` is dialled
    exten: str
    priority: int = 1
    caller_id: str | None = None
    timeout_ms: int = 30000
    variables: Mapping[str, str] = field(default_factory=dict)


# ChanSpy's options per way of joining an agent's call (apps/app_chanspy.c): `q` no beep or
# channel name spoken, `E` hang up when the spied-on channel does, `S` hang up when no channel
# is left to spy on (the call ended while the supervisor's phone rang); `w` whisper to the agent
# only, `B` barge: talk to both parties.
SPY_OPTIONS = {"listen": "qES", "whisper": "qwES", "barge": "qBES"}


@dataclass(frozen=True)
class SpyRequest:
    device: str  # the supervisor's phone, rung first, e.g. PJSIP/250
    channel: str  # the agent's live channel, e.g. PJSIP/201-0000001a
    mode: str  # a key of SPY_OPTIONS
    caller_id: str | None = None  # what the supervisor's phone shows
    timeout_ms: int = 30000


def spy_data(request: SpyRequest) -> str:
    """ChanSpy's `Data`: `<channel>,<options>`; ValueError for anything else."""
    if request.mode not in SPY_OPTIONS:
        raise ValueError(f"unknown spy mode {request.mode!r}")
    for name, value in (("device", request.device), ("channel", request.channel)):
        check_ami_value(name, value)
        if not _SPY_TARGET.match(value):
            raise ValueError(f"{name} {value!r} is not a Tech/resource channel name")
    return f"{request.channel},{SPY_OPTIONS[request.mode]}"


@dataclass(frozen=True)
class QueueMemberRow:
    queue: str
    interface: str  # `Location` in QueueStatus rows, `Interface` in events
    member_name: str
    state_interface: str
    status: int  # AST_DEVICE_* number as Asterisk sends it
    paused: bool
    paused_reason: str
    in_call: bool
    calls_taken: int


@dataclass(frozen=True)
class QueueCallerRow:
    queue: str
    position: int
    channel: str
    unique_id: str
    caller_id_num: str
    wait_seconds: int


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    unique_id: str
    linked_id: str
    state: str
    caller_id_num: str
    connected_line_num: str
    exten: str
    context: str
    application: str
    duration_seconds: int


@dataclass(frozen=True)
class RegistrationContact:
    aor: str
    uri: str
    status: str  # Reachable, Unreachable, Created, …


@dataclass(frozen=True)
class PbxSnapshot:
    taken_at: datetime
    device_states: dict[str, str]  # interface → AST device state name (NOT_INUSE, INUSE, …)
    queue_members: list[QueueMemberRow]
    queue_callers: list[QueueCallerRow]
    channels: list[ChannelRow]
    contacts: list[RegistrationContact]


# An AMI event: a read-only mapping with case-insensitive keys whose `pairs` keep every header in
# wire order (repeated ChanVariable, Variable …); `get_all(key)` gives a repeated key's values.
EventHandler = Callable[[Frame], None]


class PbxActions(Protocol):
    """The actions on queue members, DND and calls to spy on: what the services ask of the PBX
    (the gateway, or a wrapper that records its answers). Failures raise PbxError."""

    def spy(self, request: SpyRequest) -> str:
        """Rings the supervisor's device; once answered it listens to, whispers to or barges
        into the agent's channel. Returns the PBX's answer (the call is queued, not done)."""

    # The queue actions return the PBX's answer (`Message:`), e.g. "Added interface to queue".
    def queue_pause(
        self, *, interface: str, paused: bool, queue: str | None = None, reason: str = ""
    ) -> str: ...

    def queue_add(
        self,
        *,
        queue: str,
        interface: str,
        member_name: str = "",
        state_interface: str = "",
        penalty: int = 0,
        paused: bool = False,
    ) -> str: ...

    def queue_remove(self, *, queue: str, interface: str) -> str: ...

    def set_dnd(self, *, key: str, enabled: bool, reason: str = "") -> str:
        """DND on or off for one DND key (pbx.directory.dnd: the extension, or prefix + extension);
        returns the PBX's answers to the AstDB and the device-state actions."""


class PbxGateway(PbxActions, Protocol):
    """What the service asks of the PBX. Every call has a timeout; failures raise PbxError."""

    def originate(self, request: OriginateRequest) -> bool: ...

    def ping(self) -> None: ...

    def snapshot(self) -> PbxSnapshot: ...

    def live_events(
        self,
        handler: Callable[[PbxEvent], None],
        *,
        on_disconnect: Callable[[], None] | None = None,
    ) -> Callable[[], None]:
        """Every event from now on as a typed event (pbx/gateway/events.py), on the gateway's
        thread; connects if needed. Returns an unsubscribe function."""

    def close(self) -> None: ...
