"""Writing batches: only lines not stored yet, in bulk (COPY on PostgreSQL), entries re-derived."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from pbx.agents import DirectorySnapshot
from pbx.ingest.cdr import CdrRow
from pbx.ingest.entries import IN_CHUNK, rederive
from pbx.ingest.queue_log import QueueLogRecord
from pbx.models.history import ENTRY_EVENTS, CdrRecord, QueueLogLine

_ENTRY_EVENTS = frozenset(ENTRY_EVENTS)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def store_queue_log(
    records: Sequence[QueueLogRecord], *, directory: DirectorySnapshot
) -> tuple[int, int]:
    """Stores the new lines of a batch and re-derives the entries of their calls.

    Returns (lines added, entries derived). Call inside a transaction.
    """
    if connection.vendor == "postgresql":
        added, callids = _copy_queue_log(records)
    else:
        new = _not_stored(QueueLogLine, _unique(records), by_time=True)
        QueueLogLine.objects.bulk_create(
            [
                QueueLogLine(
                    time=r.time,
                    callid=r.callid,
                    queue_name=r.queue_name,
                    agent=r.agent,
                    event=r.event,
                    data=r.data,
                    digest=r.digest,
                )
                for r in new
            ],
            batch_size=500,
            ignore_conflicts=True,
        )
        added = len(new)
        callids = {r.callid for r in new if r.event in _ENTRY_EVENTS}
    entries = rederive(callids, directory=directory) if callids else 0
    return added, entries


def store_cdr(rows: Sequence[CdrRow]) -> int:
    """Stores the CDR rows not stored yet; returns how many. Call inside a transaction."""
    new = _not_stored(CdrRecord, _unique(rows))
    CdrRecord.objects.bulk_create(
        [CdrRecord(**row.values, digest=row.digest) for row in new],
        batch_size=500,
        ignore_conflicts=True,
    )
    return len(new)


def _unique(records):
    seen = set()
    unique = []
    for record in records:
        if record.digest not in seen:
            seen.add(record.digest)
            unique.append(record)
    return unique


def _not_stored(model, records, *, by_time: bool = False):
    records = list(records)
    stored = set()
    for start in range(0, len(records), IN_CHUNK):
        chunk = records[start : start + IN_CHUNK]
        query = model.objects.filter(digest__in=[r.digest for r in chunk])
        if by_time:  # queue_log lines are unique by (time, digest): use that index
            times = [r.time for r in chunk]
            query = query.filter(time__gte=min(times), time__lte=max(times))
        stored.update(query.values_list("digest", flat=True))
    return [r for r in records if r.digest not in stored]


def _copy_queue_log(records: Sequence[QueueLogRecord]) -> tuple[int, set[str]]:
    """COPY into a staging table, then one INSERT … ON CONFLICT DO NOTHING.

    Returns how many lines were new and the calls whose entry lines were among them.
    """
    table = QueueLogLine._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS swan_qlog_stage "
            '("time" timestamptz, callid text, queue_name text, agent text, event text, '
            "data text, line text)"
        )
        raw = cursor.cursor
        with raw.copy("COPY swan_qlog_stage FROM STDIN") as copy:
            chunk = []
            for r in records:
                chunk.append(
                    "\t".join(
                        (
                            r.time.isoformat(),
                            r.callid.translate(_COPY_ESCAPES),
                            r.queue_name.translate(_COPY_ESCAPES),
                            r.agent.translate(_COPY_ESCAPES),
                            r.event.translate(_COPY_ESCAPES),
                            r.data.translate(_COPY_ESCAPES),
                            r.line.translate(_COPY_ESCAPES),
                        )
                    )
                )
                if len(chunk) >= 5000:
                    copy.write("\n".join(chunk) + "\n")
                    chunk = []
            if chunk:
                copy.write("\n".join(chunk) + "\n")
        cursor.execute(
            f'WITH added AS (INSERT INTO {table} ("time", callid, queue_name, agent, event, data, digest) '
            'SELECT "time", callid, queue_name, agent, event, data, md5(line)::uuid FROM swan_qlog_stage '
            'ON CONFLICT ("time", digest) DO NOTHING RETURNING callid, event) '
            "SELECT count(*), array_agg(DISTINCT callid) FILTER (WHERE event = ANY(%s)) FROM added",
            [list(ENTRY_EVENTS)],
        )
        added, callids = cursor.fetchone()
        cursor.execute("TRUNCATE swan_qlog_stage")
    return added, set(callids or ())
