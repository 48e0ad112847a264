"""Reads of the stored queue_log lines that derivations need, in one place so storage may change."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import datetime

import psycopg
from django.db import connection, transaction

from pbx.models.history import LINES_PER_BLOCK, QueueLogBlockTimes, QueueLogFile, QueueLogLine
from pbx.plain_sql import first_value


def files_of(pbx: str) -> list[int]:
    """The ids of the PBX's queue_log files: derivations read only their lines."""
    return list(QueueLogFile.objects.filter(pbx=pbx).order_by("pk").values_list("pk", flat=True))


def last_lines_before(moments: Sequence[datetime], *, pbx: str) -> dict[datetime, datetime | None]:
    """For each moment, the time of the PBX's latest stored line written before it (its last
    sign of life before a restart); None where there is none.

    A block of lines that no moment cuts (all its times fall between the same two moments) only
    offers its latest time, to the moments after it. The lines of the blocks that a moment cuts
    are read: in a PBX's file written in order, about one block per moment.
    """
    if not moments:
        return {}
    cuts = sorted(set(moments))
    latest_before: dict[int, datetime] = {}  # index of the first moment after a whole block
    straddling = []
    blocks = QueueLogBlockTimes.objects.filter(file__pbx=pbx).values_list(
        "file_id", "block", "earliest", "latest"
    )
    for file_id, block, earliest, latest in blocks:
        after = bisect_right(cuts, latest)
        if bisect_right(cuts, earliest) == after:
            if after < len(cuts) and (after not in latest_before or latest > latest_before[after]):
                latest_before[after] = latest
        else:
            straddling.append((file_id, block))
    cut_lines = _last_lines_of_blocks(straddling, cuts)
    answers: dict[datetime, datetime | None] = {}
    running: datetime | None = None
    for index, moment in enumerate(cuts):
        whole = latest_before.get(index)
        if whole is not None and (running is None or whole > running):
            running = whole
        found = (running, cut_lines.get(moment))
        answers[moment] = max((line for line in found if line is not None), default=None)
    return {moment: answers[moment] for moment in moments}


def _last_lines_of_blocks(
    blocks: list[tuple[int, int]], cuts: list[datetime]
) -> dict[datetime, datetime | None]:
    """For each moment, the latest time before it among the lines of these (file, block)s."""
    if not blocks:
        return {}
    if connection.vendor == "postgresql":
        # The lines and the moments sorted together, a moment before lines of its own second;
        # a moment's answer is the latest line so far (1 s for 62,500 moments cutting all 100
        # blocks of the benchmark's file). Each block is read by the key: OFFSET 0 keeps the
        # planner from one hash join of the whole table with every block (45 s), and no seq
        # scan from reading the whole table once per block (9 s), which statistics taken while
        # the table was small would make look cheap. Binary rows (a server-side cursor:
        # Django's are client-side): times loaded in C.
        with transaction.atomic(), psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                "SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)"
            )
            seqscan = first_value(cursor)
            cursor.execute(
                "SELECT t, latest FROM ("
                "  SELECT t, is_cut, max(t) FILTER (WHERE NOT is_cut)"
                "         OVER (ORDER BY t, is_cut DESC ROWS UNBOUNDED PRECEDING) AS latest"
                "  FROM (SELECT unnest(%s::timestamptz[]) AS t, true AS is_cut"
                "        UNION ALL"
                "        SELECT l.t, false FROM unnest(%s::bigint[], %s::bigint[]) AS b(file_id, block)"
                '        CROSS JOIN LATERAL (SELECT "time" AS t FROM '
                f"           {QueueLogLine._meta.db_table} WHERE file_id = b.file_id"
                f"           AND number BETWEEN b.block * {LINES_PER_BLOCK} + 1"
                f"           AND (b.block + 1) * {LINES_PER_BLOCK} OFFSET 0) AS l) AS u"
                ") AS w WHERE is_cut",
                [cuts, [file_id for file_id, _ in blocks], [block for _, block in blocks]],
                binary=True,
            )
            found = dict(cursor.fetchall())
            cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [seqscan])
            return found
    times: list[datetime] = []
    for file_id, block in blocks:
        times.extend(
            QueueLogLine.objects.filter(
                file_id=file_id,
                number__gte=block * LINES_PER_BLOCK + 1,
                number__lte=(block + 1) * LINES_PER_BLOCK,
            ).values_list("time", flat=True)
        )
    times.sort()
    return {moment: times[i - 1] if (i := bisect_left(times, moment)) else None for moment in cuts}
