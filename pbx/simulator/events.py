"""AMI events with the header sets and order that Asterisk 20 sends."""

from __future__ import annotations

from collections.abc import Iterable

from pbx.simulator.channels import DEVICE_STATUS, EXTENSION_STATUS, UNKNOWN, SimulatedChannel
from pbx.simulator.protocol import AmiMessage
from pbx.simulator.state import Member, QueueCall, QueueState

Pairs = list[tuple[str, object]]

CALL = "call,all"
AGENT = "agent,all"
SYSTEM = "system,all"

CAUSES = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "User alerting, no answer"}


def event(name: str, privilege: str | None, *blocks: Iterable[tuple[str, object]]) -> AmiMessage:
    headers: Pairs = [("Event", name)]
    if privilege:
        headers.append(("Privilege", privilege))
    for block in blocks:
        headers.extend(block)
    return AmiMessage(headers)


def with_timestamp(message: AmiMessage, now: float) -> AmiMessage:
    """The event as manager.conf `timestampevents = yes` sends it: `Timestamp` after `Privilege`."""
    headers = list(message)
    at = 2 if len(headers) > 1 and headers[1][0] == "Privilege" else 1
    headers.insert(at, ("Timestamp", f"{now:.6f}"))
    return AmiMessage(headers)


def channel_block(ch: SimulatedChannel, prefix: str = "") -> Pairs:
    """The channel snapshot every channel event carries; `Dest` prefixes the other party."""
    return [
        (f"{prefix}Channel", ch.name),
        (f"{prefix}ChannelState", ch.state),
        (f"{prefix}ChannelStateDesc", ch.state_desc),
        (f"{prefix}CallerIDNum", ch.caller_num or UNKNOWN),
        (f"{prefix}CallerIDName", ch.caller_name or UNKNOWN),
        (f"{prefix}ConnectedLineNum", ch.connected_num or UNKNOWN),
        (f"{prefix}ConnectedLineName", ch.connected_name or UNKNOWN),
        (f"{prefix}Language", ch.language),
        (f"{prefix}AccountCode", ch.account_code),
        (f"{prefix}Context", ch.context),
        (f"{prefix}Exten", ch.exten),
        (f"{prefix}Priority", ch.priority),
        (f"{prefix}Uniqueid", ch.uniqueid),
        (f"{prefix}Linkedid", ch.linkedid),
    ]


def bridge_block(bridge_id: str, channels: int) -> Pairs:
    return [
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", UNKNOWN),
        ("BridgeName", UNKNOWN),
        ("BridgeNumChannels", channels),
        ("BridgeVideoSourceMode", "none"),
    ]


def member_block(member: Member, device_state: str) -> Pairs:
    """The member as QueueMemberStatus/Added/Removed/Pause carry it (`Interface`, not `Location`)."""
    return [
        ("Queue", member.queue),
        ("MemberName", member.name),
        ("Interface", member.interface),
        ("StateInterface", member.state_interface),
        ("Membership", member.membership),
        ("Penalty", member.penalty),
        ("CallsTaken", member.calls_taken),
        ("LastCall", member.last_call),
        ("LastPause", member.last_pause),
        ("LoginTime", member.login_time),
        ("InCall", int(member.in_call)),
        ("Status", DEVICE_STATUS.get(device_state, 0)),
        ("Paused", int(member.paused)),
        ("PausedReason", member.paused_reason),
        ("Ringinuse", 0),
        ("Wrapuptime", 0),
    ]


def fully_booted(uptime: int) -> AmiMessage:
    return event(
        "FullyBooted",
        SYSTEM,
        [("Uptime", uptime), ("LastReload", uptime), ("Status", "Fully Booted")],
    )


def device_state_change(device: str, state: str) -> AmiMessage:
    return event("DeviceStateChange", CALL, [("Device", device), ("State", state)])


def extension_status(exten: str, context: str, hint: str, state: str) -> AmiMessage:
    code, text = EXTENSION_STATUS.get(state, (0, "Idle"))
    return event(
        "ExtensionStatus",
        CALL,
        [("Exten", exten), ("Context", context), ("Hint", hint), ("Status", code)],
        [("StatusText", text)],
    )


def new_channel(ch: SimulatedChannel) -> AmiMessage:
    return event("Newchannel", CALL, channel_block(ch))


def new_state(ch: SimulatedChannel) -> AmiMessage:
    return event("Newstate", CALL, channel_block(ch))


def new_connected_line(ch: SimulatedChannel) -> AmiMessage:
    return event("NewConnectedLine", CALL, channel_block(ch))


