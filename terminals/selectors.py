"""Reads for terminals: the live state the PBX listener keeps of each terminal's device."""

from __future__ import annotations

from collections.abc import Iterable

from pbx.directory.agent_matching import same_device
from pbx.live.presence import device_key
from pbx.models import DEFAULT_PBX, DeviceState
from terminals.models import Terminal


def terminal_device_states(terminals: Iterable[Terminal]) -> dict[int, DeviceState]:
    """Terminal id → the listener's DeviceState of its interface on its user's PBX, in one query.

    Matched as the user status matches them (pbx.live.presence): `Local/201@from-queue/n` is the
    device `Local/201@from-queue`. A terminal the PBX never reported has no entry; one without a
    user is looked for on the settings' PBX. Pass terminals with `user__company` selected.
    """
    terminals = [t for t in terminals if t.interface]
    names = {t.interface for t in terminals} | {same_device(t.interface) for t in terminals}
    if not names:
        return {}
    pbx_of = {t.pk: t.user.company.pbx_key if t.user else DEFAULT_PBX for t in terminals}
    states = {
        (row.pbx, device_key(row.interface)): row
        for row in DeviceState.objects.filter(pbx__in=set(pbx_of.values()), interface__in=names)
    }
    found = {}
    for t in terminals:
        row = states.get((pbx_of[t.pk], device_key(t.interface)))
        if row is not None:
            found[t.pk] = row
    return found
