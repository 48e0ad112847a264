"""Moments "a while ago" that are still today where the company is, for tests of today's figures.

A test run just after the company's midnight would otherwise date its calls yesterday, and
today's figures would not count them (CI failed so at 00:01 in Madrid).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def earlier_today(seconds: float, *, zone: str | None = None) -> datetime:
    """`seconds` before now, or the first second of today in `zone` (the companies' default
    zone unless given) when that is later."""
    now = timezone.now()
    local = now.astimezone(ZoneInfo(zone or settings.SWAN_DEFAULT_COMPANY_TIME_ZONE))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(now - timedelta(seconds=seconds), midnight + timedelta(seconds=1)).astimezone(UTC)
