"""Status derivation rules of contract.md (Status)."""

from __future__ import annotations

import pytest

from pbx.live.presence import derive_status


@pytest.mark.parametrize(
    ("states", "flags", "expected"),
    [
        ([], {}, "unavailable"),
        ([], {"dnd": True, "paused": True}, "unavailable"),
        (["UNAVAILABLE"], {}, "unavailable"),
        (["INVALID", "UNKNOWN"], {"paused": True}, "unavailable"),
        (["RINGING"], {}, "ringing"),
        (["RINGINUSE"], {"paused": True}, "ringing"),
        (["INUSE"], {}, "busy"),
        (["BUSY"], {}, "busy"),
        (["ONHOLD"], {}, "busy"),
        (["NOT_INUSE"], {"dnd": True}, "busy"),
        (["NOT_INUSE"], {"dnd": True, "paused": True}, "busy"),
        (["NOT_INUSE"], {"paused": True}, "pause"),
        (["NOT_INUSE"], {}, "available"),
        # several devices: unavailable only when all are; ringing beats busy beats idle
        (["UNAVAILABLE", "NOT_INUSE"], {}, "available"),
        (["INUSE", "RINGING"], {}, "ringing"),
        (["NOT_INUSE", "INUSE"], {}, "busy"),
        (["UNAVAILABLE", "INUSE"], {"paused": True}, "busy"),
    ],
)
def test_status_rules_first_match_wins(states, flags, expected):
    assert derive_status(states, **flags) == expected
