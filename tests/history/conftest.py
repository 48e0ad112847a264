"""Helpers for the history tests: running the ingest commands and reading envelopes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.history.migrating import migrate


@pytest.fixture
def ingest(db):
    """Runs an ingest command; returns (stdout, stderr)."""

    def run(command: str, *args: str | Path, **options) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        call_command(command, *map(str, args), stdout=out, stderr=err, skip_checks=True, **options)
        return out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def latest_schema_afterwards():
    """Whatever a migration test leaves, the tests after it run on the latest schema."""
    yield
    migrate()
