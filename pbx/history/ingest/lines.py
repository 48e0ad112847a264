"""Reads of the stored queue_log lines that derivations need, in one place so storage may change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg
from django.db import connection
from django.db.models import F

from pbx.models.history import QueueLogFile, QueueLogLine


def files_of(pbx: str) -> list[int]:
    """The ids of the PBX's queue_log files: derivations read only their lines."""
    return list(QueueLogFile.objects.filter(pbx=pbx).order_by("pk").values_list("pk", flat=True))


def last_lines_before(moments: Sequence[datetime], *, pbx: str) -> dict[datetime, datetime | None]:
    """For each moment, the time of the PBX's latest stored line written before it (its last
    sign of life before a restart); None where there is none."""
    if not moments:
        return {}
    if connection.vendor == "postgresql":
        # One statement; each moment is a backward step on the index on time, the PBX's files a
        # filter on its rows (`+ 0`: never a read of whole files by the (file, number) key).
        # Binary rows (a server-side cursor: Django's are client-side): times loaded in C.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f'SELECT m, (SELECT max("time") FROM {QueueLogLine._meta.db_table} '
                'WHERE "time" < m AND file_id + 0 = ANY(%s::bigint[])) '
                "FROM unnest(%s::timestamptz[]) AS m",
                [files_of(pbx), list(moments)],
                binary=True,
            )
            return dict(cursor.fetchall())
    # As above: the time index, the files a filter (SQLite too would read whole files by key).
    lines = QueueLogLine.objects.alias(file_key=F("file_id") + 0).filter(
        file_key__in=QueueLogFile.objects.filter(pbx=pbx).values("pk")
    )
    return {
        moment: lines.filter(time__lt=moment)
        .order_by("-time")
        .values_list("time", flat=True)
        .first()
        for moment in moments
    }
