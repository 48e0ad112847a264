"""Each listener's last word on its PBX connection, kept in the cache for every process to read."""

from __future__ import annotations

from django.core.cache import cache

from dashboard.payloads import PbxConnectionPayload

PBX_STATE_KEY = "dashboard:pbx-connection"


def pbx_state_key(pbx: str) -> str:
    return f"{PBX_STATE_KEY}:{pbx}"


def pbx_connection(pbx: str) -> PbxConnectionPayload:
    """The listener's last word on this PBX's connection; `connected` is None if it never spoke."""
    state = cache.get(pbx_state_key(pbx))
    if state is None:
        return {"connected": None, "since": None}
    return state
