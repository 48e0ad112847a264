"""Reads for terminals: the live state the PBX listener keeps of each terminal's device."""

from __future__ import annotations

from collections.abc import Iterable

from pbx.directory.agent_matching import same_device
from pbx.live.presence import device_key
from pbx.models import DeviceState
from terminals.models import Terminal


def terminal_device_states(terminals: Iterable[Terminal]) -> dict[int, DeviceState]:
    """Terminal id → the listener's DeviceState of its interface, in one query.

    Matched as the user status matches them (pbx.live.presence): `Local/201@from-queue/n` is the
    device `Local/201@from-queue`. A terminal the PBX never reported has no entry.
    """
    terminals = [t for t in terminals if t.interface]
    names = {t.interface for t in terminals} | {same_device(t.interface) for t in terminals}
    if not names:
        return {}
    states = {
        device_key(row.interface): row for row in DeviceState.objects.filter(interface__in=names)
    }
    return {
        t.pk: states[device_key(t.interface)]
        for t in terminals
        if device_key(t.interface) in states
    }
