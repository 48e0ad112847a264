"""The resilient channel layer and the dashboard consumer's side of a Redis hiccup."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import broadcast
from dashboard.consumers import CLOSE_UNAVAILABLE
from swanproject.channel_layer import RECOVERED, UNAVAILABLE, ResilientRedisChannelLayer
from tests.dashboard.conftest import open_socket

PATH = "/ws/dashboard/onfarma/"


class FlakyRedis:
    """Answers PING with the scripted errors first, then PONG."""

    def __init__(self, failures: list[Exception]):
        self.failures = failures
        self.pings = 0

    async def ping(self) -> bool:
        self.pings += 1
        if self.failures:
            raise self.failures.pop(0)
        return True


@pytest.fixture
def layer(monkeypatch) -> ResilientRedisChannelLayer:
    async def failing_receive(self, channel):
        raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")

    monkeypatch.setattr(RedisChannelLayer, "receive", failing_receive)
    layer = ResilientRedisChannelLayer(hosts=["redis://127.0.0.1:1"], recovery_limit=0.05)
    layer.retry_delays = (0.001, 0.01)
    return layer


async def test_a_failed_receive_waits_for_redis_and_reports_it_recovered(layer, caplog):
    redis = FlakyRedis([RedisConnectionError("refused"), RedisConnectionError("refused")])
    layer.connection = lambda index: redis
    channel = await layer.new_channel()
    assert await layer.receive(channel) == {"type": RECOVERED}
    assert redis.pings == 3
    assert "channel layer receive failed" in caplog.text
    assert "channel layer recovered" in caplog.text


async def test_redis_away_past_the_limit_is_reported_unavailable(layer, caplog):
    redis = FlakyRedis([RedisConnectionError("refused")] * 1000)
    layer.connection = lambda index: redis
    assert await layer.receive(await layer.new_channel()) == {"type": UNAVAILABLE}
    assert "channel layer gave up" in caplog.text


async def test_other_errors_still_raise(monkeypatch):
    async def broken(self, channel):
        raise ValueError("not a Redis problem")

    monkeypatch.setattr(RedisChannelLayer, "receive", broken)
    layer = ResilientRedisChannelLayer(hosts=["redis://127.0.0.1:1"])
    with pytest.raises(ValueError, match="not a Redis problem"):
        await layer.receive(await layer.new_channel())


@pytest.fixture
def setup(company, make_user, make_supervisor):
    make_user(company, "200", "Ana García")
    return {"company": company, "supervisor": make_supervisor(company)}


async def _channel_of(company_id: int) -> str:
    layer = get_channel_layer()
    (channel,) = layer.groups[broadcast.group_name(company_id)]
    return channel


@pytest.mark.django_db(transaction=True)
async def test_after_recovery_the_stream_rejoins_its_group_and_sends_what_it_missed(setup):
    company_id = setup["company"].pk
    await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 0})
    communicator, accepted, _code = await open_socket(PATH, user=setup["supervisor"])
    try:
        assert accepted
        snapshot = await communicator.receive_json_from(timeout=5)
        channel = await _channel_of(company_id)
        layer = get_channel_layer()
        await layer.group_discard(broadcast.group_name(company_id), channel)  # Redis forgot it
        missed = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 1})
        await layer.send(channel, {"type": RECOVERED})
        message = await communicator.receive_json_from(timeout=5)
        assert (message["seq"], message["payload"]) == (missed, {"n": 1})
        assert missed == snapshot["seq"] + 1
        following = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 2})
        assert (await communicator.receive_json_from(timeout=5))["seq"] == following
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_after_recovery_with_a_lost_message_the_stream_starts_from_a_snapshot(setup):
    company_id = setup["company"].pk
    communicator, accepted, _code = await open_socket(PATH, user=setup["supervisor"])
    try:
        assert accepted
        await communicator.receive_json_from(timeout=5)
        channel = await _channel_of(company_id)
        seq = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 1})
        await communicator.receive_json_from(timeout=5)
        await sync_to_async(broadcast.cache.delete)(broadcast._chunk_key(company_id, seq // 50))
        await sync_to_async(broadcast.cache.set)(broadcast._seq_key(company_id), seq + 1)
        await get_channel_layer().send(channel, {"type": RECOVERED})
        message = await communicator.receive_json_from(timeout=5)
        assert (message["type"], message["seq"]) == ("snapshot", seq + 1)
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_redis_unavailable_closes_the_stream_with_a_code_to_resume_from(setup):
    communicator, accepted, _code = await open_socket(PATH, user=setup["supervisor"])
    try:
        assert accepted
        await communicator.receive_json_from(timeout=5)
        await get_channel_layer().send(
            await _channel_of(setup["company"].pk), {"type": UNAVAILABLE}
        )
        assert (await communicator.receive_output(timeout=5)) == {
            "type": "websocket.close",
            "code": CLOSE_UNAVAILABLE,
        }
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_redis_error_while_recovering_closes_the_stream_too(setup, monkeypatch):
    communicator, accepted, _code = await open_socket(PATH, user=setup["supervisor"])
    try:
        assert accepted
        await communicator.receive_json_from(timeout=5)
        channel = await _channel_of(setup["company"].pk)

        def down(*args):
            raise RedisConnectionError("Connection refused")

        monkeypatch.setattr("dashboard.consumers.messages_since", down)
        await get_channel_layer().send(channel, {"type": RECOVERED})
        output = await communicator.receive_output(timeout=5)
        assert (output["type"], output["code"]) == ("websocket.close", CLOSE_UNAVAILABLE)
    finally:
        await communicator.disconnect()
