"""What the behaviour tests do to the PBX and read from it, in Asterisk's own words."""

from __future__ import annotations

import itertools

from tests.realpbx.ami import RawAmi
from tests.realpbx.layouts import NAMES

_callers = itertools.count(1)
UNREACHABLE = {"UNAVAILABLE", "INVALID", "UNKNOWN"}


def call_queue(ami: RawAmi, queue: str, *, seconds: int = 40) -> str:
    """An outside caller dials `queue` (`sales` or `support` in [incoming]) and waits."""
    number = f"60011{next(_callers):04d}"
    ami.action(
        "Originate",
        Channel=f"Local/{queue}@incoming",
        Application="Wait",
        Data=str(seconds),
        CallerID=f"{number} <{number}>",
        Async="true",
    )
    return number


def member_extension(member: dict) -> str | None:
    for ext, name in NAMES.items():
        if member.get("name") == name or f"/{ext}" in member.get("location", ""):
            return ext
    return None


def status_per_asterisk(ami: RawAmi) -> dict[str, str]:
    """What contract.md's Status rule gives on what Asterisk reports (one device per user)."""
    devices = ami.device_states()
    members, _callers = ami.queue_status()
    paused = {member_extension(m) for m in members if m.get("paused") == "1"}
    result = {}
    for ext in NAMES:
        state = devices.get(f"PJSIP/{ext}", "UNKNOWN")
        if state in UNREACHABLE:
            result[ext] = "unavailable"
        elif state in ("RINGING", "RINGINUSE"):
            result[ext] = "ringing"
        elif state in ("INUSE", "BUSY", "ONHOLD") or devices.get(f"Custom:DND{ext}") == "BUSY":
            result[ext] = "busy"
        elif ext in paused:
            result[ext] = "pause"
        else:
            result[ext] = "available"
    return result
