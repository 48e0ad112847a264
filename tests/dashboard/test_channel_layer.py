"""The resilient channel layer and the dashboard consumer's side of a Redis hiccup."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from redis import asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import broadcast
from dashboard.consumers import CLOSE_UNAVAILABLE
from swanproject.channel_layer import RECOVERED, UNAVAILABLE, ResilientRedisChannelLayer
from tests.dashboard.browser import REDIS_URL, redis_reachable
from tests.websockets import websocket

PATH = "/ws/dashboard/onfarma/"


class FakeRedis:
    """The few commands the reader sends: pops from scripted batches, then PINGs that may fail."""

    def __init__(self, batches: list, ping_failures: list[Exception] | None = None):
        self.batches = list(batches)  # each: a list of members, or an exception to raise
        self.ping_failures = list(ping_failures or [])
        self.pings = 0
        self.commands: list[str] = []

    async def bzpopmin(self, key, timeout):
        self.commands.append("BZPOPMIN")
        if not self.batches:
            await asyncio.sleep(3600)  # nothing more: block like an idle Redis
        batch = self.batches[0]
        if isinstance(batch, Exception):
            self.batches.pop(0)
            raise batch
        return key, batch.pop(0), 1.0

    async def zpopmin(self, key, count):
        self.commands.append("ZPOPMIN")
        batch = self.batches.pop(0) if self.batches and isinstance(self.batches[0], list) else []
        return [(member, 1.0) for member in batch]

    async def ping(self) -> bool:
        self.pings += 1
        if self.ping_failures:
            raise self.ping_failures.pop(0)
        return True


def _layer(redis: FakeRedis, recovery_limit: float = 60.0) -> ResilientRedisChannelLayer:
    layer = ResilientRedisChannelLayer(hosts=["redis://127.0.0.1:1"], recovery_limit=recovery_limit)
    layer.retry_delays = (0.001, 0.01)
    layer.connection = lambda index: redis
    return layer


def _member(layer: ResilientRedisChannelLayer, channels: list[str], n: int) -> bytes:
    return layer.serialize({"type": "test.message", "n": n, "__asgi_channel__": channels})


async def _stop(layer: ResilientRedisChannelLayer, *receives: asyncio.Task) -> None:
    await asyncio.sleep(0)  # the receives start waiting, as a consumer's do
    for task in receives:
        task.cancel()
    await asyncio.gather(*receives, return_exceptions=True)
    assert layer._reader is None  # the last receive gone, the reader stops


async def test_one_reader_hands_every_popped_message_to_each_channel_it_names():
    redis = FakeRedis([])
    layer = _layer(redis)
    one, two = await layer.new_channel(), await layer.new_channel()
    redis.batches = [
        [_member(layer, [one, two], 1), _member(layer, [one], 2)],
        [_member(layer, [two], 3)],
    ]
    got_one = [await layer.receive(one), await layer.receive(one)]
    got_two = [await layer.receive(two), await layer.receive(two)]
    assert [m["n"] for m in got_one] == [1, 2]
    assert [m["n"] for m in got_two] == [1, 3]
    assert "__asgi_channel__" not in got_one[0]
    # Per batch, a blocking pop and then everything else waiting in one more command.
    assert redis.commands[:4] == ["BZPOPMIN", "ZPOPMIN", "BZPOPMIN", "ZPOPMIN"]
    await _stop(layer, *(asyncio.ensure_future(layer.receive(c)) for c in (one, two)))


async def test_a_failed_read_waits_for_redis_and_tells_every_consumer_it_recovered(caplog):
    redis = FakeRedis(
        [RedisTimeoutError("Timeout reading from 127.0.0.1:6379")],
        [RedisConnectionError("refused"), RedisConnectionError("refused")],
    )
    layer = _layer(redis)
    channels = [await layer.new_channel() for _ in range(3)]
    got = await asyncio.gather(*(layer.receive(channel) for channel in channels))
    assert got == [{"type": RECOVERED}] * 3
    assert redis.pings == 3  # one wait for the whole process, not one per consumer
    assert "channel layer receive failed" in caplog.text
    assert "channel layer recovered" in caplog.text
    await _stop(layer, *(asyncio.ensure_future(layer.receive(c)) for c in channels))


async def test_redis_away_past_the_limit_is_reported_unavailable(caplog):
    redis = FakeRedis([RedisConnectionError("refused")], [RedisConnectionError("refused")] * 1000)
    layer = _layer(redis, recovery_limit=0.05)
    channel = await layer.new_channel()
    assert await layer.receive(channel) == {"type": UNAVAILABLE}
    assert "channel layer gave up" in caplog.text
    await _stop(layer, asyncio.ensure_future(layer.receive(channel)))


async def test_an_unreadable_message_is_dropped_and_the_next_one_still_arrives(caplog):
    redis = FakeRedis([])
    layer = _layer(redis)
    channel = await layer.new_channel()
    unreadable = b"r" * 12 + b"\xc1"  # after the random prefix, a byte msgpack never uses
    redis.batches = [[unreadable, layer.serialize([1]), _member(layer, [channel], 7)]]
    assert (await layer.receive(channel))["n"] == 7
    assert "dropped an unreadable message" in caplog.text
    await _stop(layer, asyncio.ensure_future(layer.receive(channel)))


async def test_a_general_channel_still_survives_a_failed_receive(monkeypatch):
    async def failing_receive(self, channel):
        raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")

    monkeypatch.setattr(RedisChannelLayer, "receive", failing_receive)
    layer = _layer(FakeRedis([], [RedisConnectionError("refused")]))
    assert await layer.receive("some.worker") == {"type": RECOVERED}


async def test_other_errors_of_a_general_channel_still_raise(monkeypatch):
    async def broken(self, channel):
        raise ValueError("not a Redis problem")

    monkeypatch.setattr(RedisChannelLayer, "receive", broken)
    layer = ResilientRedisChannelLayer(hosts=["redis://127.0.0.1:1"])
    with pytest.raises(ValueError, match="not a Redis problem"):
        await layer.receive("some.worker")


def test_the_pool_makes_commands_wait_for_a_connection_instead_of_failing():
    layer = ResilientRedisChannelLayer(
        hosts=[{"address": "redis://127.0.0.1:1/4", "socket_timeout": 15}],
        pool_size=7,
        pool_timeout=3.0,
    )
    pool = layer.create_pool(0)
    assert isinstance(pool, BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (7, 3.0)
    assert pool.connection_kwargs["db"] == 4
    assert pool.connection_kwargs["socket_timeout"] == 15


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
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
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


@pytest.mark.django_db(transaction=True)
async def test_after_recovery_with_a_lost_message_the_stream_starts_from_a_snapshot(setup):
    company_id = setup["company"].pk
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        await communicator.receive_json_from(timeout=5)
        channel = await _channel_of(company_id)
        seq = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 1})
        await communicator.receive_json_from(timeout=5)
        await sync_to_async(broadcast.cache.delete)(broadcast._message_key(company_id, seq))
        await sync_to_async(broadcast.cache.set)(broadcast._seq_key(company_id), seq + 1)
        await get_channel_layer().send(channel, {"type": RECOVERED})
        message = await communicator.receive_json_from(timeout=5)
        assert (message["type"], message["seq"]) == ("snapshot", seq + 1)


@pytest.mark.django_db(transaction=True)
async def test_redis_unavailable_closes_the_stream_with_a_code_to_resume_from(setup):
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        await communicator.receive_json_from(timeout=5)
        await get_channel_layer().send(
            await _channel_of(setup["company"].pk), {"type": UNAVAILABLE}
        )
        assert (await communicator.receive_output(timeout=5)) == {
            "type": "websocket.close",
            "code": CLOSE_UNAVAILABLE,
        }


@pytest.mark.django_db(transaction=True)
async def test_a_redis_error_while_recovering_closes_the_stream_too(setup, monkeypatch):
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        await communicator.receive_json_from(timeout=5)
        channel = await _channel_of(setup["company"].pk)

        def down(*args):
            raise RedisConnectionError("Connection refused")

        monkeypatch.setattr("dashboard.consumers.messages_since", down)
        await get_channel_layer().send(channel, {"type": RECOVERED})
        output = await communicator.receive_output(timeout=5)
        assert (output["type"], output["code"]) == ("websocket.close", CLOSE_UNAVAILABLE)


def _failing_first(real, failures: list[Exception]):
    def call(*args):
        if failures:
            raise failures.pop(0)
        return real(*args)

    return call


@pytest.mark.django_db(transaction=True)
async def test_a_redis_timeout_while_filling_a_gap_is_retried_and_the_stream_goes_on(
    setup, monkeypatch
):
    monkeypatch.setattr("dashboard.consumers.REDIS_RETRY_DELAYS", (0.0,))
    company_id = setup["company"].pk
    await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 0})
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        snapshot = await communicator.receive_json_from(timeout=5)
        channel = await _channel_of(company_id)
        layer = get_channel_layer()
        await layer.group_discard(broadcast.group_name(company_id), channel)
        dropped = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 1})
        await layer.group_add(broadcast.group_name(company_id), channel)
        failures = [RedisTimeoutError("Timeout reading from socket"), RedisConnectionError("x")]
        monkeypatch.setattr(
            "dashboard.consumers.messages_since",
            _failing_first(broadcast.messages_since, failures),
        )
        following = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 2})
        first = await communicator.receive_json_from(timeout=5)
        second = await communicator.receive_json_from(timeout=5)
        assert (
            [first["seq"], second["seq"]]
            == [dropped, following]
            == [
                snapshot["seq"] + 1,
                snapshot["seq"] + 2,
            ]
        )
        assert failures == []


@pytest.mark.django_db(transaction=True)
async def test_a_redis_error_while_resuming_is_retried_before_the_first_message(setup, monkeypatch):
    monkeypatch.setattr("dashboard.consumers.REDIS_RETRY_DELAYS", (0.0,))
    company_id = setup["company"].pk
    since = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 0})
    missed = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 1})
    failures = [RedisConnectionError("Connection reset by peer")]
    monkeypatch.setattr(
        "dashboard.consumers.messages_since", _failing_first(broadcast.messages_since, failures)
    )
    async with websocket(f"{PATH}?since={since}", user=setup["supervisor"]) as (
        communicator,
        accepted,
        _code,
    ):
        assert accepted
        assert (await communicator.receive_json_from(timeout=5))["seq"] == missed
        resumed = await communicator.receive_json_from(timeout=5)
        assert resumed == {"type": "resumed", "since": since, "last": missed}


@pytest.mark.django_db(transaction=True)
async def test_redis_failing_reads_past_the_recovery_limit_closes_with_a_code_to_resume_from(
    setup, monkeypatch
):
    monkeypatch.setattr("dashboard.consumers.REDIS_RETRY_DELAYS", (0.0,))
    company_id = setup["company"].pk
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        await communicator.receive_json_from(timeout=5)
        layer = get_channel_layer()
        monkeypatch.setattr(layer, "recovery_limit", -1.0, raising=False)  # already past it

        def down(*args):
            raise RedisConnectionError("Connection refused")

        monkeypatch.setattr("dashboard.consumers.messages_since", down)
        seq = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 1})
        await layer.group_send(
            broadcast.group_name(company_id),
            {"type": "dashboard.message", "seq": seq + 2, "text": "{}"},
        )
        assert (await communicator.receive_json_from(timeout=5))["seq"] == seq
        output = await communicator.receive_output(timeout=5)
        assert (output["type"], output["code"]) == ("websocket.close", CLOSE_UNAVAILABLE)


# -- group sends in one script, on a real Redis ------------------------------------------------


@pytest.fixture
async def real_layers():
    """Two processes' layers on one real Redis, with a key prefix of this test's own."""
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    prefix = f"asgi-test-{uuid.uuid4().hex}"
    layers = [ResilientRedisChannelLayer(hosts=[REDIS_URL], prefix=prefix) for _ in range(2)]
    yield layers
    for layer in layers:
        if layer._reader is not None:
            layer._reader.cancel()
            await asyncio.gather(layer._reader, return_exceptions=True)
        await layer.flush()  # deletes the prefix's keys


async def _receive_or_none(layer, channel: str, timeout: float = 0.3):
    try:
        return await asyncio.wait_for(layer.receive(channel), timeout)
    except TimeoutError:
        return None


async def test_a_group_send_reaches_every_member_in_every_process_in_one_command(real_layers):
    here, there = real_layers
    one, two, three = await here.new_channel(), await here.new_channel(), await there.new_channel()
    outsider = await here.new_channel()
    for layer, channel in ((here, one), (here, two), (there, three)):
        await layer.group_add("dashboard.company.1", channel)
    await here.group_send("nobody", {"type": "t"})  # Redis learns the script
    commands = _count_commands(here)
    await here.group_send("dashboard.company.1", {"type": "dashboard.message", "n": 1})
    assert commands == ["EVALSHA"]  # not channels-redis's four round trips
    for layer, channel in ((here, one), (here, two), (there, three)):
        message = await asyncio.wait_for(layer.receive(channel), 5)
        assert message == {"type": "dashboard.message", "n": 1}
    assert await _receive_or_none(here, outsider) is None


async def test_a_channel_that_left_the_group_or_never_joined_gets_nothing(real_layers):
    here, there = real_layers
    stays, leaves = await here.new_channel(), await there.new_channel()
    await here.group_add("g", stays)
    await there.group_add("g", leaves)
    await there.group_discard("g", leaves)
    await here.group_send("g", {"type": "t", "n": 2})
    assert (await asyncio.wait_for(here.receive(stays), 5))["n"] == 2
    assert await _receive_or_none(there, leaves) is None
    await here.group_send("other", {"type": "t", "n": 3})  # a group nobody joined
    assert await _receive_or_none(here, stays) is None


async def test_members_past_the_group_expiry_no_longer_receive(real_layers):
    here, _there = real_layers
    here.group_expiry = 1
    channel = await here.new_channel()
    await here.group_add("g", channel)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:  # it joined two seconds ago, as far as Redis knows
        await client.zadd(here._group_key("g"), {channel: time.time() - 2})
    finally:
        await client.aclose()
    await here.group_send("g", {"type": "t", "n": 4})
    assert await _receive_or_none(here, channel) is None


async def test_a_general_channel_in_a_group_still_gets_the_message(real_layers):
    here, _there = real_layers
    await here.group_add("g", "worker.jobs")
    await here.group_send("g", {"type": "t", "n": 5})
    assert (await asyncio.wait_for(here.receive("worker.jobs"), 5))["n"] == 5


async def test_a_full_process_queue_drops_the_message_for_that_process_only(real_layers, caplog):
    here, there = real_layers
    here.capacity = there.capacity = 1
    slow, quick = await here.new_channel(), await there.new_channel()
    await here.group_add("g", slow)
    await there.group_add("g", quick)
    await here.group_send("g", {"type": "t", "n": 6})
    # `there` reads its queue; nothing reads `here`'s yet, which still holds 6.
    assert (await asyncio.wait_for(there.receive(quick), 5))["n"] == 6
    await here.group_send("g", {"type": "t", "n": 7})
    assert "1 process queue(s) full in group g" in caplog.text
    assert (await asyncio.wait_for(there.receive(quick), 5))["n"] == 7
    assert (await asyncio.wait_for(here.receive(slow), 5))["n"] == 6
    assert await _receive_or_none(here, slow) is None


async def test_a_consumer_gone_leaves_its_groups_in_this_process(real_layers):
    here, _there = real_layers
    channel = await here.new_channel()
    await here.group_add("g", channel)
    receive = asyncio.ensure_future(here.receive(channel))
    await asyncio.sleep(0)
    receive.cancel()
    await asyncio.gather(receive, return_exceptions=True)
    assert here._joined == {}


def _count_commands(layer: ResilientRedisChannelLayer) -> list[str]:
    """The Redis commands this layer's connection sends from now on (names only)."""
    connection = layer.connection(0)
    commands: list[str] = []
    original = connection.execute_command

    async def counted(*args, **options):
        commands.append(str(args[0]).upper())
        return await original(*args, **options)

    connection.execute_command = counted
    return commands
