"""AMI events as the live state needs them: typed, with Asterisk's spellings settled here.

Asterisk names the same thing differently across versions and between list rows and events:
`Interface` or `Location`, `MemberName` or `Name`, `PausedReason` (18 and later) or `Reason` (16),
`QueueCallerJoin` or `Join` (11 and older), `QueueMemberPause` or `QueueMemberPaused` (11, 12).
`parse_event` (events) and pbx/gateway/snapshot.py (list rows) read them with the same helpers,
so the listener never sees a wire frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_TRUE = {"1", "true", "yes"}


def ami_flag(value: str | None) -> bool:
    """Asterisk's booleans: `1` in events and list rows; `true`/`yes` from some versions."""
    return (value or "").strip().lower() in _TRUE


def ami_int(value: str | None, default: int = 0) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        return default


def member_interface(frame: Mapping[str, str]) -> str:
    """Events say `Interface`; QueueMember list rows (and some versions' events) `Location`."""
    return frame.get("Interface") or frame.get("Location") or ""


def member_name(frame: Mapping[str, str]) -> str:
    return frame.get("MemberName") or frame.get("Name") or ""


def paused_reason(frame: Mapping[str, str]) -> str:
    """Asterisk 16 says `Reason` where 18 and later say `PausedReason`."""
    return frame.get("PausedReason") or frame.get("Reason") or ""


@dataclass(frozen=True)
class DeviceStateChanged:
    device: str
    state: str  # upper case, UNKNOWN when the PBX sent none


@dataclass(frozen=True)
class MemberChanged:
    """A queue member added, or its status or pause changed. A header the event did not carry
    is None: the member keeps what it had (QueueMemberPause carries no Status on some versions)."""

    queue: str
    interface: str
    member_name: str
    state_interface: str | None
    status: int | None
    paused: bool
    paused_reason: str  # "" unless paused
    in_call: bool
    calls_taken: int | None


@dataclass(frozen=True)
class MemberRemoved:
    queue: str
    interface: str


@dataclass(frozen=True)
class CallerJoined:
    queue: str
    unique_id: str
    channel: str
    caller_id_num: str
    position: int


@dataclass(frozen=True)
class CallerLeft:
    """The caller left the queue: answered, hung up or timed out."""

    queue: str
    unique_id: str


@dataclass(frozen=True)
class ChannelCreated:
    unique_id: str
    channel: str
    linked_id: str
    state: str
    caller_id_num: str
    connected_line_num: str
    exten: str
    context: str


@dataclass(frozen=True)
class ChannelChanged:
    """Newstate or NewConnectedLine: an empty field is one the event did not change."""

    unique_id: str
    state: str
    connected_line_num: str


@dataclass(frozen=True)
class ChannelHungUp:
    unique_id: str


@dataclass(frozen=True)
class PbxBooted:
    """FullyBooted, sent with every login: an uptime lower than the last one seen means that
    Asterisk restarted and lost what it held in memory (pauses, dynamic members)."""

    uptime: float | None


@dataclass(frozen=True)
class OtherEvent:
    """An event the live state does not use: counted as received, not applied."""

    name: str


PbxEvent = (
    DeviceStateChanged
    | MemberChanged
    | MemberRemoved
    | CallerJoined
    | CallerLeft
    | ChannelCreated
    | ChannelChanged
    | ChannelHungUp
    | PbxBooted
    | OtherEvent
)


def _optional_int(frame: Mapping[str, str], key: str) -> int | None:
    value = frame.get(key)
    return None if value is None else ami_int(value)


def _device_state(frame: Mapping[str, str]) -> DeviceStateChanged | OtherEvent:
    device = frame.get("Device", "")
    if not device:
        return OtherEvent(frame.get("Event", ""))
    return DeviceStateChanged(device=device, state=(frame.get("State") or "UNKNOWN").upper())


def _member(frame: Mapping[str, str]) -> MemberChanged:
    paused = ami_flag(frame.get("Paused"))
    return MemberChanged(
        queue=frame.get("Queue", ""),
        interface=member_interface(frame),
        member_name=member_name(frame),
        state_interface=frame.get("StateInterface"),
        status=_optional_int(frame, "Status"),
        paused=paused,
        paused_reason=paused_reason(frame) if paused else "",
        in_call=ami_flag(frame.get("InCall")),
        calls_taken=_optional_int(frame, "CallsTaken"),
    )


def _member_removed(frame: Mapping[str, str]) -> MemberRemoved:
    return MemberRemoved(queue=frame.get("Queue", ""), interface=member_interface(frame))


def _caller_joined(frame: Mapping[str, str]) -> CallerJoined:
    return CallerJoined(
        queue=frame.get("Queue", ""),
        unique_id=frame.get("Uniqueid", ""),
        channel=frame.get("Channel", ""),
        caller_id_num=frame.get("CallerIDNum", ""),
        position=ami_int(frame.get("Position")),
    )


def _caller_left(frame: Mapping[str, str]) -> CallerLeft:
    return CallerLeft(queue=frame.get("Queue", ""), unique_id=frame.get("Uniqueid", ""))


def _channel_created(frame: Mapping[str, str]) -> ChannelCreated:
    return ChannelCreated(
        unique_id=frame.get("Uniqueid", ""),
        channel=frame.get("Channel", ""),
        linked_id=frame.get("Linkedid", ""),
        state=frame.get("ChannelStateDesc", ""),
        caller_id_num=frame.get("CallerIDNum", ""),
        connected_line_num=frame.get("ConnectedLineNum", ""),
        exten=frame.get("Exten", ""),
        context=frame.get("Context", ""),
    )


def _channel_changed(frame: Mapping[str, str]) -> ChannelChanged:
    return ChannelChanged(
        unique_id=frame.get("Uniqueid", ""),
        state=frame.get("ChannelStateDesc", ""),
        connected_line_num=frame.get("ConnectedLineNum", ""),
    )


def _hung_up(frame: Mapping[str, str]) -> ChannelHungUp:
    return ChannelHungUp(unique_id=frame.get("Uniqueid", ""))


def _booted(frame: Mapping[str, str]) -> PbxBooted:
    try:
        uptime: float | None = float(frame.get("Uptime") or "")
    except ValueError:
        uptime = None
    return PbxBooted(uptime=uptime)


_PARSERS = {
    "devicestatechange": _device_state,
    "queuememberadded": _member,
    "queuememberstatus": _member,
    "queuememberpause": _member,
    "queuememberpaused": _member,  # Asterisk 11 and 12
    "queuememberremoved": _member_removed,
    "queuecallerjoin": _caller_joined,
    "join": _caller_joined,  # Asterisk 11 and older
    "queuecallerleave": _caller_left,
    "queuecallerabandon": _caller_left,
    "leave": _caller_left,
    "newchannel": _channel_created,
    "newstate": _channel_changed,
    "newconnectedline": _channel_changed,
    "hangup": _hung_up,
    "fullybooted": _booted,
}


def parse_event(frame: Mapping[str, str]) -> PbxEvent:
    """The typed event of an AMI event frame; OtherEvent for those the live state does not use."""
    name = frame.get("Event") or ""
    parser = _PARSERS.get(name.lower())
    return parser(frame) if parser is not None else OtherEvent(name)
