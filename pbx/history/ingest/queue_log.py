"""queue_log lines: `time|callid|queue|agent|event|data…` files and psql dumps of the table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

MAX_LENGTHS = {"callid": 64, "queue_name": 128, "agent": 128, "event": 32, "data": 1024}
LATEST_EPOCH = 4102444800  # 2100-01-01: later "epochs" are garbage, not times


class MalformedLine(ValueError):
    """The line cannot be read as a queue_log line; the message says why."""


@dataclass(frozen=True, slots=True)
class QueueLogRecord:
    time: datetime
    callid: str
    queue_name: str
    agent: str
    event: str
    data: str
    line: str  # the canonical text: a psql dump row and the same line in a file are one line


def parse_line(text: str, *, local_tz: tzinfo) -> QueueLogRecord | None:
    """One line → a record; None for lines that carry nothing (blank, a psql header or rule).

    Runs of NUL bytes (a crash before the file was flushed) are dropped, and the rest of the line
    is read as usual. `local_tz` reads datetime stamps (the SQL variant); epochs are UTC.
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    text = text.rstrip("\r\n")
    if not text.strip():
        return None
    if not text.strip(" -+"):
        return None  # the rule under a psql dump's header
    parts = text.split("|", 5)
    if len(parts) < 5:
        raise MalformedLine(f"{len(parts)} fields, at least 5 expected")
    stamp = parts[0]
    # isdigit() alone takes '²' (int() refuses it: a ValueError, not a malformed line)
    if stamp.isascii() and stamp.isdigit():
        epoch = int(stamp)
        if epoch > LATEST_EPOCH:
            raise MalformedLine(f"time {stamp!r} is out of range")
        time = datetime.fromtimestamp(epoch, UTC)
        callid, queue_name, agent, event = parts[1], parts[2], parts[3], parts[4]
        data = parts[5] if len(parts) == 6 else ""
        canonical = text
    else:
        cells = [cell.strip() for cell in text.split("|")]
        if cells[0] == "time":
            return None  # a psql dump's column header
        time = _parse_stamp(cells[0], local_tz)
        callid, queue_name, agent, event = cells[1:5]
        data_cells = cells[5:]
        while data_cells and not data_cells[-1]:
            data_cells.pop()
        data = "|".join(data_cells)
        canonical = "|".join([str(int(time.timestamp())), *cells[1:5], *data_cells])
    if not event:
        raise MalformedLine("no event")
    record = QueueLogRecord(time, callid, queue_name, agent, event, data, canonical)
    for name, limit in MAX_LENGTHS.items():
        if len(getattr(record, name)) > limit:
            raise MalformedLine(f"{name} longer than {limit} characters")
    return record


def _parse_stamp(value: str, local_tz: tzinfo) -> datetime:
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError) as exc:
        raise MalformedLine(f"time {value[:40]!r} is not an epoch or a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=local_tz)
