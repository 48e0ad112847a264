"""Benchmark setup: a dedicated PostgreSQL database (`swan_bench`), migrated, and Django ready."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432/test")
BENCH_DB = os.environ.get("BENCH_DATABASE", "swan_bench")


def setup() -> None:
    import psycopg

    server = SERVER_URL.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    os.environ["DATABASE_URL"] = SERVER_URL.rsplit("/", 1)[0] + f"/{BENCH_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swanproject.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, skip_checks=True)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(path: str | Path) -> list[str] | None:
    """The fields of a /proc stat file (a process's or a thread's) after the command name: [0]
    state, [1] parent pid, [11] user and [12] system CPU, [13] and [14] those of reaped children,
    in clock ticks. None when the process is gone."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_of(fields: list[str]) -> float:
    """User + system CPU seconds of stat_fields' answer."""
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_pressure() -> str:
    """How much of the last minute runnable tasks waited for a CPU (Linux PSI), whoever's."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "CPU pressure unknown"
    fields = dict(item.split("=") for item in line.split()[1:])
    return f"CPU pressure: tasks waited for a CPU {fields['avg60']} % of the last minute"
