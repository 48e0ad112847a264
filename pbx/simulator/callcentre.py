"""The call-centre model: callers queue, agents ring, answer, talk and pause, in simulated time."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from dataclasses import dataclass

from pbx.simulator import events as ev
from pbx.simulator.channels import (
    STATE_RING,
    STATE_RINGING,
    STATE_UP,
    ChannelFactory,
    SimulatedChannel,
)
from pbx.simulator.clock import Scheduler, Timer
from pbx.simulator.config import Behaviour, CentreConfig
from pbx.simulator.log_files import CdrRow, History, caller_id
from pbx.simulator.protocol import AmiMessage
from pbx.simulator.state import Device, Member, QueueCall, QueueState


def _pause_device(member: Member) -> str:
    return f"Queue:{member.queue}_pause_{member.interface}"


def _paused_state(member: Member) -> str:
    return "INUSE" if member.paused else "NOT_INUSE"


class SimulatorError(Exception):
    """A request the simulated PBX refuses, as a real one would."""


class NoSuchQueue(SimulatorError):
    pass


class MemberExists(SimulatorError):
    pass


class MemberNotFound(SimulatorError):
    pass


class MemberNotDynamic(SimulatorError):
    """A member of queues.conf: Asterisk's QueueRemove refuses it."""


@dataclass(frozen=True)
class OriginateSpec:
    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    data: str = ""
    caller_id: str = ""
    timeout: float = 30.0
    action_id: str | None = None
    channel_id: str = ""
    report: bool = True  # OriginateResponse is only sent for Async originates


@dataclass
class Spy:
    """A channel running ChanSpy(<prefix>,<options>) and the channel it spies on now."""

    channel: SimulatedChannel
    spec: OriginateSpec
    prefix: str
    options: str
    target: SimulatedChannel | None = None


SPY_SCAN_SECONDS = 0.1  # app_chanspy waits 100 ms for a digit before each scan of the channels


def chanspy_arguments(data: str) -> tuple[str, str]:
    """`PJSIP/201-0000001a,qES` → (prefix, option letters); `all` or nothing spies on any
    channel; an option's `(argument)` is dropped."""
    prefix, _, options = data.partition(",")
    prefix = prefix.strip()
    letters, depth = [], 0
    for ch in options.partition(",")[0]:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif not depth:
            letters.append(ch)
    return ("" if prefix == "all" else prefix), "".join(letters)


