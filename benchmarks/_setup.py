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


def cpu_pressure() -> str:
    """How much of the last minute runnable tasks waited for a CPU (Linux PSI), whoever's."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "CPU pressure unknown"
    fields = dict(item.split("=") for item in line.split()[1:])
    return f"CPU pressure: tasks waited for a CPU {fields['avg60']} % of the last minute"
