"""Turn the events of the AMI list actions into the gateway's snapshot types (Asterisk's
spellings read as pbx/gateway/events.py reads them)."""

from __future__ import annotations

from collections.abc import Iterable

from pbx.gateway.base import ChannelRow, QueueCallerRow, QueueMemberRow, RegistrationContact
from pbx.gateway.events import ami_flag, ami_int, member_interface, member_name, paused_reason
from pbx.gateway.frames import Frame


def _seconds(value: str | None) -> int:
    """CoreShowChannel `Duration` is HH:MM:SS; older versions sent plain seconds."""
    total = 0
    for part in (value or "").strip().split(":"):
        total = total * 60 + ami_int(part)
    return total


def _events(frames: Iterable[Frame], name: str) -> Iterable[Frame]:
    return (frame for frame in frames if frame.name.lower() == name.lower())


def device_states(frames: Iterable[Frame]) -> dict[str, str]:
    """DeviceStateList answers with one DeviceStateChange event per device."""
    return {f.get("Device", ""): f.get("State", "") for f in _events(frames, "DeviceStateChange")}


def queue_members(frames: Iterable[Frame]) -> list[QueueMemberRow]:
    return [
        QueueMemberRow(
            queue=f.get("Queue", ""),
            interface=member_interface(f),
            member_name=member_name(f),
            state_interface=f.get("StateInterface", ""),
            status=ami_int(f.get("Status")),
            paused=ami_flag(f.get("Paused")),
            paused_reason=paused_reason(f),
            in_call=ami_flag(f.get("InCall")),
            calls_taken=ami_int(f.get("CallsTaken")),
        )
        for f in _events(frames, "QueueMember")
    ]


def queue_callers(frames: Iterable[Frame]) -> list[QueueCallerRow]:
    return [
        QueueCallerRow(
            queue=f.get("Queue", ""),
            position=ami_int(f.get("Position")),
            channel=f.get("Channel", ""),
            unique_id=f.get("Uniqueid", ""),
            caller_id_num=f.get("CallerIDNum", ""),
            wait_seconds=ami_int(f.get("Wait")),
        )
        for f in _events(frames, "QueueEntry")
    ]


def channels(frames: Iterable[Frame]) -> list[ChannelRow]:
    return [
        ChannelRow(
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
