"""CDR rows from Asterisk's `cdr` table in its own database (the `cdr` alias, CDR_DATABASE_URL)."""

from __future__ import annotations

import re
import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from pbx.directory.agent_matching import AgentDirectory
from pbx.history.ingest.cdr import build_row
from pbx.history.ingest.queue_log import MalformedLine
from pbx.history.ingest.runner import Report, StopFlag
from pbx.history.ingest.store import store_cdr
from pbx.models import DEFAULT_PBX
from pbx.models.history import IngestCursor

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass
class TableIngest:
    """Reads new rows of one PBX's table: by `id` when it has one, else by calldate with a look-back.

    A row is written when its call ends but dated when it began, so a calldate mark alone would
    skip long calls: each run re-reads `lookback` before the mark, and duplicates are ignored.
    """

    connection: BaseDatabaseWrapper
    table: str
    time_zone: zoneinfo.ZoneInfo
    batch_size: int = 5000
    lookback: timedelta = timedelta(hours=6)
    pbx: str = DEFAULT_PBX
    stop: StopFlag = field(default_factory=StopFlag)
    report: Report = field(default_factory=Report)

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.table):
            raise ValueError(f"{self.table!r} is not a table name")

    @property
    def source(self) -> str:
        return f"db:{self.connection.alias}:{self.table}"

    def run(self) -> Report:
        cursor, _ = IngestCursor.objects.get_or_create(
            pbx=self.pbx, source=self.source, defaults={"kind": "cdr_db"}
        )
        directory = AgentDirectory.load(self.pbx)
        quoted = ".".join(self.connection.ops.quote_name(p) for p in self.table.split("."))
        with self.connection.cursor() as db:
            db.execute(f"SELECT * FROM {quoted} WHERE 1 = 0")
            columns = [c[0].lower() for c in db.description]
            by_id = "id" in columns
            mark = cursor.mark
            while not self.stop.requested:
                if by_id:
                    db.execute(
                        f"SELECT * FROM {quoted} WHERE id > %s ORDER BY id LIMIT %s",
                        [int(mark or 0), self.batch_size],
                    )
                else:
                    since = (
                        datetime.fromisoformat(mark) - self.lookback
                        if mark
                        else datetime(1970, 1, 2, tzinfo=UTC)
                    )
                    db.execute(
                        f"SELECT * FROM {quoted} WHERE calldate >= %s ORDER BY calldate",
                        [since.replace(tzinfo=None)],
                    )
                fetched = db.fetchall()
                rows = []
                for number, values in enumerate(fields_of(columns, fetched), start=1):
                    self.report.lines += 1
                    try:
                        rows.append(build_row(values, local_tz=self.time_zone, directory=directory))
                    except MalformedLine as exc:
                        ident = values.get("id", number)
                        self.report.add_malformed(
                            int(ident or number), str(exc), repr(values)[:200]
                        )
                with transaction.atomic():
                    self.report.added += store_cdr(rows, pbx=self.pbx)
                    if by_id and fetched:
                        mark = str(max(int(v["id"]) for v in fields_of(columns, fetched)))
                    elif fetched:
                        latest = max(
                            (v["calldate"] for v in fields_of(columns, fetched) if _dated(v)),
                            default=None,
                        )
                        mark = _naive_text(latest) if latest else mark
                    cursor.mark = mark or ""
                    cursor.save()
                if not by_id or len(fetched) < self.batch_size:
                    break
        return self.report

    def follow(self, *, poll_seconds: float = 5.0) -> Report:
        with self.stop.on_signals():
            while not self.stop.requested:
                self.run()
                deadline = time.monotonic() + poll_seconds
                while not self.stop.requested and time.monotonic() < deadline:
                    time.sleep(0.2)
        return self.report


def fields_of(columns: list[str], rows: list[tuple]) -> list[dict]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _dated(values: dict) -> bool:
    value = values.get("calldate")
    return bool(value) and not str(value).startswith("0000")


def _naive_text(value) -> str:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return str(value)
