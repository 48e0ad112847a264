"""Writing batches: queue_log lines under their file and line number, CDR rows not stored yet."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.db import connection
from psycopg.types.numeric import Int8

from pbx.history.ingest.cdr import CdrRow
from pbx.history.ingest.entries import IN_CHUNK
from pbx.history.ingest.queue_log import LATEST_EPOCH, MAX_LENGTHS, QueueLogRecord
from pbx.history.ingest.repeats import RepeatFilter
from pbx.models.history import (
    LINES_PER_BLOCK,
    CdrRecord,
    QueueLogBlockTimes,
    QueueLogFile,
    QueueLogLine,
)
from pbx.plain_sql import first_value

Parse = Callable[[int, str], QueueLogRecord | None]
# Lines parse_line is sure to read as records (a stricter test than its own): a repeat of one is a
# duplicate without being parsed again. 4099999999 stays below LATEST_EPOCH.
_SURELY_A_RECORD = re.compile(
    r"(?:[0-9]{1,9}|[0-3][0-9]{9}|40[0-9]{8})"
    rf"\|[^|]{{0,{MAX_LENGTHS['callid']}}}\|[^|]{{0,{MAX_LENGTHS['queue_name']}}}"
    rf"\|[^|]{{0,{MAX_LENGTHS['agent']}}}\|[^|]{{1,{MAX_LENGTHS['event']}}}"
    rf"(?:\|.{{0,{MAX_LENGTHS['data']}}})?",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Stored:
    added: int
    blank: int  # empty lines, not handed to `parse`


def commit_without_flush() -> None:
    """PostgreSQL: this transaction's commit returns before its WAL reaches the disk.

    A server crash may then lose the last moment's commits, but each carries its cursor: what
    they stored is simply read again, never lost or doubled. Waiting for the disk on every batch
    took longer than storing it. Only for the lines' batches: a derivation numbers a live change,
    which must not be lost once seen (derive.derive_pending).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def store_queue_log(
    logfile: QueueLogFile, first: int, lines: list[str], *, repeats: RepeatFilter, parse: Parse
) -> Stored:
    """Stores a batch of lines numbered from `first`: the records that do not repeat a line.

    `lines` come without their newline, NUL bytes or carriage return. `parse(index, line)` reads
    the lines that need Python and returns None for a blank or malformed one (it reports those).
    On PostgreSQL, plain `epoch|callid|queue|agent|event|data` lines never reach Python: one
    statement splits, checks and inserts them. Call inside a transaction, with the cursor.
    """
    original = lines
    candidates = repeats.candidates(lines)
    if candidates:
        lines = list(lines)
        for index in candidates:
            if not _SURELY_A_RECORD.fullmatch(lines[index]):
                parse(index, lines[index])  # a record is a repeat; anything else is reported
            lines[index] = ""
    blank = lines.count("") - len(candidates)
    if connection.vendor == "postgresql":
        added, rest = _insert_plain_lines(logfile.pk, first, lines)
    else:
        added, rest = 0, [index for index, line in enumerate(lines) if line]
    records = _new_records(original, rest, repeats, parse)
    added += _insert_records(logfile.pk, first, records)
    record_block_times(logfile.pk, [(first + index, r.time) for index, r in records])
    # psql dump lines are known by their canonical text, plain lines by their own.
    repeats.remember(original, [r.line for i, r in records if r.line != original[i]])
    return Stored(added, blank)


def known_lines(lines: list[str], *, repeats: RepeatFilter, parse: Parse) -> int:
    """Lines the file gave before (read again): nothing is stored, blank and malformed ones are
    still reported by `parse`, and they join the repeats window. Returns how many are empty."""
    if connection.vendor == "postgresql":
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_NOT_PLAIN, {"text": "\n".join(lines)})
            rest = first_value(cursor) or []
    else:
        rest = [index for index, line in enumerate(lines) if line]
    for index in rest:
        parse(index, lines[index])
    repeats.remember(lines)
    return lines.count("")


def _new_records(
    lines: list[str], rest: list[int], repeats: RepeatFilter, parse: Parse
) -> list[tuple[int, QueueLogRecord]]:
    """The lines read in Python, without repeats of their canonical text (psql dumps)."""
    if not rest:
        return []
    first_index = dict(zip(reversed(lines), range(len(lines) - 1, -1, -1), strict=True))
    seen: set[str] = set()
    records = []
    for index in rest:
        record = parse(index, lines[index])
        if record is None:
            continue
        key = record.line
        if key in seen or repeats.seen(key) or first_index.get(key, index) < index:
            continue
        seen.add(key)
        records.append((index, record))
    return records


def _insert_records(file_id: int, first: int, records: list[tuple[int, QueueLogRecord]]) -> int:
    if not records:
        return 0
    if connection.vendor != "postgresql":
        QueueLogLine.objects.bulk_create(
            [
                QueueLogLine(
                    file_id=file_id,
                    number=first + index,
                    time=r.time,
                    callid=r.callid,
                    queue_name=r.queue_name,
                    agent=r.agent,
                    event=r.event,
                    data=r.data,
                )
                for index, r in records
            ],
            batch_size=500,
        )
        return len(records)
    columns = zip(
        *(
            (first + i, r.time, r.callid, r.queue_name, r.agent, r.event, r.data)
            for i, r in records
        ),
        strict=True,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_TABLE} {_COLUMNS} SELECT %s, * FROM unnest(%s::bigint[], "
            "%s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])",
            [file_id, *map(list, columns)],
        )
        return cursor.rowcount


