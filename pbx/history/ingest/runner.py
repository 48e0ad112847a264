"""The ingest loop: batches of lines parsed, stored with the cursor in one transaction, followed live."""

from __future__ import annotations

import signal
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from pbx.directory.agent_matching import AgentDirectory
from pbx.history.ingest import derive, files, logfiles
from pbx.history.ingest.background import BackgroundDeriver
from pbx.history.ingest.cdr import parse_csv_line
from pbx.history.ingest.queue_log import MalformedLine, parse_line
from pbx.history.ingest.repeats import WINDOW, RepeatFilter
from pbx.history.ingest.store import commit_without_flush, known_lines, store_cdr, store_queue_log
from pbx.models import DEFAULT_PBX

MAX_KEPT_MALFORMED = 1000
DIRECTORY_REFRESH_SECONDS = 60.0
# Lines stored before their entries are derived, within one run. SQLite derives in Python, after
# every batch as it always did: a stop request then never waits for more than one batch's entries.
DERIVE_EVERY = 100_000


@dataclass
class Report:
    lines: int = 0
    added: int = 0
    ignored: int = 0
    entries: int = 0
    malformed_count: int = 0
    malformed: list[tuple[int, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.lines - self.added - self.ignored - self.malformed_count

    def add_malformed(self, number: int, reason: str, text: str) -> None:
        self.malformed_count += 1
        if len(self.malformed) < MAX_KEPT_MALFORMED:
            self.malformed.append((number, reason, text.rstrip("\r\n")[:200]))


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes its batch, saves the cursor and returns."""

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_args: Any) -> None:
        self.requested = True

    @contextmanager
    def on_signals(self) -> Iterator[StopFlag]:
        previous = {sig: signal.signal(sig, self.set) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def cdr_time_zone(name: str | None = None) -> zoneinfo.ZoneInfo:
    """The PBX's local time zone for CDR stamps: the option, CDR_TIME_ZONE, else TIME_ZONE."""
    return zoneinfo.ZoneInfo(name or getattr(settings, "CDR_TIME_ZONE", None) or settings.TIME_ZONE)


@dataclass
class FileIngest:
    """Ingests one file (queue_log or Master.csv) of one PBX from its cursor; `run` once or
    `follow`. Its lines are that PBX's: matched against its companies only, stored and derived
    under its key."""

    path: Path
    kind: str  # "queue_log" or "cdr_csv"
    time_zone: zoneinfo.ZoneInfo
    pbx: str = DEFAULT_PBX
    batch_size: int = 10000
    progress_every: int = 100_000
    derive_every: int | None = None  # DERIVE_EVERY on PostgreSQL, every batch elsewhere
    progress: Callable[[str], None] | None = None
    stop: StopFlag = field(default_factory=StopFlag)
    report: Report = field(default_factory=Report)
    _directory: AgentDirectory | None = None
    _deriver: BackgroundDeriver | None = None
    _directory_loaded: float = 0.0
    _started: float = 0.0

    def directory(self) -> AgentDirectory:
        now = time.monotonic()
        if self._directory is None or now - self._directory_loaded > DIRECTORY_REFRESH_SECONDS:
            self._directory = AgentDirectory.load(self.pbx)
            self._directory_loaded = now
        return self._directory

    def run(self) -> Report:
        """Reads what is there now and returns; what was read is remembered in the cursor."""
        self._started = self._started or time.monotonic()
        if self.kind == "queue_log":
            self._derive()  # what a run stopped by a crash stored without deriving
        cursor = files.cursor_for(self.path, kind=self.kind, pbx=self.pbx)
        segments, notes = files.plan(self.path, cursor)
        self.report.notes.extend(notes)
        try:
            for segment in segments:
                files.start_segment(cursor, segment)
                if self.kind == "queue_log":
                    self._run_queue_log(cursor, segment)
                else:
                    self._run_lines(cursor, segment)
                if self.stop.requested:
                    break
        except BaseException:
            if self._deriver is not None:
                self._deriver.finish(raising=False)
                self._deriver = None
            raise
        if self._deriver is not None:
            self.report.entries += self._deriver.finish()
            self._deriver = None
        if self.kind == "queue_log":
            self._derive()
        return self.report

    def _run_lines(self, cursor, segment: files.Segment) -> None:
        """Master.csv line by line: each parsed in Python, stored every `batch_size` records."""
        batch: list[Any] = []
        last: files.RawLine | None = None
        for line in files.read_lines(segment):
            self.report.lines += 1
            last = line
            record = self._parse_counted(line.number, line.text)
            if record is not None:
                batch.append(record)
            if len(batch) >= self.batch_size or (not batch and line.number % self.batch_size == 0):
                self._store_cdr(batch, cursor, segment, last)
                batch = []
                if self.stop.requested:
                    return
            if self.progress and self.report.lines % self.progress_every == 0:
                self._progress()
        if last is not None:
            self._store_cdr(batch, cursor, segment, last)

    def _run_queue_log(self, cursor, segment: files.Segment) -> None:
        """queue_log: `batch_size` lines at a time, stored under the file they belong to."""
        logfile = logfiles.identify(segment.path, pbx=self.pbx)
        if logfile is None:
            return  # empty: nothing to read yet
        repeats = RepeatFilter(files.lines_before(segment, WINDOW))
        derived = logfile.derived_lines
        every = self.derive_every or (DERIVE_EVERY if connection.vendor == "postgresql" else 1)
        base = self.report.lines
        blocks = files.read_blocks(segment, lambda read: self._block_size(base + read))
        for block, lines in files.read_ahead(blocks):
            self.report.lines += block.count
            # Lines this file already gave (read again under another name, or without a cursor).
            known = min(max(logfile.lines - block.first_number + 1, 0), block.count)
            with transaction.atomic():
                commit_without_flush()
                if known:
                    self.report.ignored += known_lines(
                        lines[:known], repeats=repeats, parse=self._parser(block.first_number)
                    )
                if known < block.count:
                    first = block.first_number + known
                    stored = store_queue_log(
                        logfile, first, lines[known:], repeats=repeats, parse=self._parser(first)
                    )
                    self.report.added += stored.added
                    self.report.ignored += stored.blank
                files.advance(cursor, segment, block.last)
                if logfiles.advance(logfile, segment.path, block.last):
                    logfiles.save_advance(logfile)
                cursor.save()
            if self.progress and self.report.lines % self.progress_every == 0:
                self._progress()
            if logfile.lines - derived >= every:
                derived = logfile.lines
                self._derive_soon(logfile)
            if self.stop.requested:
                return

    def _derive_soon(self, logfile) -> None:
        """Derives what was stored so far: beside the ingest when it can, else right now."""
        if self._deriver is None and BackgroundDeriver.usable():
            self._deriver = BackgroundDeriver(self.directory(), pbx=self.pbx)
        if self._deriver is not None:
            self._deriver.poke()
        else:
            self.report.entries += derive.derive_pending(logfile, directory=self.directory())

    def _derive(self) -> None:
        """Everything derived from stored lines happens in derive.derive_pending (one place)."""
        for logfile in derive.pending_files(self.pbx):
            self.report.entries += derive.derive_pending(logfile, directory=self.directory())
        derive.derive_pending_spans(self.pbx)  # what a background deriver, or a crash, left

    def _parser(self, first: int) -> Callable[[int, str], Any]:
        return lambda index, text: self._parse_counted(first + index, text)

    def _block_size(self, lines: int) -> int:
        # Blocks end on progress marks, so progress lines read as they do line by line.
        return min(self.batch_size, self.progress_every - lines % self.progress_every)

    def _parse_counted(self, number: int, text: str) -> Any:
        """The line's record; None for a blank or malformed line, counted in the report."""
        try:
            record = self._parse(text)
        except MalformedLine as exc:
            self.report.add_malformed(number, str(exc), text)
            return None
        if record is None:
            self.report.ignored += 1
        return record

    def follow(self, *, poll_seconds: float = 1.0) -> Report:
        """Reads, then keeps polling for new lines until stopped (SIGTERM, Ctrl-C)."""
        with self.stop.on_signals():
            while not self.stop.requested:
                self.run()
                deadline = time.monotonic() + poll_seconds
                while not self.stop.requested and time.monotonic() < deadline:
                    time.sleep(min(0.2, poll_seconds))
        return self.report

    def _parse(self, text: str) -> Any:
        if self.kind == "queue_log":
            return parse_line(text, local_tz=self.time_zone)
        return parse_csv_line(text, local_tz=self.time_zone, directory=self.directory())

    def _store_cdr(
        self, batch: list[Any], cursor, segment: files.Segment, last: files.RawLine | None
    ) -> None:
        with transaction.atomic():
            if batch:
                self.report.added += store_cdr(batch, pbx=self.pbx)
            if last is not None:
                files.advance(cursor, segment, last)
            cursor.save()

    def _progress(self) -> None:
        if self.progress is None:
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self.progress(
            f"pbx={self.pbx} {self.path}: {self.report.lines:,} lines read, {self.report.added:,} new, "
            f"{self.report.malformed_count:,} malformed ({self.report.lines / elapsed:,.0f} lines/s)"
        )
