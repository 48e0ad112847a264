"""Moments as the contract writes them: `YYYY-MM-DD HH:MM:SS` on the company's wall clock."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

LOCAL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def local_time(moment: datetime, zone: tzinfo | str) -> str:
    """`moment` (aware) in `zone` (a tzinfo or an IANA name, e.g. a company's time_zone)."""
    if isinstance(zone, str):
        zone = ZoneInfo(zone)
    return moment.astimezone(zone).strftime(LOCAL_TIME_FORMAT)
