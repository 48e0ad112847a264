"""Turn the events of the AMI list actions into the gateway's snapshot types."""

from __future__ import annotations

from collections.abc import Iterable

from pbx.gateway.base import Channel, QueueCaller, QueueMemberState, RegistrationContact
from pbx.gateway.frames import Frame


def _int(value: str | None) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        return 0


def _seconds(value: str | None) -> int:
    """CoreShowChannel `Duration` is HH:MM:SS; older versions sent plain seconds."""
    total = 0
    for part in (value or "").strip().split(":"):
        total = total * 60 + _int(part)
    return total


def _events(frames: Iterable[Frame], name: str) -> Iterable[Frame]:
    return (frame for frame in frames if frame.name.lower() == name.lower())


def device_states(frames: Iterable[Frame]) -> dict[str, str]:
    """DeviceStateList answers with one DeviceStateChange event per device."""
    return {f.get("Device", ""): f.get("State", "") for f in _events(frames, "DeviceStateChange")}


def queue_members(frames: Iterable[Frame]) -> list[QueueMemberState]:
    return [
        QueueMemberState(
            queue=f.get("Queue", ""),
            # QueueMember rows say `Location`; keep `Interface` for PBXs that send that instead.
            interface=f.get("Location") or f.get("Interface", ""),
            member_name=f.get("Name") or f.get("MemberName", ""),
            state_interface=f.get("StateInterface", ""),
            status=_int(f.get("Status")),
            paused=f.get("Paused", "0").strip() == "1",
            # Asterisk 16 says `Reason` where 18 and 20 say `PausedReason`.
            paused_reason=f.get("PausedReason") or f.get("Reason", ""),
            in_call=f.get("InCall", "0").strip() == "1",
            calls_taken=_int(f.get("CallsTaken")),
        )
        for f in _events(frames, "QueueMember")
    ]


def queue_callers(frames: Iterable[Frame]) -> list[QueueCaller]:
    return [
        QueueCaller(
            queue=f.get("Queue", ""),
            position=_int(f.get("Position")),
            channel=f.get("Channel", ""),
            unique_id=f.get("Uniqueid", ""),
            caller_id_num=f.get("CallerIDNum", ""),
            wait_seconds=_int(f.get("Wait")),
        )
        for f in _events(frames, "QueueEntry")
    ]


def channels(frames: Iterable[Frame]) -> list[Channel]:
    return [
        Channel(
            channel=f.get("Channel", ""),
            unique_id=f.get("Uniqueid", ""),
            linked_id=f.get("Linkedid", ""),
            state=f.get("ChannelStateDesc", ""),
            caller_id_num=f.get("CallerIDNum", ""),
            connected_line_num=f.get("ConnectedLineNum", ""),
            exten=f.get("Exten", ""),
            context=f.get("Context", ""),
            application=f.get("Application", ""),
            duration_seconds=_seconds(f.get("Duration")),
        )
        for f in _events(frames, "CoreShowChannel")
    ]


def contacts(frames: Iterable[Frame]) -> list[RegistrationContact]:
    return [
        RegistrationContact(
            # `ObjectName` is "<aor>;@<hash>" when a PBX leaves out `Aor`.
            aor=f.get("Aor") or f.get("ObjectName", "").split(";@")[0],
            uri=f.get("Uri", ""),
            status=f.get("Status", ""),
        )
        for f in _events(frames, "ContactList")
    ]
