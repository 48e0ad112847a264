"""Reads of the stored queue_log lines that derivations need, in one place so storage may change."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max

from pbx.models.history import QueueLogLine


def last_line_before(moment: datetime) -> datetime | None:
    """The time of the latest stored line written before `moment`: the PBX's last sign of life."""
    return QueueLogLine.objects.filter(time__lt=moment).aggregate(last=Max("time"))["last"]
