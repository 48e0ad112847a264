"""Replay-server and gateway fixtures for the AMI tests; they skip without ../shared/fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pbx.gateway.ami import AmiGateway
from tests.amireplay import AmiReplayServer, Capture
from tests.conftest import fixtures_path

TIMEOUT = 0.5
# What must happen does get this long on a loaded machine: a bound on thread scheduling, never
# a claim. Tests that prove something hangs wait TIMEOUT (a hung call never returns anyway).
READY = 10.0


@pytest.fixture
def capture() -> Callable[[str], Capture]:
    """Parse a recording of ../shared/fixtures/ami/."""

    def load(name: str) -> Capture:
        return Capture.load(fixtures_path("ami", name))

    return load


@pytest.fixture
def server() -> Iterator[AmiReplayServer]:
    fixtures_path("ami")
    with AmiReplayServer() as replay:
        yield replay


@pytest.fixture
def gateway(server: AmiReplayServer) -> Iterator[AmiGateway]:
    gw = AmiGateway("127.0.0.1", server.port, "swan", "secret", timeout=TIMEOUT)
    yield gw
    gw.close()
