"""SWAN_URL_PREFIX: the legacy paths under a prefix, taken literally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
PROBE = """
import django
django.setup()
from django.urls import resolve, reverse
print(resolve("/swan.v2/userStatus/200").url_name)
print(reverse("user-status", kwargs={"extension": "200"}))
for path in ("/swanXv2/userStatus/200", "/userStatus/200"):
    print(resolve(path).func.__name__, path)  # the JSON 404 catches what nothing else takes
"""


def test_a_prefix_with_a_dot_is_taken_literally(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "swanproject.settings",
        "SWAN_URL_PREFIX": "/swan.v2/",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "user-status",
        "/swan.v2/userStatus/200",
        "not_found_view /swanXv2/userStatus/200",
        "not_found_view /userStatus/200",
    ]


SCHEMA_PROBE = """
import django
django.setup()
from drf_spectacular.generators import SchemaGenerator
paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
print("/swan-v2/userStatus/{extension}" in paths, any("\\\\" in path for path in paths))
"""


def test_a_prefix_with_a_dash_is_written_plainly_in_the_schema(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "swanproject.settings",
        "SWAN_URL_PREFIX": "swan-v2",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCHEMA_PROBE],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]