def hangup(ch: SimulatedChannel, cause: int = 16) -> AmiMessage:
    return event(
        "Hangup",
        CALL,
        channel_block(ch),
        [("Cause", cause), ("Cause-txt", CAUSES.get(cause, "Unknown"))],
    )


def dial_begin(caller: SimulatedChannel, dest: SimulatedChannel, dial_string: str) -> AmiMessage:
    return event(
        "DialBegin",
        CALL,
        channel_block(caller),
        channel_block(dest, "Dest"),
        [("DialString", dial_string)],
    )


def dial_end(caller: SimulatedChannel, dest: SimulatedChannel, status: str) -> AmiMessage:
    return event(
        "DialEnd",
        CALL,
        channel_block(caller),
        channel_block(dest, "Dest"),
        [("DialStatus", status)],
    )


def bridge_create(bridge_id: str) -> AmiMessage:
    return event("BridgeCreate", CALL, bridge_block(bridge_id, 0))


def bridge_enter(bridge_id: str, count: int, ch: SimulatedChannel) -> AmiMessage:
    return event("BridgeEnter", CALL, bridge_block(bridge_id, count), channel_block(ch))


def bridge_leave(bridge_id: str, count: int, ch: SimulatedChannel) -> AmiMessage:
    return event("BridgeLeave", CALL, bridge_block(bridge_id, count), channel_block(ch))


def bridge_destroy(bridge_id: str) -> AmiMessage:
    return event("BridgeDestroy", CALL, bridge_block(bridge_id, 0))


def queue_caller_join(call: QueueCall, queue: QueueState) -> AmiMessage:
    return event(
        "QueueCallerJoin",
        AGENT,
        channel_block(call.channel),
        [("Queue", queue.name), ("Position", queue.position(call)), ("Count", len(queue.callers))],
    )


def queue_caller_leave(call: QueueCall, position: int, count: int) -> AmiMessage:
    return event(
        "QueueCallerLeave",
        AGENT,
        channel_block(call.channel),
        [("Queue", call.queue), ("Count", count), ("Position", position)],
    )


def queue_caller_abandon(call: QueueCall, position: int, hold: int) -> AmiMessage:
    return event(
        "QueueCallerAbandon",
        AGENT,
        channel_block(call.channel),
        [
            ("Queue", call.queue),
            ("Position", position),
            ("OriginalPosition", call.orig_position),
            ("HoldTime", hold),
        ],
    )


def _agent_event(name: str, call: QueueCall, member: Member, extra: Pairs) -> AmiMessage:
    assert call.agent_channel is not None
    return event(
        name,
        AGENT,
        channel_block(call.channel),
        channel_block(call.agent_channel, "Dest"),
        [("Queue", call.queue), ("MemberName", member.name), ("Interface", member.interface)],
        extra,
    )


def agent_called(call: QueueCall, member: Member) -> AmiMessage:
    return _agent_event("AgentCalled", call, member, [])


def agent_ring_no_answer(call: QueueCall, member: Member, ring_ms: int) -> AmiMessage:
    return _agent_event("AgentRingNoAnswer", call, member, [("RingTime", ring_ms)])


def agent_connect(call: QueueCall, member: Member, ring: int, hold: int) -> AmiMessage:
    return _agent_event("AgentConnect", call, member, [("RingTime", ring), ("HoldTime", hold)])


def agent_complete(
    call: QueueCall, member: Member, hold: int, talk: int, reason: str
) -> AmiMessage:
    return _agent_event(
        "AgentComplete",
        call,
        member,
        [("HoldTime", hold), ("TalkTime", talk), ("Reason", reason)],
    )


def queue_member(name: str, member: Member, device_state: str) -> AmiMessage:
    return event(name, AGENT, member_block(member, device_state))


def chan_spy(name: str, spyer: SimulatedChannel, spyee: SimulatedChannel) -> AmiMessage:
    """ChanSpyStart / ChanSpyStop: the spying channel, then the one spied on."""
    return event(name, CALL, channel_block(spyer, "Spyer"), channel_block(spyee, "Spyee"))


def originate_response(
    action_id: str | None,
    success: bool,
    channel: str,
    target: Pairs,
    reason: int,
    uniqueid: str,
    caller_num: str,
    caller_name: str,
) -> AmiMessage:
    headers: Pairs = [("ActionID", action_id)] if action_id is not None else []
    headers += [("Response", "Success" if success else "Failure"), ("Channel", channel)]
    return event(
        "OriginateResponse",
        CALL,
        headers,
        target,
        [
            ("Reason", reason),
            ("Uniqueid", uniqueid),
            ("CallerIDNum", caller_num or UNKNOWN),
            ("CallerIDName", caller_name or UNKNOWN),
        ],
    )
