"""Live reads: one user's status, the calls up now on its devices, its webphone.

The BLF list and userStatus GET are served from the read cache (pbx/api/read_cache.py).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from pbx.directory.agent_matching import same_device
from pbx.live.presence import UNREACHABLE_DEVICE_STATES, UserStatus, presence_rows_of
from pbx.local_time import local_time
from pbx.models import Company, DeviceState, LiveChannel, PbxUser


def user_status_get(*, user: PbxUser) -> UserStatus:
    """The live status of one user (userStatus GET and the answer of userStatus POST)."""
    (row,) = presence_rows_of([user.pk])
    return row.as_user_status()


def _local(moment: datetime, company: Company) -> str:
    return local_time(moment, company.time_zone)


def current_calls(*, user: PbxUser, now: datetime | None = None) -> list[dict]:
    """Calls up now on the user's devices, newest first (contract.md, current-calls)."""
    now = now or timezone.now()
    interfaces = {same_device(t.interface) for t in user.terminals.all()}
    if not interfaces:
        return []
    rows = []
    seen: set[str] = set()
    channels = LiveChannel.objects.filter(pbx=user.company.pbx_key, interface__in=interfaces)
    for channel in channels.order_by("-started_at", "-pk"):
        call_id = channel.linked_id or channel.unique_id
        if call_id in seen:  # one row per call, even with several legs on the user's devices
            continue
        seen.add(call_id)
        outgoing = channel.linked_id in ("", channel.unique_id)
        other = channel.connected_line_num
        if outgoing and other in ("", "<unknown>", user.extension):
            other = channel.exten
        rows.append(
            {
                "uniqueid": call_id,
                "calldate": _local(channel.started_at, user.company),
                "duration": max(0, int((now - channel.started_at).total_seconds())),
                "number": "" if other == "<unknown>" else other,
                "direction": "outgoing" if outgoing else "incoming",
            }
        )
    return rows


def web_phone(*, user: PbxUser) -> dict:
    """The MAC of the user's webphone, and whether the PBX sees it registered now."""
    from terminals.models import Terminal

    terminal = (
        user.terminals.filter(type=Terminal.Type.WEBPHONE).order_by("-registered", "pk").first()
    )
    if terminal is None:
        return {"username": None, "is_registered": False}
    state = (
        DeviceState.objects.filter(pbx=user.company.pbx_key, interface=terminal.interface)
        .values_list("state", flat=True)
        .first()
    )
    return {
        "username": terminal.mac,
        "is_registered": state is not None and state not in UNREACHABLE_DEVICE_STATES,
    }
