"""Ingest 1,000,000 queue_log lines into PostgreSQL; lines/s and the ratio to a bare COPY.

Run: .venv/bin/python benchmarks/ingest_queue_log.py [LINES]   (BENCH_SERVER_URL, BENCH_DATABASE)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, setup

FIXTURES = ROOT.parent / "shared" / "fixtures" / "queue_log"
FILES = [
    "issabel_synkbug_queue_log-20220801.txt",
    "asterisk2slack_fixture_queue_log_membernames.txt",
    "asterisk_book_3rd_ed_sample_queue_log_partial.txt",
    "loway_blog_2007_missing_exit_events_ast12era.txt",
    "am1nch1k_asteriks_queue_log_only_system_events.txt",
]
PSEUDO_IDS = {"NONE", "MANAGER", "CLI", "REALTIME"}


def fixture_lines() -> list[list[str]]:
    lines = []
    for name in FILES:
        for line in (FIXTURES / name).read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.replace("\x00", "")
            if line.strip():
                lines.append(line.split("|"))
    return lines


def make_file(path: Path, count: int) -> int:
    """Repeats the fixture lines; each round gets fresh call ids and times a day later."""
    base = fixture_lines()
    written = 0
    with path.open("w", encoding="utf-8") as out:
        round_ = 0
        while written < count:
            shift = round_ * 86400
            chunk = []
            for fields in base:
                if written >= count:
                    break
                fields = list(fields)
                fields[0] = str(int(fields[0]) + shift)
                if fields[1] not in PSEUDO_IDS:
                    fields[1] = f"r{round_}-{fields[1]}"
                chunk.append("|".join(fields))
                written += 1
            out.write("\n".join(chunk) + "\n")
            round_ += 1
    return written


def bare_copy(path: Path) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute("CREATE TABLE bench_copy (line text)")
        started = time.perf_counter()
        with path.open("rb") as handle, cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
            while block := handle.read(1 << 20):
                copy.write(block)
        connection.commit() if not connection.get_autocommit() else None
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    setup()
    from django.db import connection

    from pbx.ingest.runner import FileIngest, cdr_time_zone
    from pbx.models.history import IngestCursor, QueueEntry, QueueLogFile, QueueLogLine

    with connection.cursor() as cursor:
        for model in (QueueEntry, QueueLogLine, QueueLogFile, IngestCursor):
            cursor.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "queue_log"
        lines = make_file(path, count)
        copy_seconds = bare_copy(path)

        ingest = FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone("UTC"))
        started = time.perf_counter()
        report = ingest.run()
        seconds = time.perf_counter() - started

        again = FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone("UTC"))
        IngestCursor.objects.all().delete()
        started = time.perf_counter()
        rerun = again.run()
        rerun_seconds = time.perf_counter() - started

    print(
        f"lines:            {lines:,} ({report.added:,} stored, {report.entries:,} entries derived)"
    )
    print(f"bare COPY:        {copy_seconds:.2f} s  ({lines / copy_seconds:,.0f} lines/s)")
    print(f"ingest_queue_log: {seconds:.2f} s  ({lines / seconds:,.0f} lines/s)")
    print(f"ratio to COPY:    {seconds / copy_seconds:.2f}x")
    print(f"re-run (all duplicates, cursor forgotten): {rerun_seconds:.2f} s, {rerun.added} added")


if __name__ == "__main__":
    main()
