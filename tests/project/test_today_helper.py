"""tests/today.py: "a while ago" stays today just after the company's midnight."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from tests.today import earlier_today


def test_just_after_midnight_it_is_the_first_second_of_the_day(monkeypatch):
    # 00:01:30 in Madrid (UTC+1 in December)
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 4, 23, 1, 30, tzinfo=UTC))
    assert earlier_today(120, zone="Europe/Madrid") == datetime(2026, 12, 4, 23, 0, 1, tzinfo=UTC)


def test_later_in_the_day_it_is_that_long_ago(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 4, 10, 0, tzinfo=UTC))
    assert earlier_today(300, zone="Europe/Madrid") == datetime(2026, 12, 4, 9, 55, tzinfo=UTC)
