"""User status from live device state, do-not-disturb and pause (contract.md, Status)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from django.db import connection
from django.db.models import QuerySet
from django.db.models.functions import Length
from django.utils.translation import gettext_lazy as _

from pbx.directory.agent_matching import same_device
from pbx.models import (
    DEFAULT_PBX,
    Company,
    DeviceState,
    PbxUser,
    QueueMemberState,
    UserPresence,
)
from pbx.plain_sql import Select, converted, marks, read_together, table
from terminals.models import Terminal

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
# app_queue's member `Status` is the AST_DEVICE_* number of the member's state interface.
MEMBER_STATUS_STATES = (
    "UNKNOWN",
    "NOT_INUSE",
    "INUSE",
    "BUSY",
    "INVALID",
    "UNAVAILABLE",
    "RINGING",
    "RINGINUSE",
    "ONHOLD",
)


def member_status_state(status: int) -> str:
    """`Status: 1` of QueueMember/QueueMemberStatus → NOT_INUSE."""
    return MEMBER_STATUS_STATES[status] if 0 <= status < len(MEMBER_STATUS_STATES) else "UNKNOWN"


def device_key(interface: str) -> str:
    """How devices are compared: `Local/201@from-queue/n` is the device `Local/201@from-queue`."""
    return same_device(interface).lower()


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


@dataclass(frozen=True)
class PresenceRow:
    """One user's live status, with what the dashboard adds: the reason alone and since when."""

    user_id: int
    company_id: int
    extension: str
    name: str
    mobile: str
    status: str
    description: str
    reason: str  # the pause or DND reason shown as description, else ""
    since: datetime | None  # the latest change of anything the status is derived from

    def as_user_status(self) -> UserStatus:
        return {
            "extension": self.extension,
            "id": self.user_id,
            "name": self.name,
            "status": self.status,
            "description": self.description,
        }


def _reason(status: str, *, dnd: bool, dnd_reason: str, pause_reason: str) -> str:
    if status == PAUSE:
        return pause_reason
    if status == BUSY and dnd:
        return dnd_reason
    return ""


def _user_device_states(
    terminals: set[str],
    members: list[tuple[str, str, int]],
    devices: dict[str, tuple[str, datetime | None]],
) -> list[tuple[str, datetime | None]]:
    """The states of a user's devices: its terminals' interfaces and, for each queue member the
    PBX reports for it, the member's state interface (FreePBX's `Local/201@from-queue/n` rings
    `PJSIP/201`, or a `hint:201@ext-local`). A device the PBX lists in DeviceStateList speaks for
    itself; one it does not (Local devices while idle, hints) by the member's `Status`."""
    member_states: dict[str, str] = {}
    for interface, state_interface, status in members:
        state = member_status_state(status)
        for key in {device_key(interface), device_key(state_interface or interface)}:
            member_states.setdefault(key, state)
    keys = {device_key(interface) for interface in terminals}
    keys |= {device_key(state_interface or interface) for interface, state_interface, _ in members}
    states: list[tuple[str, datetime | None]] = []
    for key in keys:
        if key in devices:
            states.append(devices[key])
        else:
            states.append((member_states.get(key, DeviceState.State.UNKNOWN), None))
    return states


# What presence_rows reads of each user: pk, company's PBX, company, extension, name, mobile,
# and the presence row's dnd, dnd reason, paused, pause reason and changed_at.
_UserRow = tuple[int, Any, int, str, str, str, Any, Any, Any, Any, Any]


def presence_rows(users: QuerySet[PbxUser]) -> list[PresenceRow]:
    """Live status of these users, ordered by extension, in four queries and without building
    model instances (a BLF list of 1,000 users stays cheap)."""
    rows = list(
        users.order_by(Length("extension"), "extension").values_list(
            "pk",
            "company__pbx",
            "company_id",
            "extension",
            "name",
            "mobile",
            "presence__dnd",
            "presence__dnd_reason",
            "presence__paused",
            "presence__pause_reason",
            "presence__changed_at",
        )
    )
    interfaces: dict[int, set[str]] = defaultdict(set)
    for user_id, interface in Terminal.objects.filter(user__in=users.values("pk")).values_list(
        "user_id", "interface"
    ):
        interfaces[user_id].add(interface)
    members: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for user_id, interface, state_interface, member_status in QueueMemberState.objects.filter(
        user__in=users.values("pk")
    ).values_list("user_id", "interface", "state_interface", "status"):
        members[user_id].append((interface, state_interface, member_status))
    names, pbxes = _device_names(rows, interfaces, members)
    devices: dict[str, dict[str, tuple[str, datetime | None]]] = {key: {} for key in pbxes}
    for device_pbx, interface, state, changed_at in DeviceState.objects.filter(
        pbx__in=pbxes, interface__in=names
    ).values_list("pbx", "interface", "state", "changed_at"):
        devices[device_pbx][device_key(interface)] = (state, changed_at)
    return _derived(rows, interfaces, members, devices)


