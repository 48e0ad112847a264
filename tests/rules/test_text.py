"""The text rules every entry point shares: control characters, the contract's local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pbx.local_time import local_time
from pbx.text import has_control_character


@pytest.mark.parametrize("text", ["a\rb", "a\nb", "\x00", "tab\there", "del\x7f", "\x1b[31m"])
def test_control_characters_are_found(text):
    assert has_control_character(text)


@pytest.mark.parametrize("text", ["", "Ana María", "+34 931 23 45 67", "PJSIP/201-0000001a", "ñ€"])
def test_printable_text_passes(text):
    assert not has_control_character(text)


def test_local_time_is_the_company_wall_clock_by_name_or_zone():
    moment = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # the hour Madrid moves to summer time
    assert local_time(moment, "Europe/Madrid") == "2026-03-29 03:30:00"
    assert local_time(moment, ZoneInfo("America/Bogota")) == "2026-03-28 20:30:00"
