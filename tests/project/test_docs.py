"""The documented least-privilege AMI user is the one the real-PBX tests run SWAN with."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.realpbx.layouts import SWAN_AMI_EVENTFILTER, SWAN_AMI_READ, SWAN_AMI_WRITE

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("page", ["listener.md", "pbx.md"])
def test_the_documented_ami_user_is_the_tested_one(page):
    lines = {line.split(";")[0].strip() for line in (DOCS / page).read_text().splitlines()}
    assert f"read = {SWAN_AMI_READ}" in lines
    assert f"write = {SWAN_AMI_WRITE}" in lines
    assert f"eventfilter = {SWAN_AMI_EVENTFILTER}" in lines