def record_block_times(file_id: int, lines: Iterable[tuple[int, datetime]]) -> None:
    """Widens the times of the blocks that these stored lines (number, time) of a file fall in,
    as _INSERT_PLAIN does in its own statement."""
    times: dict[int, tuple[datetime, datetime]] = {}
    for number, moment in lines:
        block = (number - 1) // LINES_PER_BLOCK
        earliest, latest = times.get(block, (moment, moment))
        times[block] = (min(earliest, moment), max(latest, moment))
    if not times:
        return
    adapt = connection.ops.adapt_datetimefield_value
    least, greatest = ("least", "greatest") if connection.vendor == "postgresql" else ("min", "max")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_BLOCKS} (file_id, block, earliest, latest) VALUES "
            + ", ".join(["(%s, %s, %s, %s)"] * len(times))
            + " ON CONFLICT (file_id, block) DO UPDATE"
            f" SET earliest = {least}({_BLOCKS}.earliest, excluded.earliest),"
            f" latest = {greatest}({_BLOCKS}.latest, excluded.latest)",
            [
                value
                for block, (low, high) in times.items()
                for value in (file_id, block, adapt(low), adapt(high))
            ],
        )


def store_cdr(rows: Sequence[CdrRow], *, pbx: str) -> int:
    """Stores the PBX's CDR rows not stored yet for it; returns how many. Call inside a
    transaction. The same row read for another PBX is that PBX's row."""
    new = _not_stored(_unique(rows), pbx)
    CdrRecord.objects.bulk_create(
        [CdrRecord(**row.values, pbx=pbx, digest=row.digest) for row in new],
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


def _not_stored(records: list[CdrRow], pbx: str) -> list[CdrRow]:
    stored: set[uuid.UUID] = set()
    for start in range(0, len(records), IN_CHUNK):
        chunk = records[start : start + IN_CHUNK]
        stored.update(
            CdrRecord.objects.filter(pbx=pbx, digest__in=[r.digest for r in chunk]).values_list(
                "digest", flat=True
            )
        )
    return [r for r in records if r.digest not in stored]


_TABLE = QueueLogLine._meta.db_table
_COLUMNS = '(file_id, number, "time", callid, queue_name, agent, event, data)'


def _fits(column: str, limit: int) -> str:
    # Counting bytes is much cheaper than counting characters, and never gives fewer.
    return f"(octet_length({column}) <= {limit} OR char_length({column}) <= {limit})"


# A line is plain when parse_line would read it as an epoch line without complaint; the rest is
# left to it. split_part is several times faster than string_to_array, ltrim than a regex. CASE
# makes sure only digits are cast. OFFSET 0 keeps each field from being split again where used.
_SPLIT = """
    SELECT n - 1 AS i, line, split_part(line, '|', 1) AS stamp,
           split_part(line, '|', 2) AS callid, split_part(line, '|', 3) AS queue_name,
           split_part(line, '|', 4) AS agent, split_part(line, '|', 5) AS event
    FROM string_to_table(%(text)s, E'\\n') WITH ORDINALITY AS t(line, n)
    OFFSET 0"""
_PLAIN = f"""
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
    ELSE false END"""
# The blocks' times are widened in the same statement (store.record_block_times does it elsewhere).
_BLOCKS = QueueLogBlockTimes._meta.db_table
_INSERT_PLAIN = f"""
WITH added AS (
    INSERT INTO {_TABLE} {_COLUMNS}
    SELECT %(file)s, %(first)s + i, to_timestamp(stamp::bigint), callid, queue_name, agent, event,
           substr(line, char_length(stamp) + char_length(callid) + char_length(queue_name)
                        + char_length(agent) + char_length(event) + 6)
    FROM ({_SPLIT}) AS fields
    WHERE {_PLAIN}
    RETURNING number, "time"
), blocks AS (
    INSERT INTO {_BLOCKS} AS b (file_id, block, earliest, latest)
    SELECT %(file)s, (number - 1) / {LINES_PER_BLOCK}, min("time"), max("time") FROM added GROUP BY 2
    ON CONFLICT (file_id, block) DO UPDATE
        SET earliest = least(b.earliest, excluded.earliest),
            latest = greatest(b.latest, excluded.latest)
)
SELECT count(*) FROM added"""
_NOT_PLAIN = f"""
    SELECT array_agg(i ORDER BY i) FROM ({_SPLIT}) AS fields WHERE line <> '' AND NOT {_PLAIN}"""


def _insert_plain_lines(file_id: int, first: int, lines: list[str]) -> tuple[int, list[int]]:
    """One INSERT … SELECT of the plain lines; returns (added, indexes of the other lines)."""
    params = {"file": Int8(file_id), "first": Int8(first), "text": "\n".join(lines)}
    # psycopg's own cursor sends the batch's text as a parameter: Django's quotes it into the SQL
    # (a megabyte per batch, escaped in Python, then parsed as a literal). Not prepared: Django's
    # connections prepare nothing, and planning takes 0.7 ms a batch.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_INSERT_PLAIN, params)
        added = first_value(cursor)
        if added == len(lines) - lines.count(""):
            return added, []
        cursor.execute(_NOT_PLAIN, params)
        return added, first_value(cursor) or []
