"""An idle websocket on daphne over real Redis stays open, and Redis hiccups never end it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from urllib.parse import urlsplit

import pytest
from channels_redis.core import RedisChannelLayer
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from dashboard.broadcast import GROUP_MESSAGE_TYPE, group_name
from tests.process.test_failures import CuttableProxy, _through

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

IDLE_SECONDS = 30.0


@pytest.fixture
def needs_redis_url() -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip(
            "REDIS_URL is unset: holding a stream idle for 30 s needs real Redis "
            "(the CI PostgreSQL pass sets it)"
        )


def push(redis_url: str, company_id: int, seq: int, marker: str) -> None:
    """A dashboard message sent to the company's group, as another process would publish it."""
    message = {
        "type": "user.status",
        "seq": seq,
        "company": company_id,
        "sent_at": "2026-12-01T10:00:00+00:00",
        "payload": {"marker": marker},
    }

    async def send() -> None:
        layer = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 5}])
        try:
            await layer.group_send(
                group_name(company_id), {"type": GROUP_MESSAGE_TYPE, "message": message}
            )
        finally:
            await layer.close_pools()

    asyncio.run(send())


def receive_marker(websocket, marker: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        message = json.loads(websocket.recv(timeout=remaining))
        if message.get("payload", {}).get("marker") == marker:
            return message
    pytest.fail(f"no message {marker!r} within {timeout}s")


def test_an_idle_stream_stays_open_and_still_receives_after_30_seconds(
    needs_redis_url, processes, call_centre, redis_url
):
    server, host = processes.daphne()
    url = f"ws://{host}/ws/dashboard/acme/?key={call_centre.key}"
    with connect(url, open_timeout=10) as websocket:
        snapshot = json.loads(websocket.recv(timeout=10))
        assert snapshot["type"] == "snapshot"
        try:
            websocket.recv(timeout=IDLE_SECONDS)
            pytest.fail("the idle stream received something it was not sent")
        except TimeoutError:
            pass  # idle, and still open
        except ConnectionClosed as closed:
            pytest.fail(f"the idle stream was closed: {closed}\n{server.tail()}")
        push(redis_url, call_centre.company.pk, snapshot["seq"] + 1, "after-idle")
        message = receive_marker(websocket, "after-idle")
        assert message["seq"] == snapshot["seq"] + 1
    assert "TimeoutError" not in server.log(), server.tail()
    assert server.alive()


def test_a_redis_hiccup_keeps_the_stream_and_what_follows_still_arrives(
    processes, call_centre, redis_url
):
    parts = urlsplit(redis_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    server, host = processes.daphne(REDIS_URL=_through(redis_url, proxy.port))
    url = f"ws://{host}/ws/dashboard/acme/?key={call_centre.key}"
    try:
        with connect(url, open_timeout=10) as websocket:
            snapshot = json.loads(websocket.recv(timeout=10))
            proxy.cut()
            time.sleep(2)
            proxy.restore()
            server.wait_for_log(r"channel layer recovered", timeout=15)
            push(redis_url, call_centre.company.pk, snapshot["seq"] + 1, "after-hiccup")
            assert receive_marker(websocket, "after-hiccup")["seq"] == snapshot["seq"] + 1
        assert "Exception inside application" not in server.log(), server.tail()
    finally:
        proxy.cut()


def test_redis_gone_for_good_closes_the_stream_with_4503_to_resume_from(
    processes, call_centre, redis_url
):
    parts = urlsplit(redis_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    server, host = processes.daphne(
        REDIS_URL=_through(redis_url, proxy.port), CHANNEL_LAYER_RECOVERY_SECONDS="2"
    )
    url = f"ws://{host}/ws/dashboard/acme/?key={call_centre.key}"
    try:
        with connect(url, open_timeout=10) as websocket:
            json.loads(websocket.recv(timeout=10))
            proxy.cut()
            with pytest.raises(ConnectionClosed) as closed:
                websocket.recv(timeout=20)
        assert closed.value.rcvd.code == 4503, server.tail()
        assert "Exception inside application" not in server.log(), server.tail()
        assert server.alive()
    finally:
        proxy.cut()
