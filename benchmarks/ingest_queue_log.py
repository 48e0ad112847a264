"""Ingest 1,000,000 queue_log lines into PostgreSQL; lines/s and the ratio to a bare COPY.

Run: .venv/bin/python benchmarks/ingest_queue_log.py [LINES] [--rounds 3] [--directory FILE]
                                          [--dump DIR] [--floor]    (BENCH_SERVER_URL, BENCH_DATABASE)

Each round copies the file into a one-column table (the ceiling: the best of three copies), then
ingests it into empty history tables; both are printed side by side, with the best and the median
of the rounds, and the CPU the server and the ingest used (a PostgreSQL on this machine).
--floor also measures, each round, what bounds the ingest from below: a COPY of the rows it stored
into a copy of the lines' table, without indexes and with the table's own; and an ingest that stores
every line before it derives anything (the store alone, then the derivation alone).
--directory loads a load_directory document first (agents matched to users); --dump writes the
stored lines, entries and agent activity (every column but surrogate keys, sorted) to DIR/*.tsv, to
compare two versions of the ingest row for row (the script runs unchanged on older trees). With
--floor, the dump holds what the last store-then-derive ingest gave (the same rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _setup import CLK_TCK, ROOT, cpu_of, setup, stat_fields

# As `manage.py ingest_queue_log` runs in production: Django's debug cursor (every statement
# formatted and kept) is not part of the ingest.
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "swan-benchmark-only")

FIXTURES = ROOT.parent / "shared" / "fixtures" / "queue_log"
FILES = [
    "issabel_synkbug_queue_log-20220801.txt",
    "asterisk2slack_fixture_queue_log_membernames.txt",
    "asterisk_book_3rd_ed_sample_queue_log_partial.txt",
    "loway_blog_2007_missing_exit_events_ast12era.txt",
    "am1nch1k_asteriks_queue_log_only_system_events.txt",
]
# The ceiling of a round is the best of a few COPYs: one alone moved between 0.34 and 0.74 s on
# the same box within minutes, and the ratio with it.
COPIES_PER_ROUND = 3
PSEUDO_IDS = {"NONE", "MANAGER", "CLI", "REALTIME"}
DUMPS = {
    "lines": "SELECT time, callid, queue_name, agent, event, data FROM pbx_queuelogline "
    "ORDER BY time, callid, queue_name, agent, event, data",
    "entries": "SELECT e.callid, e.queue_name, q.name, c.slug, e.caller, e.entered_at, "
    "e.answered_at, e.ended_at, e.outcome, e.wait_seconds, e.talk_seconds, e.agent, u.extension "
    "FROM pbx_queueentry e LEFT JOIN pbx_queue q ON q.id = e.queue_id "
    "LEFT JOIN pbx_company c ON c.id = e.company_id LEFT JOIN pbx_pbxuser u ON u.id = e.agent_user_id "
    "ORDER BY e.callid, e.queue_name, e.entered_at",
    # The reports' agent activity (absent on trees older than migration 0012: skipped there).
    # Every column but keys: the id, and the digest of the line that keyed it up to 0014.
    "agent_events": "SELECT a.time, a.event, a.queue_name, a.agent, u.extension, c.slug, a.data "
    "FROM pbx_agentevent a LEFT JOIN pbx_pbxuser u ON u.id = a.agent_user_id "
    "LEFT JOIN pbx_company c ON c.id = a.company_id "
    "ORDER BY a.time, a.event, a.queue_name, a.agent, a.data",
    "agent_sessions": "SELECT u.extension, c.slug, s.started_at, s.ended_at FROM pbx_agentsession s "
    "JOIN pbx_pbxuser u ON u.id = s.agent_user_id JOIN pbx_company c ON c.id = s.company_id "
    "ORDER BY u.extension, s.started_at, s.ended_at",
    "agent_pauses": "SELECT u.extension, c.slug, p.reason, p.started_at, p.ended_at "
    "FROM pbx_agentpause p JOIN pbx_pbxuser u ON u.id = p.agent_user_id "
    "JOIN pbx_company c ON c.id = p.company_id "
    "ORDER BY u.extension, p.started_at, p.ended_at, p.reason",
}


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


def typed_copy(rows: bytes, *, indexes: bool) -> float:
    """COPY of already split rows (the stored lines, as COPY wrote them) into a new copy of the
    lines' table: what storing them costs at least, with the table's indexes or without."""
    from django.db import connection

    from pbx.models.history import QueueLogLine

    like = "INCLUDING DEFAULTS" + (" INCLUDING INDEXES" if indexes else "")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_typed")
        cursor.execute(f"CREATE TABLE bench_typed (LIKE {QueueLogLine._meta.db_table} {like})")
        started = time.perf_counter()
        with cursor.cursor.copy("COPY bench_typed FROM STDIN") as copy:
            for start in range(0, len(rows), 1 << 20):
                copy.write(rows[start : start + (1 << 20)])
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_typed")
    return elapsed


def stored_rows() -> bytes:
    from django.db import connection

    from pbx.models.history import QueueLogLine

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {QueueLogLine._meta.db_table} TO STDOUT") as copy,
    ):
        return b"".join(bytes(data) for data in copy)


def server_cpu() -> float | None:
    """CPU seconds the PostgreSQL server used so far: its processes alive and those that ended
    (the postmaster's reaped children, such as the derivation's connection). None when the
    server is not on this machine."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = stat_fields(f"/proc/{cursor.fetchone()[0]}/stat")
    postmaster = int(backend[1]) if backend else None
    own = stat_fields(f"/proc/{postmaster}/stat") if postmaster else None
    if own is None or b"postgres" not in Path(f"/proc/{postmaster}/cmdline").read_bytes():
        return None
    seconds = sum(int(value) for value in own[11:15]) / CLK_TCK  # with its reaped children
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and (fields := stat_fields(entry / "stat"))
            and fields[1] == str(postmaster)
        ):
            seconds += cpu_of(fields)
    return seconds


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def empty_history() -> None:
    from django.apps import apps
    from django.db import connection

    names = ["QueueEntry", "QueueLogLine", "QueueLogFile", "IngestCursor"]
    names += ["QueueLogBlockTimes"]  # new in 0023
    names += ["AgentEvent", "AgentSession", "AgentPause"]  # the reports' agent activity
    tables = [
        m._meta.db_table for m in apps.get_app_config("pbx").get_models() if m.__name__ in names
    ]  # QueueLogFile is new in 0011
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)}")


