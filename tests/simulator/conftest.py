"""Fixtures: a started simulator driven by `step()`, and logged-in clients."""

from __future__ import annotations

import pytest

from tests.simulator.helpers import AmiClient, make_centre, make_pbx


@pytest.fixture
def centre(tmp_path):
    return make_centre(tmp_path)


@pytest.fixture
def pbx(centre):
    server = make_pbx(centre)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def connect(pbx):
    clients: list[AmiClient] = []

    def make() -> AmiClient:
        client = AmiClient(pbx.port)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def ami(connect) -> AmiClient:
    client = connect()
    assert client.login().get("Response") == "Success"
    return client
