"""Writing batches: only lines not stored yet, in bulk (COPY on PostgreSQL), entries re-derived."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import connection

from pbx.agents import DirectorySnapshot
from pbx.ingest.cdr import CdrRow
from pbx.ingest.entries import IN_CHUNK, rederive
from pbx.ingest.queue_log import LATEST_EPOCH, MAX_LENGTHS, QueueLogRecord
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


def store_queue_log_text(
    text: str,
    *,
    parse: Callable[[int, str], QueueLogRecord | None],
    directory: DirectorySnapshot,
) -> tuple[int, int]:
    """PostgreSQL: stores newline-terminated lines, split and checked in SQL; re-derives entries.

    Plain `epoch|callid|queue|agent|event|data` lines never reach Python. The others (blank,
    malformed, psql dumps) go to `parse(index, line)`, which reports them or returns a record.
    Returns (lines added, entries derived). Call inside a transaction.
    """
    added, callids, rest = _insert_plain_lines(text[:-1].replace("\x00", ""))
    if rest:
        lines = text[:-1].split("\n")
        records = [r for i in rest if (r := parse(i, lines[i])) is not None]
        if records:
            more, more_callids = _copy_queue_log(records)
            added += more
            callids |= more_callids
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


def _fits(column: str, limit: int) -> str:
    # Counting bytes is much cheaper than counting characters, and never gives fewer.
    return f"(octet_length({column}) <= {limit} OR char_length({column}) <= {limit})"


# `ok`: parse_line would read the line as an epoch line without complaint; the rest is left to
# it. split_part is several times faster than string_to_array, ltrim than a regex. CASE makes
# sure only digits are cast. OFFSET 0 keeps each field from being split again wherever it is used.
_PLAIN_LINES = f"""
WITH lines AS MATERIALIZED (
    SELECT i, line, stamp, callid, queue_name, agent, event,
           substr(line, char_length(stamp) + char_length(callid) + char_length(queue_name)
                        + char_length(agent) + char_length(event) + 6) AS data,
           CASE WHEN event <> '' AND stamp <> '' AND octet_length(stamp) <= 10
                     AND ltrim(stamp, '0123456789') = '' THEN
               stamp::bigint <= {LATEST_EPOCH}
               AND {_fits("callid", MAX_LENGTHS["callid"])}
               AND {_fits("queue_name", MAX_LENGTHS["queue_name"])}
               AND {_fits("agent", MAX_LENGTHS["agent"])}
               AND {_fits("event", MAX_LENGTHS["event"])}
               AND (octet_length(line) <= {MAX_LENGTHS["data"]}
                    OR char_length(line) - char_length(stamp) - char_length(callid)
                       - char_length(queue_name) - char_length(agent) - char_length(event) - 5
                       <= {MAX_LENGTHS["data"]})
           ELSE false END AS ok
    FROM (
        SELECT n - 1 AS i, line, split_part(line, '|', 1) AS stamp,
               split_part(line, '|', 2) AS callid, split_part(line, '|', 3) AS queue_name,
               split_part(line, '|', 4) AS agent, split_part(line, '|', 5) AS event
        FROM (
            SELECT n, rtrim(line, E'\\r') AS line
            FROM string_to_table(%s, E'\\n') WITH ORDINALITY AS t(line, n)
        ) AS raw
        OFFSET 0
    ) AS fields
), added AS (
    INSERT INTO {QueueLogLine._meta.db_table}
        ("time", callid, queue_name, agent, event, data, digest)
    SELECT to_timestamp(stamp::bigint), callid, queue_name, agent, event, data, md5(line)::uuid
    FROM lines WHERE ok
    ON CONFLICT ("time", digest) DO NOTHING
    RETURNING callid, event
)
SELECT (SELECT count(*) FROM added),
       (SELECT array_agg(DISTINCT callid) FROM added WHERE event = ANY(%s)),
       (SELECT array_agg(i ORDER BY i) FROM lines WHERE NOT ok)
"""


def _insert_plain_lines(text: str) -> tuple[int, set[str], list[int]]:
    """One INSERT … SELECT of the plain lines; returns (added, entry callids, indexes of the rest)."""
    with connection.cursor() as cursor:
        cursor.execute(_PLAIN_LINES, [text, list(ENTRY_EVENTS)])
        added, callids, rest = cursor.fetchone()
    return added, set(callids or ()), rest or []