def parse_caller_id(value: str) -> tuple[str, str]:
    """`"Name" <num>` → (name, num); a bare value is a number."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].partition("<")
        return name.strip().strip('"'), num.strip()
    return "", value


class CallCentre:
    """The PBX's state and behaviour; not thread-safe, the server serialises access to it."""

    def __init__(
        self,
        config: CentreConfig,
        *,
        behaviour: Behaviour | None = None,
        seed: int | None = None,
        start_time: float | None = None,
        history: History | None = None,
        cdr_time_zone: str = "UTC",
    ):
        self.config = config
        self.behaviour = behaviour or Behaviour()
        self.rng = random.Random(seed)
        self.clock = Scheduler(time.time() if start_time is None else start_time)
        self.started = self.clock.now
        self.history = history or History()
        # Asterisk writes Master.csv in one zone for the whole PBX (its own, or UTC).
        self.cdr_time_zone = cdr_time_zone
        self.companies = {c.slug: c for c in config.companies}
        self.devices: dict[str, Device] = {}
        self.custom_states: dict[str, str] = {}
        self.queues: dict[str, QueueState] = {}
        self.channels: dict[str, SimulatedChannel] = {}
        self.astdb: dict[tuple[str, str], str] = {}
        self.globals: dict[str, str] = {}
        self.spies: dict[str, Spy] = {}  # spying channel name → its ChanSpy
        self._factory = ChannelFactory()
        self._outbox: list[AmiMessage] = []
        self._sequence = itertools.count()
        self._dispatch_timer: Timer | None = None
        self._pause_timers: dict[str, Timer] = {}
        # app_queue's own devices (`Queue:<queue>_avail`, `Queue:<queue>_pause_<interface>`,
        # `Queue:<queue>`), listed by DeviceStateList and sent as DeviceStateChange on change
        self.queue_devices: dict[str, str] = {}
        # manager.conf `timestampevents = yes`: a `Timestamp` header after `Privilege`
        self.timestamp_events = False

        trunk = self.behaviour.trunk
        self.devices[trunk] = Device(trunk)
        for d in config.devices:
            self.devices[d.interface] = Device(
                d.interface, d.extension, d.name, d.company, d.reachable
            )
            self.devices[d.interface].state = self.devices[d.interface].derived_state()
        login = int(self.started)
        for q in config.queues:
            state = QueueState(
                q.name, q.company, q.exten or q.name, q.strategy, q.service_level, q.weight
            )
            for m in q.members:
                state.members[m.interface] = Member(
                    queue=q.name,
                    interface=m.interface,
                    name=m.name or m.interface,
                    state_interface=m.interface,
                    membership=m.membership,
                    penalty=m.penalty,
                    paused=m.paused,
                    paused_reason=m.paused_reason if m.paused else "",
                    login_time=login,
                )
            self.queues[q.name] = state
            for member in state.members.values():
                self.queue_devices[_pause_device(member)] = _paused_state(member)
            self.queue_devices[f"Queue:{q.name}_avail"] = self._avail_state(state)
        if self.behaviour.call_rate > 0:
            self._schedule_arrival()
        if self.behaviour.pauses_per_agent_hour > 0:
            for interface in sorted(self._agent_interfaces()):
                self._schedule_pause(interface)

    @classmethod
    def from_directory(
        cls,
        *,
        behaviour: Behaviour | None = None,
        seed: int | None = None,
        start_time: float | None = None,
        history: History | None = None,
        pbx: str | None = None,
    ) -> CallCentre:
        """A call centre for the companies, queues, members and terminals in the database; with
        `pbx`, those of that PBX only."""
        from django.conf import settings

        from pbx.simulator.from_directory import config_from_directory

        return cls(
            config_from_directory(pbx),
            behaviour=behaviour,
            seed=seed,
            start_time=start_time,
            history=history,
            cdr_time_zone=settings.CDR_TIME_ZONE,
        )

    # -- time and events ----------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now

    def step(self, seconds: float = 0.0) -> None:
        """Advances simulated time, running everything that falls due on the way."""
        self.clock.advance(seconds)

    def drain_events(self) -> list[AmiMessage]:
        out, self._outbox = self._outbox, []
        return out

    def _emit(self, message: AmiMessage) -> None:
        if self.timestamp_events:
            message = ev.with_timestamp(message, self.now)
        self._outbox.append(message)

    # -- app_queue's devices ---------------------------------------------------------------

    def _avail_state(self, q: QueueState) -> str:
        """As app_queue's num_available_members: INUSE when no member could take a call."""
        free = any(
            not m.paused and self.member_state(m) in ("NOT_INUSE", "UNKNOWN")
            for m in q.members.values()
        )
        return "NOT_INUSE" if free else "INUSE"

    def _queue_device(self, device: str, state: str) -> None:
        """A cached device state: DeviceStateChange only when it changes (as Asterisk)."""
        if self.queue_devices.get(device) == state:
            return
        self.queue_devices[device] = state
        self._emit(ev.device_state_change(device, state))

    def _update_avail(self, q: QueueState) -> None:
        self._queue_device(f"Queue:{q.name}_avail", self._avail_state(q))

    # -- queries -------------------------------------------------------------------------

    def device_states(self) -> dict[str, str]:
        states = {name: device.state for name, device in self.devices.items()}
        states.update(self.custom_states)
        states.update(self.queue_devices)
        return states

    def hints(self) -> list[tuple[str, str, str, str]]:
        """(exten, context, hint, device state) for every device with an extension."""
        return [
            (d.extension, self._context(d.company), d.interface, d.state)
            for d in self.devices.values()
            if d.extension
        ]

    def seconds_since(self, moment: float) -> int:
        """Whole seconds as Asterisk counts them: between whole-second timestamps."""
        return int(self.now) - int(moment)

    def member_state(self, member: Member) -> str:
        device = self.devices.get(member.state_interface)
        return device.state if device else "INVALID"

    def find_device(self, channel: str) -> Device | None:
        """The device a dial string like `PJSIP/200` names."""
        return self.devices.get(channel.split("@", 1)[0])

    def _context(self, company: str) -> str:
        found = self.companies.get(company)
        return found.dial_context if found else "from-internal"

    def _agent_interfaces(self) -> set[str]:
        return {
            m.interface
            for q in self.queues.values()
            for m in q.members.values()
            if m.state_interface in self.devices
        }

    def _members_of(self, interface: str, queue: str | None = None) -> list[Member]:
        return [
            q.members[interface]
            for q in self.queues.values()
            if interface in q.members and queue in (None, q.name)
        ]

    # -- channels and devices ------------------------------------------------------------

    def _open(
        self,
        device: str,
        *,
        linkedid: str = "",
        uniqueid: str = "",
        state: int = 0,
        **fields: object,
    ) -> SimulatedChannel:
        ch = self._factory.new(device, self.now, linkedid=linkedid, uniqueid=uniqueid)
        ch.language = self.behaviour.language
        for key, value in fields.items():
            setattr(ch, key, value)
        ch.state = state
        self.channels[ch.name] = ch
        if device in self.devices:
            self.devices[device].channels.append(ch)
        self._emit(ev.new_channel(ch))
        self._refresh(device)
        return ch

    def _set_state(self, ch: SimulatedChannel, state: int) -> None:
        ch.state = state
        if state == STATE_UP and ch.answered is None:
            ch.answered = self.now
        self._emit(ev.new_state(ch))
        self._refresh(ch.device)

    def _close(self, ch: SimulatedChannel, cause: int = 16) -> None:
        self.channels.pop(ch.name, None)
        device = self.devices.get(ch.device)
        if device and ch in device.channels:
            device.channels.remove(ch)
        self._emit(ev.hangup(ch, cause))
        self._refresh(ch.device)
        self.spies.pop(ch.name, None)
        for spy in [spy for spy in self.spies.values() if spy.target is ch]:
            self._spy_lost_target(spy)

    def _refresh(self, interface: str) -> None:
        device = self.devices.get(interface)
        if device is None:
            return
        state = device.derived_state()
        if state == device.state:
            return
        device.state = state
        self._emit(ev.device_state_change(interface, state))
        if device.extension:
            context = self._context(device.company)
            self._emit(ev.extension_status(device.extension, context, interface, state))
        for q in self.queues.values():
            members = [m for m in q.members.values() if m.state_interface == interface]
            for member in members:
                self._emit(ev.queue_member("QueueMemberStatus", member, state))
            if members:
                self._update_avail(q)

    def _bridge(self, first: SimulatedChannel, second: SimulatedChannel) -> str:
        bridge_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self._emit(ev.bridge_create(bridge_id))
        for count, ch in enumerate((first, second), start=1):
            ch.bridge_id = bridge_id
            self._emit(ev.bridge_enter(bridge_id, count, ch))
        return bridge_id

    def _unbridge(self, first: SimulatedChannel, second: SimulatedChannel) -> None:
        bridge_id = first.bridge_id
        for count, ch in ((1, first), (0, second)):
            self._emit(ev.bridge_leave(bridge_id, count, ch))
            ch.bridge_id = ""
        self._emit(ev.bridge_destroy(bridge_id))

    def _cdr(self, company: str, **fields: object) -> None:
        record = CdrRow(
            sequence=next(self._sequence),
            time_zone=self.cdr_time_zone,
            **fields,
        )
        self.history.cdr(record)

    # -- queue callers -------------------------------------------------------------------

    def _schedule_arrival(self) -> None:
        rate = self.behaviour.call_rate / 60.0
        self.clock.after(self.rng.expovariate(rate), self._arrival)

    def _arrival(self) -> None:
        self._schedule_arrival()
        queues = [q for q in self.queues.values() if q.weight > 0]
        if queues:
            queue = self.rng.choices(queues, weights=[q.weight for q in queues])[0]
            self.caller_arrives(queue.name)

    def _random_number(self) -> str:
        prefix = self.rng.choice(self.behaviour.caller_prefixes)
        return prefix + "".join(str(self.rng.randrange(10)) for _ in range(8))

    def caller_arrives(
        self, queue: str, caller_num: str | None = None, *, patience: float | None = None
    ) -> QueueCall:
        """An outside caller dials the queue; the queue answers and they wait their turn."""
        q = self.queues.get(queue)
        if q is None:
            raise NoSuchQueue(queue)
        b = self.behaviour
        number = caller_num or self._random_number()
        ch = self._open(
            b.trunk,
            state=STATE_RING,
            caller_num=number,
            context=b.inbound_context,
            exten=q.exten,
            application="Queue",
            app_data=f"{q.name},t",
        )
        self._set_state(ch, STATE_UP)
        call = QueueCall(q.name, ch, self.now, len(q.callers) + 1, number)
        q.callers.append(call)
        self._emit(ev.queue_caller_join(call, q))
        self._queue_device(f"Queue:{q.name}", "RINGING")
        self.history.queue_log(
            self.now, ch.uniqueid, q.name, "NONE", "ENTERQUEUE", "", number, call.orig_position
        )
        wait = patience if patience is not None else self.rng.uniform(*b.patience_seconds)
        call.patience = self.clock.after(wait, self._abandon, call)
        self._dispatch_soon()
        return call

    def _dispatch_soon(self) -> None:
        if self._dispatch_timer is None or self._dispatch_timer.cancelled:
            self._dispatch_timer = self.clock.after(0.0, self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_timer = None
        for q in self.queues.values():
            for call in list(q.callers):
                if call.agent_channel is None and call.retry is None:
                    member = self._pick_member(q, call)
                    if member is not None:
                        self._ring(call, member)

    def _pick_member(self, q: QueueState, call: QueueCall) -> Member | None:
        free = [
            m for m in q.members.values() if not m.paused and self.member_state(m) == "NOT_INUSE"
        ]
        untried = [m for m in free if m.interface not in call.tried]
        if not untried and free:
            call.tried.clear()
            untried = free
        if not untried:
            return None
        # rrmemory-like: lowest penalty, then whoever finished a call longest ago.
        ranked = sorted(untried, key=lambda m: (m.penalty, m.last_call, m.interface))
        return ranked[0]

    def _ring(self, call: QueueCall, member: Member) -> None:
        b = self.behaviour
        device = self.devices[member.state_interface]
        # As Asterisk: the new leg has no connected line and exten `s`; when it rings it has
        # taken the caller's exten and connected line, and says so in NewConnectedLine.
        agent = self._open(
            device.interface,
            linkedid=call.channel.linkedid,
            caller_num=device.extension,
            caller_name=device.name,
            context=self._context(device.company),
            exten="s",
            application="AppDial",
            app_data="(Outgoing Line)",
        )
        call.agent_channel, call.member, call.ring_started = agent, member, self.now
        call.tried.add(member.interface)
        agent.connected_num = call.caller_num
        agent.connected_name = call.channel.caller_name or call.caller_num
        agent.exten = call.channel.exten
        self._emit(ev.agent_called(call, member))
        self._emit(ev.dial_begin(call.channel, agent, member.interface.split("/", 1)[-1]))
        self._set_state(agent, STATE_RINGING)
        self._emit(ev.new_connected_line(agent))
        ring = self.rng.uniform(*b.ring_seconds)
        if self.rng.random() < b.answer_probability and ring < b.ring_timeout:
            call.ring = self.clock.after(ring, self._answer, call)
        else:
            call.ring = self.clock.after(b.ring_timeout, self._no_answer, call)

    def _end_ring(self, call: QueueCall, status: str) -> int:
        """Stops ringing the agent; returns the ring time in milliseconds."""
        agent, q = call.agent_channel, self.queues[call.queue]
        assert agent is not None
        if call.ring:
            call.ring.cancel()
        ring_ms = round((self.now - call.ring_started) * 1000)
        self._emit(ev.dial_end(call.channel, agent, status))
        # a ring the caller cancelled ends with cause 0, as Asterisk's
        self._close(agent, 0 if status == "CANCEL" else 16)
        self._cdr(
            q.company,
            src=call.caller_num,
            dst=q.exten,
            dcontext=self.behaviour.inbound_context,
            clid=caller_id("", call.caller_num),
            channel=call.channel.name,
            dstchannel=agent.name,
            lastapp="Queue",
            lastdata=f"{q.name},t",
            start=call.ring_started,
            answer=None,
            end=self.now,
            disposition="NO ANSWER",
            uniqueid=call.channel.uniqueid,
            linkedid=call.channel.linkedid,
        )
        call.agent_channel = call.member = call.ring = None
        return ring_ms

    def _no_answer(self, call: QueueCall) -> None:
        member = call.member
        assert member is not None
        ring_ms = round((self.now - call.ring_started) * 1000)
        self._emit(ev.agent_ring_no_answer(call, member, ring_ms))
        self._end_ring(call, "NOANSWER")
        self.history.queue_log(
            self.now, call.channel.uniqueid, call.queue, member.name, "RINGNOANSWER", ring_ms
        )
        call.retry = self.clock.after(self.behaviour.retry_seconds, self._retry, call)

    def _retry(self, call: QueueCall) -> None:
        call.retry = None
        self._dispatch_soon()

    def _answer(self, call: QueueCall) -> None:
        member, agent, q = call.member, call.agent_channel, self.queues[call.queue]
        assert member is not None
        assert agent is not None
        call.ring = None
        if call.patience:
            call.patience.cancel()
        hold = self.seconds_since(call.entered)
        ring = self.seconds_since(call.ring_started)
        member.in_call = True
        self._set_state(agent, STATE_UP)
        self._emit(ev.dial_end(call.channel, agent, "ANSWER"))
        position = q.position(call)
        q.callers.remove(call)
        self._emit(ev.queue_caller_leave(call, position, len(q.callers)))
        if not q.callers:
            self._queue_device(f"Queue:{q.name}", "NOT_INUSE")
        device = self.devices[member.state_interface]
        call.channel.connected_num, call.channel.connected_name = device.extension, device.name
        self._emit(ev.agent_connect(call, member, ring, hold))
        self._bridge(agent, call.channel)
        call.connected_at = self.now
        q.hold_total += hold
        if hold <= q.service_level:
            q.within_service_level += 1
        self.history.queue_log(
            self.now, call.channel.uniqueid, q.name, member.name, "CONNECT",
            hold, agent.uniqueid, ring,
        )  # fmt: skip
        talk = self.rng.uniform(*self.behaviour.talk_seconds)
        self.clock.after(talk, self._complete, call)

    def _complete(self, call: QueueCall) -> None:
        member, agent, q = call.member, call.agent_channel, self.queues[call.queue]
        assert member is not None
        assert agent is not None
        by_agent = self.rng.random() < self.behaviour.agent_hangup_probability
        first, second = (agent, call.channel) if by_agent else (call.channel, agent)
        self._unbridge(first, second)
        hold = int(call.connected_at) - int(call.entered)
        talk = self.seconds_since(call.connected_at)
        member.calls_taken += 1
        member.last_call = int(self.now)
        member.in_call = False
        self._emit(ev.agent_complete(call, member, hold, talk, "agent" if by_agent else "caller"))
        self._close(first)
        self._close(second)
        q.completed += 1
        q.talk_total += talk
        self.history.queue_log(
            self.now, call.channel.uniqueid, q.name, member.name,
            "COMPLETEAGENT" if by_agent else "COMPLETECALLER", hold, talk, call.orig_position,
        )  # fmt: skip
        # Asterisk 12+ CDRs: the queue answered the caller on entry, so billsec includes the wait.
        self._cdr(
            q.company,
            src=call.caller_num,
            dst=q.exten,
            dcontext=self.behaviour.inbound_context,
            clid=caller_id("", call.caller_num),
            channel=call.channel.name,
            dstchannel=agent.name,
            lastapp="Queue",
            lastdata=f"{q.name},t",
            start=call.channel.created,
            answer=call.channel.answered,
            end=self.now,
            disposition="ANSWERED",
            uniqueid=call.channel.uniqueid,
            linkedid=call.channel.linkedid,
        )
        self._dispatch_soon()

    def _abandon(self, call: QueueCall) -> None:
        q = self.queues[call.queue]
        call.patience = None
        if call.agent_channel is not None and call.member is not None:
            member = call.member
            ring_ms = self._end_ring(call, "CANCEL")
            self.history.queue_log(
                self.now, call.channel.uniqueid, q.name, member.name, "RINGCANCELED", ring_ms
            )
        if call.retry:
            call.retry.cancel()
            call.retry = None
        position = q.position(call)
        hold = self.seconds_since(call.entered)
        self._emit(ev.queue_caller_abandon(call, position, hold))
        q.callers.remove(call)
        self._emit(ev.queue_caller_leave(call, position, len(q.callers)))
        if not q.callers:
            self._queue_device(f"Queue:{q.name}", "NOT_INUSE")
        q.abandoned += 1
        self.history.queue_log(
            self.now, call.channel.uniqueid, q.name, "NONE", "ABANDON",
            position, call.orig_position, hold,
        )  # fmt: skip
        self._close(call.channel)
        self._cdr(
            q.company,
            src=call.caller_num,
            dst=q.exten,
            dcontext=self.behaviour.inbound_context,
            clid=caller_id("", call.caller_num),
            channel=call.channel.name,
            dstchannel="",
            lastapp="Queue",
            lastdata=f"{q.name},t",
            start=call.channel.created,
            answer=call.channel.answered,
            end=self.now,
            disposition="ANSWERED",
            uniqueid=call.channel.uniqueid,
            linkedid=call.channel.linkedid,
        )
        self._dispatch_soon()

    # -- agents: pauses and membership ----------------------------------------------------

    def _schedule_pause(self, interface: str, delay: float | None = None) -> None:
        rate = self.behaviour.pauses_per_agent_hour / 3600.0
        wait = self.rng.expovariate(rate) if delay is None else delay
        self._pause_timers[interface] = self.clock.after(wait, self._random_pause, interface)

    def _random_pause(self, interface: str) -> None:
        members = self._members_of(interface)
        device = self.devices.get(interface)
        if not members or device is None:
            return
        if device.state != "NOT_INUSE" or all(m.paused for m in members):
            self._schedule_pause(interface, delay=60.0)  # finish the call first
            return
        reason, shortest, longest = self.rng.choice(self.behaviour.pause_reasons)
        self.queue_pause(interface, True, reason=reason)
        wait = self.rng.uniform(shortest, longest)
        self._pause_timers[interface] = self.clock.after(wait, self._random_unpause, interface)

    def _random_unpause(self, interface: str) -> None:
        members = self._members_of(interface)
        if any(m.paused for m in members):
            self.queue_pause(interface, False)
        if members:
            self._schedule_pause(interface)

    def queue_pause(
        self, interface: str, paused: bool, *, queue: str | None = None, reason: str = ""
    ) -> list[Member]:
        """Pauses or unpauses a member in one queue, or in all of its queues."""
        members = self._members_of(interface, queue)
        if not members:
            raise MemberNotFound(interface)
        if queue is None:
            # Asterisk logs the reason with PAUSEALL too (`PAUSEALL|Descanso`)
            self.history.queue_log(
                self.now,
                "NONE",
                "NONE",
                members[0].name,
                "PAUSEALL" if paused else "UNPAUSEALL",
                reason if paused else "",
            )
        for member in members:
            member.paused = paused
            member.paused_reason = reason if paused else ""
            if paused:
                member.last_pause = int(self.now)
            self._emit(ev.queue_member("QueueMemberPause", member, self.member_state(member)))
            self._queue_device(_pause_device(member), _paused_state(member))
            self._update_avail(self.queues[member.queue])
            self.history.queue_log(
                self.now,
                "NONE",
                member.queue,
                member.name,
                "PAUSE" if paused else "UNPAUSE",
                reason,
            )
        if not paused:
            self._dispatch_soon()
        return members

    def queue_add(
        self,
        queue: str,
        interface: str,
        *,
        member_name: str = "",
        state_interface: str = "",
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
    ) -> Member:
        q = self.queues.get(queue)
        if q is None:
            raise NoSuchQueue(queue)
        if interface in q.members:
            raise MemberExists(interface)
        member = Member(
            queue=queue,
            interface=interface,
            name=member_name or interface,
            state_interface=state_interface or interface,
            membership="dynamic",
            penalty=penalty,
            paused=paused,
            paused_reason=reason if paused else "",
            login_time=int(self.now),
        )
        q.members[interface] = member
        self._emit(ev.queue_member("QueueMemberAdded", member, self.member_state(member)))
        self._queue_device(_pause_device(member), _paused_state(member))
        self._update_avail(q)
        self.history.queue_log(self.now, "MANAGER", queue, interface, "ADDMEMBER", "")
        self._dispatch_soon()
        return member

    def queue_remove(self, queue: str, interface: str) -> Member:
        q = self.queues.get(queue)
        if q is None:
            raise NoSuchQueue(queue)
        member = q.members.get(interface)
        if member is None:
            raise MemberNotFound(interface)
        if member.membership != "dynamic":
            raise MemberNotDynamic(interface)
        del q.members[interface]
        self._emit(ev.queue_member("QueueMemberRemoved", member, self.member_state(member)))
        self._update_avail(q)
        self.history.queue_log(self.now, "MANAGER", queue, interface, "REMOVEMEMBER", "")
        return member

    def set_custom_state(self, device: str, state: str) -> None:
        """`DEVICE_STATE(Custom:…)`: a state the dialplan sets, such as FreePBX's DND lamp.
        Setting the state it already has sends nothing (Asterisk caches device states)."""
        if self.custom_states.get(device) == state:
            return
        self.custom_states[device] = state
        self._emit(ev.device_state_change(device, state))

    # -- originate ----------------------------------------------------------------------

    def originate(self, spec: OriginateSpec) -> None:
        """Rings `spec.channel`; once it answers, dials `spec.exten` (or runs the application)."""
        name, num = parse_caller_id(spec.caller_id)
        device = self.find_device(spec.channel)
        if device is None or not device.reachable or device.interface == self.behaviour.trunk:
            self._originate_failed(spec, None, 0)
            return
        # As Asterisk: created as the device's own caller ID at exten `s`; then the originate's
        # caller ID and, with an exten, the connected line (the number dialled), in
        # NewConnectedLine before it rings; at answer it enters the dialplan at the exten.
        source = self._open(
            device.interface,
            uniqueid=spec.channel_id,
            caller_num=device.extension,
            caller_name=device.name,
            context=spec.context or self._context(device.company),
            exten="s",
            priority=spec.priority,
        )
        source.caller_num, source.caller_name = num or device.extension, name or device.name
        if spec.exten and not spec.application:
            source.connected_num = source.connected_name = spec.exten
            self._emit(ev.new_connected_line(source))
        elif spec.application and spec.caller_id:
            # an application has no number dialled: the connected line is the caller ID given
            source.connected_num, source.connected_name = source.caller_num, source.caller_name
            self._emit(ev.new_connected_line(source))
        self._set_state(source, STATE_RINGING)
        delay = self.rng.uniform(*self.behaviour.originate_answer_seconds)
        if delay > spec.timeout:
            self.clock.after(spec.timeout, self._originate_failed, spec, source, 3)
        else:
            self.clock.after(delay, self._originate_answered, spec, source)

    def _originate_target(self, spec: OriginateSpec) -> list[tuple[str, object]]:
        if spec.application:
            return [("Application", spec.application), ("Data", spec.data)]
        return [("Context", spec.context), ("Exten", spec.exten)]

    def _originate_failed(
        self, spec: OriginateSpec, source: SimulatedChannel | None, reason: int
    ) -> None:
        name, num = parse_caller_id(spec.caller_id)
        if source is not None:
            self._close(source, 19)
        if not spec.report:
            return
        self._emit(
            ev.originate_response(
                spec.action_id,
                False,
                spec.channel,
                self._originate_target(spec),
                reason,
                spec.channel_id or "<null>",
                num,
                name,
            )
        )

    def _originate_answered(self, spec: OriginateSpec, source: SimulatedChannel) -> None:
        self._set_state(source, STATE_UP)
        if spec.exten and not spec.application:
            source.exten = spec.exten
        # Asterisk sends this one from the originating thread: it may also precede the Newstate
        if spec.report:
            self._emit_originated(spec, source)
        if spec.application:
            source.application, source.app_data = spec.application, spec.data
            if spec.application.lower() == "chanspy":
                self._chanspy(spec, source)
            else:
                self.clock.after(5.0, self._application_done, spec, source)
            return
        self._dial(spec, source)

    def _emit_originated(self, spec: OriginateSpec, source: SimulatedChannel) -> None:
        # main/manager.c: the channel's name once there is one, the dial string otherwise
        self._emit(
            ev.originate_response(
                spec.action_id,
                True,
                source.name,
                self._originate_target(spec),
                4,
                source.uniqueid,
                source.caller_num,
                source.caller_name,
            )
        )

    def _application_done(self, spec: OriginateSpec, source: SimulatedChannel) -> None:
        self._close(source)
        self._outbound_cdr(spec, source, None, spec.application, spec.data, source.answered)

    # -- ChanSpy (apps/app_chanspy.c) ---------------------------------------------------------

    def _chanspy(self, spec: OriginateSpec, source: SimulatedChannel) -> None:
        prefix, options = chanspy_arguments(spec.data)
        spy = Spy(source, spec, prefix, options)
        self.spies[source.name] = spy
        self.clock.after(SPY_SCAN_SECONDS, self._spy_scan, spy)

    def _spy_candidates(self, spy: Spy) -> list[SimulatedChannel]:
        spying = {s.channel.name for s in self.spies.values()}
        return [
            ch
            for ch in self.channels.values()
            if ch.name.startswith(spy.prefix)
            and ch is not spy.channel
            and ch.name not in spying  # a spying channel cannot be spied on
            and ("b" not in spy.options or ch.bridge_id)
        ]

    def _spy_scan(self, spy: Spy) -> None:
        if self.spies.get(spy.channel.name) is not spy:
            return  # hung up meanwhile
        candidates = self._spy_candidates(spy)
        if candidates:
            spy.target = candidates[0]
            self._emit(ev.chan_spy("ChanSpyStart", spy.channel, spy.target))
        elif "S" in spy.options:
            self._spy_done(spy)  # S: nothing (left) to spy on
        else:
            self.clock.after(SPY_SCAN_SECONDS, self._spy_scan, spy)

    def _spy_lost_target(self, spy: Spy) -> None:
        assert spy.target is not None
        self._emit(ev.chan_spy("ChanSpyStop", spy.channel, spy.target))
        spy.target = None
        if "E" in spy.options:
            self._spy_done(spy)  # E: exit when the spied-on channel hangs up
        else:
            self.clock.after(SPY_SCAN_SECONDS, self._spy_scan, spy)

    def _spy_done(self, spy: Spy) -> None:
        """ChanSpy returns and the originated channel hangs up (Asterisk reports cause 0)."""
        self.spies.pop(spy.channel.name, None)
        self._close(spy.channel, 0)
        self._outbound_cdr(
            spy.spec, spy.channel, None, spy.spec.application, spy.spec.data, spy.channel.answered
        )

    def _dial(self, spec: OriginateSpec, source: SimulatedChannel) -> None:
        b = self.behaviour
        company = self.devices[source.device].company
        target = next(
            (
                d
                for d in sorted(self.devices.values(), key=lambda d: d.company != company)
                if d.extension == spec.exten and d.interface != source.device
            ),
            None,
        )
        if target is not None:
            device, dial_string, callee = target.interface, spec.exten, target.name
        else:
            device, dial_string, callee = b.trunk, f"{spec.exten}@trunk", ""
        dest = self._open(
            device,
            linkedid=source.linkedid,
            caller_num=spec.exten,
            caller_name=callee,
            connected_num=source.caller_num,
            connected_name=source.caller_name,
            context=source.context,
            exten=spec.exten,
            application="AppDial",
            app_data="(Outgoing Line)",
        )
        source.application, source.app_data = "Dial", f"{device.split('/', 1)[0]}/{dial_string}"
        self._emit(ev.dial_begin(source, dest, dial_string))
        self._set_state(dest, STATE_RINGING)
        if self.rng.random() < b.destination_answer_probability:
            self.clock.after(
                self.rng.uniform(*b.ring_seconds), self._dial_answered, spec, source, dest
            )
        else:
            self.clock.after(b.ring_timeout * 2, self._dial_unanswered, spec, source, dest)

    def _dial_answered(
        self, spec: OriginateSpec, source: SimulatedChannel, dest: SimulatedChannel
    ) -> None:
        if source.name not in self.channels:
            return
        self._set_state(dest, STATE_UP)
        self._emit(ev.dial_end(source, dest, "ANSWER"))
        self._bridge(source, dest)
        talk = self.rng.uniform(*self.behaviour.originate_talk_seconds)
        self.clock.after(talk, self._dial_hangup, spec, source, dest)

    def _dial_hangup(
        self, spec: OriginateSpec, source: SimulatedChannel, dest: SimulatedChannel
    ) -> None:
        self._unbridge(source, dest)
        self._close(source)
        self._close(dest)
        self._outbound_cdr(spec, source, dest, "Dial", source.app_data, dest.answered)

    def _dial_unanswered(
        self, spec: OriginateSpec, source: SimulatedChannel, dest: SimulatedChannel
    ) -> None:
        self._emit(ev.dial_end(source, dest, "NOANSWER"))
        self._close(dest, 19)
        self._close(source)
        self._outbound_cdr(spec, source, dest, "Dial", source.app_data, None)

    def _outbound_cdr(
        self,
        spec: OriginateSpec,
        source: SimulatedChannel,
        dest: SimulatedChannel | None,
        app: str,
        data: str,
        answer: float | None,
    ) -> None:
        self._cdr(
            self.devices[source.device].company if source.device in self.devices else "",
            src=source.caller_num,
            dst=spec.exten or "s",
            dcontext=source.context,
            clid=caller_id(source.caller_name, source.caller_num),
            channel=source.name,
            dstchannel=dest.name if dest else "",
            lastapp=app,
            lastdata=data,
            start=source.created,
            answer=answer,
            end=self.now,
            disposition="ANSWERED" if answer is not None else "NO ANSWER",
            uniqueid=source.uniqueid,
            linkedid=source.linkedid,
        )
