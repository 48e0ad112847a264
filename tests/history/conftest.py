"""Helpers for the history tests: running the ingest commands and reading envelopes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command


@pytest.fixture
def ingest(db):
    """Runs an ingest command; returns (stdout, stderr)."""

    def run(command: str, *args: str | Path, **options) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        call_command(command, *map(str, args), stdout=out, stderr=err, skip_checks=True, **options)
        return out.getvalue(), err.getvalue()

    return run


def result(response, status: int = 200):
    assert response.status_code == status, response.content
    body = json.loads(response.content)
    assert body["error"] is False
    return body["result"]


def error(response, status: int) -> str:
    assert response.status_code == status, response.content
    body = json.loads(response.content)
    assert body["error"] is True
    assert body["result"] is None
    return body["error-msg"]
