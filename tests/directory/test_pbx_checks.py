"""The system check that warns of a PBX whose AMI secret is not in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.db import OperationalError, connection

from pbx.checks import pbx_secret_check
from pbx.models import Pbx

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def pbxes(db, monkeypatch):
    monkeypatch.setenv("SWAN_PBX_A_SECRET", "s3cr3t")
    monkeypatch.delenv("SWAN_PBX_B_SECRET", raising=False)
    monkeypatch.setenv("SWAN_PBX_C_SECRET", "")
    for name in ("pbx-c", "pbx-b", "pbx-a"):
        Pbx.objects.create(
            name=name,
            host="10.0.0.5",
            username="swan",
            secret_env=f"SWAN_PBX_{name[-1].upper()}_SECRET",
        )


def test_it_warns_of_each_pbx_whose_secret_is_not_in_the_environment(pbxes):
    warnings = checks.run_checks(tags=[checks.Tags.database], databases=["default"])

    ours = [w for w in warnings if w.id == "swan.W001"]
    assert [(w.level, w.obj.name) for w in ours] == [
        (checks.WARNING, "pbx-b"),
        (checks.WARNING, "pbx-c"),
    ]
    assert ours[0].msg == (
        "PBX pbx-b: its AMI secret's environment variable SWAN_PBX_B_SECRET is not set (or "
        "empty) here, so SWAN cannot log in to that PBX."
    )
    assert "SWAN_PBX_B_SECRET" in ours[0].hint
    assert "s3cr3t" not in repr(warnings)


def test_it_warns_of_a_pbx_stored_with_a_variable_that_is_not_read(pbxes, monkeypatch):
    # A row written before the SWAN_PBX_ rule (or by a script past the validators).
    monkeypatch.setenv("DATABASE_URL_COPY", "postgres://swan:password@db/swan")
    Pbx.objects.create(
        name="pbx-d", host="10.0.0.5", username="swan", secret_env="DATABASE_URL_COPY"
    )

    warnings = checks.run_checks(tags=[checks.Tags.database], databases=["default"])

    ours = [w for w in warnings if w.id == "swan.W002"]
    assert [w.obj.name for w in ours] == ["pbx-d"]
    assert ours[0].msg == (
        "PBX pbx-d: its AMI secret's environment variable DATABASE_URL_COPY does not start with "
        "SWAN_PBX_, so SWAN does not read it and cannot log in to that PBX."
    )
    assert "SWAN_PBX_PBX_D_SECRET" in ours[0].hint
    assert "password" not in repr(warnings)


def test_it_is_not_among_the_checks_every_command_runs(pbxes, django_assert_num_queries):
    with django_assert_num_queries(0):
        warnings = checks.run_checks()

    assert "swan.W001" not in {w.id for w in warnings}


def test_it_is_silent_when_the_database_cannot_be_read(pbxes, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection.introspection, "table_names", unreachable)

    assert pbx_secret_check(databases=["default"]) == []


def test_it_is_silent_before_the_tables_exist(pbxes, monkeypatch):
    monkeypatch.setattr(
        connection.introspection, "table_names", lambda *a, **k: ["django_migrations"]
    )

    assert pbx_secret_check(databases=["default"]) == []


@pytest.mark.parametrize("args", [[], ["--database", "default"]], ids=["check", "database"])
def test_check_passes_on_a_fresh_database(tmp_path, args):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}

    result = subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "swan.W001" not in result.stderr + result.stdout
