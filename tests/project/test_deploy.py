"""Production settings pass `manage.py check --deploy` with no warning at all."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_environment(**extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DEBUG")) and k != "SWAN_TEST_PASSWORD_HASHER"
    }
    return {
        **keep,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "swan.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "sqlite:////tmp/swan-deploy-check.sqlite3"),
        **extra,
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_refuses_the_test_suites_password_hasher():
    env = production_environment(SWAN_TEST_PASSWORD_HASHER="1")
    result = manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "swan.E002" in result.stdout + result.stderr
    assert "SWAN_TEST_PASSWORD_HASHER is set" in result.stdout + result.stderr


def test_the_tests_hash_passwords_fast_and_still_check_them(django_user_model):
    user = django_user_model.objects.create_user(username="fast", password="s3cret-Pass")
    assert user.password.startswith("md5$")
    assert user.check_password("s3cret-Pass")
    assert not user.check_password("wrong")
    assert os.environ["SWAN_TEST_PASSWORD_HASHER"] == "1"  # the servers the tests start too


def test_production_refuses_to_start_without_a_secret_key():
    env = production_environment()
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