def ingest(path: Path):
    from pbx.history.ingest.runner import FileIngest, cdr_time_zone

    ingest = FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone("UTC"))
    started = time.perf_counter()
    report = ingest.run()
    return report, time.perf_counter() - started


def store_then_derive(path: Path, lines: int) -> tuple[float, float]:
    """(seconds to store every line, seconds to derive from them after): no derivation beside
    the store. The progress mark at the last line is the moment the store ends."""
    from pbx.history.ingest.runner import FileIngest, cdr_time_zone

    stored_at: list[float] = []
    ingest = FileIngest(
        path=path,
        kind="queue_log",
        time_zone=cdr_time_zone("UTC"),
        derive_every=lines + 1,
        progress_every=lines,
        progress=lambda _message: stored_at.append(time.perf_counter()),
    )
    started = time.perf_counter()
    ingest.run()
    ended = time.perf_counter()
    if not stored_at:
        raise RuntimeError(f"no progress mark at line {lines:,}: the file has fewer lines")
    return stored_at[-1] - started, ended - stored_at[-1]


def dump(folder: Path) -> None:
    from django.db import connection

    folder.mkdir(parents=True, exist_ok=True)
    with connection.cursor() as cursor:
        cursor.execute("SET timezone = 'UTC'")
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = {row[0] for row in cursor.fetchall()}
        for name, query in DUMPS.items():
            if "agent" in name and "pbx_agentevent" not in tables:
                continue
            with (
                (folder / f"{name}.tsv").open("wb") as out,
                cursor.cursor.copy(f"COPY ({query}) TO STDOUT") as copy,
            ):
                for data in copy:
                    out.write(data)


def print_floor(path: Path, lines: int, copy_seconds: float) -> None:
    rows = stored_rows()
    bare_rows = typed_copy(rows, indexes=False)
    indexed_rows = typed_copy(rows, indexes=True)
    empty_history()
    store, derive = store_then_derive(path, lines)
    print(
        f"  floor: COPY of the stored rows {bare_rows:.2f} s ({bare_rows / copy_seconds:.1f}x), "
        f"with the lines' indexes {indexed_rows:.2f} s ({indexed_rows / copy_seconds:.1f}x); "
        f"store alone {store:.2f} s ({store / copy_seconds:.1f}x), then derivation alone "
        f"{derive:.2f} s ({derive / copy_seconds:.1f}x)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lines", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--directory", type=Path)
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--floor", action="store_true")
    args = parser.parse_args()
    setup()
    if args.directory:
        from pbx.directory.loading import directory_load

        directory_load(json.loads(args.directory.read_text()))

    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "queue_log"
        lines = make_file(path, args.lines)
        for number in range(1, args.rounds + 1):
            copy_seconds = min(bare_copy(path) for _ in range(COPIES_PER_ROUND))
            empty_history()
            server_before, own_before = server_cpu(), own_cpu()
            report, seconds = ingest(path)
            server_after, own_after = server_cpu(), own_cpu()
            rounds.append((copy_seconds, seconds))
            print(
                f"round {number}: bare COPY {copy_seconds:.2f} s, ingest {seconds:.2f} s "
                f"({lines / seconds:,.0f} lines/s): {seconds / copy_seconds:.2f}x; "
                f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}",
                flush=True,
            )
            used = own_after - own_before
            if server_before is not None and server_after is not None:
                server = server_after - server_before
                print(
                    f"  CPU: PostgreSQL {server:.2f} s, this process {used:.2f} s; on "
                    f"{os.cpu_count()} cores that is at least {(server + used) / os.cpu_count():.2f} s",
                    flush=True,
                )
            if args.floor:
                print_floor(path, lines, copy_seconds)
        from pbx.models.history import IngestCursor

        IngestCursor.objects.all().delete()
        rerun, rerun_seconds = ingest(path)

    copies, ingests = zip(*rounds, strict=True)
    print(
        f"lines:            {lines:,} ({report.added:,} stored, {report.entries:,} entries derived)"
    )
    print(
        f"bare COPY:        best {min(copies):.2f} s, median {statistics.median(copies):.2f} s "
        f"({lines / min(copies):,.0f} lines/s)"
    )
    print(
        f"ingest_queue_log: best {min(ingests):.2f} s, median {statistics.median(ingests):.2f} s "
        f"({lines / min(ingests):,.0f} lines/s)"
    )
    print(
        f"ratio to COPY:    best/best {min(ingests) / min(copies):.2f}x, "
        f"median/median {statistics.median(ingests) / statistics.median(copies):.2f}x"
    )
    print(f"re-run (all duplicates, cursor forgotten): {rerun_seconds:.2f} s, {rerun.added} added")
    if args.dump:
        dump(args.dump)
        print(f"dumped {', '.join(sorted(p.name for p in args.dump.glob('*.tsv')))} to {args.dump}")


if __name__ == "__main__":
    main()
