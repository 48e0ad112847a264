"""The listener's last word on its PBX connection, kept in the cache for every process to read."""

from __future__ import annotations

from django.core.cache import cache

from dashboard.payloads import PbxConnectionPayload

PBX_STATE_KEY = "dashboard:pbx-connection"


def pbx_connection() -> PbxConnectionPayload:
    """The listener's last word on the PBX connection; `connected` is None if it never spoke."""
    state = cache.get(PBX_STATE_KEY)
    if state is None:
        return {"connected": None, "since": None}
    return state
