"""User status from live device state, do-not-disturb and pause (contract.md, Status)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from django.utils.translation import gettext_lazy as _

from pbx.models import DeviceState, PbxUser, UserPresence

AVAILABLE = "available"
UNAVAILABLE = "unavailable"
BUSY = "busy"
RINGING = "ringing"
PAUSE = "pause"

STATUS_LABELS = {
    AVAILABLE: _("Available"),
    UNAVAILABLE: _("Unavailable"),
    BUSY: _("Busy"),
    RINGING: _("Ringing"),
    PAUSE: _("Paused"),
}

UNREACHABLE_DEVICE_STATES = frozenset({"UNAVAILABLE", "INVALID", "UNKNOWN"})
_RINGING_STATES = {"RINGING", "RINGINUSE"}
_BUSY_STATES = {"INUSE", "BUSY", "ONHOLD"}


class UserStatus(TypedDict):
    extension: str
    id: int
    name: str
    status: str
    description: str


def derive_status(device_states: Iterable[str], *, dnd: bool = False, paused: bool = False) -> str:
    """First match wins: all devices down → unavailable; ringing; busy or DND; paused; available."""
    states = list(device_states)
    if all(
        state in UNREACHABLE_DEVICE_STATES for state in states
    ):  # also true with no device at all
        return UNAVAILABLE
    if any(state in _RINGING_STATES for state in states):
        return RINGING
    if dnd or any(state in _BUSY_STATES for state in states):
        return BUSY
    if paused:
        return PAUSE
    return AVAILABLE


def describe_status(status: str, presence: UserPresence | None) -> str:
    if presence is not None:
        if status == PAUSE and presence.pause_reason:
            return presence.pause_reason
        if status == BUSY and presence.dnd and presence.dnd_reason:
            return presence.dnd_reason
    return str(STATUS_LABELS[status])


def user_status(user: PbxUser, device_states: dict[str, str]) -> UserStatus:
    """Status of a user whose `terminals` and `presence` are loaded; `device_states` by interface."""
    presence = getattr(user, "presence", None)
    interfaces = {terminal.interface for terminal in user.terminals.all()}
    states = [device_states.get(interface, DeviceState.State.UNKNOWN) for interface in interfaces]
    status = derive_status(
        states,
        dnd=bool(presence and presence.dnd),
        paused=bool(presence and presence.paused),
    )
    return {
        "extension": user.extension,
        "id": user.pk,
        "name": user.name,
        "status": status,
        "description": describe_status(status, presence),
    }


def device_states_for(users: Iterable[PbxUser]) -> dict[str, str]:
    """One query: the live state of every device of these users (terminals prefetched)."""
    interfaces = {terminal.interface for user in users for terminal in user.terminals.all()}
    if not interfaces:
        return {}
    return dict(
        DeviceState.objects.filter(interface__in=interfaces).values_list("interface", "state")
    )