def presence_rows_of(user_ids: Iterable[int]) -> list[PresenceRow]:
    """presence_rows for users named by id (the listener's batch, a web worker's cache), in
    three statements of plain SQL (two round trips in the listener's pipelined write),
    ordered by extension as Python orders strings.

    A writer calls this once per batch: compiling presence_rows' four ORM queries (joins,
    subqueries, the length ordering) was most of what a small batch cost the listener."""
    ids = sorted(set(user_ids))
    if not ids:
        return []
    users_sql, devices_of_users_sql, device_states_sql = _statements()
    in_ids = marks(ids)
    presence_changed_at = converted(UserPresence, ["changed_at"])
    device_columns = converted(DeviceState, ["pbx", "interface", "state", "changed_at"])
    # The users and their devices in one round trip (read_together); their devices' states
    # need the first two's answers.
    user_rows, device_rows = read_together(
        [
            Select(users_sql.format(ids=in_ids), ids),
            Select(devices_of_users_sql.format(ids=in_ids), ids + ids),
        ]
    )
    rows: list[_UserRow] = [(*row[:10], *presence_changed_at(row[10:])) for row in user_rows]
    rows.sort(key=lambda row: (len(row[3]), row[3], row[0]))
    interfaces: dict[int, set[str]] = defaultdict(set)
    members: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for kind, user_id, interface, state_interface, member_status in device_rows:
        if kind == 0:
            interfaces[user_id].add(interface)
        else:
            members[user_id].append((interface, state_interface, member_status))
    names, pbxes = _device_names(rows, interfaces, members)
    devices: dict[str, dict[str, tuple[str, datetime | None]]] = {key: {} for key in pbxes}
    if names:
        names_list, pbx_list = sorted(names), sorted(pbxes)
        with connection.cursor() as cursor:
            cursor.execute(
                device_states_sql.format(pbxes=marks(pbx_list), names=marks(names_list)),
                pbx_list + names_list,
            )
            for row in cursor.fetchall():
                device_pbx, interface, state, changed_at = device_columns(row)
                devices[device_pbx][device_key(interface)] = (state, changed_at)
    return _derived(rows, interfaces, members, devices)


def _statements() -> tuple[str, str, str]:
    """presence_rows_of's statements ({ids}, {pbxes}, {names}: placeholders), their tables'
    names from the models."""
    users = (
        "SELECT u.id, c.pbx, u.company_id, u.extension, u.name, u.mobile, p.dnd, p.dnd_reason, "
        f"p.paused, p.pause_reason, p.changed_at FROM {table(PbxUser)} u "
        f"JOIN {table(Company)} c ON c.id = u.company_id "
        f"LEFT JOIN {table(UserPresence)} p ON p.user_id = u.id WHERE u.id IN ({{ids}})"
    )
    # 0: a terminal's interface; 1: a queue member row's interfaces and status
    devices_of_users = (
        f"SELECT 0, user_id, interface, '', 0 FROM {table(Terminal)} WHERE user_id IN ({{ids}}) "
        f"UNION ALL SELECT 1, user_id, interface, state_interface, status "
        f"FROM {table(QueueMemberState)} WHERE user_id IN ({{ids}})"
    )
    device_states = (
        f"SELECT pbx, interface, state, changed_at FROM {table(DeviceState)} "
        f"WHERE pbx IN ({{pbxes}}) AND interface IN ({{names}})"
    )
    return users, devices_of_users, device_states


def _device_names(
    rows: list[_UserRow],
    interfaces: dict[int, set[str]],
    members: dict[int, list[tuple[str, str, int]]],
) -> tuple[set[str], set[str]]:
    """The device names whose state these users' status needs, and their PBXes."""
    wanted = set().union(*interfaces.values()) if interfaces else set()
    for user_members in members.values():
        wanted |= {state_interface or interface for interface, state_interface, _ in user_members}
    names = {same_device(name) for name in wanted} | wanted
    return names, {str(row[1] or DEFAULT_PBX) for row in rows}


def _derived(
    rows: list[_UserRow],
    interfaces: dict[int, set[str]],
    members: dict[int, list[tuple[str, str, int]]],
    devices: dict[str, dict[str, tuple[str, datetime | None]]],
) -> list[PresenceRow]:
    """Each user's status from what was read, in the order of `rows`."""
    result = []
    for (
        pk,
        pbx,
        company_id,
        extension,
        name,
        mobile,
        dnd,
        dnd_reason,
        paused,
        pause_reason,
        changed,
    ) in rows:
        known = _user_device_states(interfaces[pk], members[pk], devices[str(pbx or DEFAULT_PBX)])
        status = derive_status(
            [state for state, _moment in known], dnd=bool(dnd), paused=bool(paused)
        )
        reason = _reason(
            status, dnd=bool(dnd), dnd_reason=dnd_reason or "", pause_reason=pause_reason or ""
        )
        moments = [moment for _state, moment in known if moment] + ([changed] if changed else [])
        result.append(
            PresenceRow(
                user_id=pk,
                company_id=company_id,
                extension=extension,
                name=name,
                mobile=mobile,
                status=status,
                description=reason or str(STATUS_LABELS[status]),
                reason=reason,
                since=max(moments) if moments else None,
            )
        )
    return result
