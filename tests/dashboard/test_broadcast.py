"""The publishing API: numbering, the bounded buffer, the group it sends to, PBX connection state."""

from __future__ import annotations

import json

import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache, caches
from django.utils import timezone

from dashboard import broadcast, pbx_link
from pbx.models import DeviceState, Pbx, QueueCallerState, UserPresence


def test_group_names_differ_per_company():
    assert broadcast.group_name(1) == "dashboard.company.1"
    assert broadcast.group_name(1) != broadcast.group_name(2)


def test_sequence_numbers_increase_per_company():
    a1 = broadcast.publish(1, "calls.hourly", {})
    b1 = broadcast.publish(2, "calls.hourly", {})
    a2 = broadcast.publish(1, "calls.hourly", {})
    assert a2 == a1 + 1
    assert broadcast.current_seq(1) == a2
    assert broadcast.current_seq(2) == b1


def test_a_lost_counter_never_hands_out_a_number_again():
    first = broadcast.publish(1, "calls.hourly", {})
    cache.delete("dashboard:1:seq")
    assert broadcast.publish(1, "calls.hourly", {}) > first


def test_it_refuses_an_unknown_message_type():
    with pytest.raises(ValueError, match="unknown dashboard message type"):
        broadcast.publish(1, "user.unknown", {})


def test_buffered_messages_come_back_in_order():
    since = broadcast.publish(1, "calls.hourly", {"n": 0})
    for n in range(1, 120):
        broadcast.publish(1, "calls.hourly", {"n": n})
    messages = broadcast.messages_since(1, since)
    assert [m["payload"]["n"] for m in messages] == list(range(1, 120))
    assert broadcast.messages_since(1, broadcast.current_seq(1)) == []


def test_the_buffer_is_bounded(monkeypatch):
    monkeypatch.setattr(broadcast, "BUFFER_SIZE", 100)
    since = broadcast.publish(1, "calls.hourly", {})
    for _ in range(150):
        broadcast.publish(1, "calls.hourly", {})
    assert broadcast.messages_since(1, since) is None
    assert len(broadcast.messages_since(1, broadcast.current_seq(1) - 100)) == 100
    kept = broadcast.buffered(1, range(since, broadcast.current_seq(1) + 1))
    assert len(kept) <= 100 + broadcast.PRUNE_EVERY  # older messages were dropped


def test_several_messages_of_one_company_are_numbered_buffered_and_sent_in_order():
    from asgiref.sync import async_to_sync

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(broadcast.group_name(1), channel)
    since = broadcast.publish(1, "calls.hourly", {"n": 0})
    seqs = broadcast.publish_many(1, [("calls.hourly", {"n": n}) for n in range(1, 41)])
    assert seqs == list(range(since + 1, since + 41))
    assert broadcast.current_seq(1) == seqs[-1]
    assert [m["payload"]["n"] for m in broadcast.messages_since(1, since)] == list(range(1, 41))
    single, batch = (async_to_sync(layer.receive)(channel) for _ in range(2))
    assert (single["seq"], json.loads(single["text"])["payload"]) == (since, {"n": 0})
    # one channel-layer event for the batch, its texts in order
    assert batch["seq"] == seqs[-1]
    assert [seq for seq, _text in batch["texts"]] == seqs
    assert [json.loads(text)["seq"] for _seq, text in batch["texts"]] == seqs
    assert broadcast.publish_many(1, []) == []


def test_a_batch_refuses_an_unknown_type_before_numbering_any():
    before = broadcast.publish(1, "calls.hourly", {})
    with pytest.raises(ValueError, match=r"user\.unknown"):
        broadcast.publish_many(1, [("calls.hourly", {}), ("user.unknown", {})])
    assert broadcast.current_seq(1) == before


def test_a_batch_prunes_what_fell_out_of_the_buffer(monkeypatch):
    monkeypatch.setattr(broadcast, "BUFFER_SIZE", 100)
    since = broadcast.publish(1, "calls.hourly", {})
    for _ in range(3):
        broadcast.publish_many(1, [("calls.hourly", {})] * 70)
    last = broadcast.current_seq(1)
    kept = broadcast.buffered(1, range(since, last + 1))
    assert len(kept) <= 100 + broadcast.PRUNE_EVERY
    assert len(broadcast.messages_since(1, last - 100)) == 100


def test_the_buffer_holds_the_very_text_every_socket_is_sent():
    from asgiref.sync import async_to_sync

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(broadcast.group_name(1), channel)
    payload = {"name": 'Íñigo "el 201"', "n": [1, 2.5, None, True]}
    seqs = broadcast.publish_many(1, [("calls.hourly", payload), ("user.status", {})])
    event = async_to_sync(layer.receive)(channel)
    messages = broadcast.messages_since(1, seqs[0] - 1)
    assert [seq for seq, _text in event["texts"]] == [m["seq"] for m in messages] == seqs
    for (_seq, text), message in zip(event["texts"], messages, strict=True):
        assert text == json.dumps(message)  # the text of the Message, field for field
    assert messages[0]["payload"] == payload


def test_a_counter_started_from_the_clock_numbers_every_digit():
    """The counter starts from the clock in microseconds (16 digits) when the cache lost it;
    the buffer's texts carry the number as digits, whatever writes them."""
    cache.delete("dashboard:1:seq")
    first, second = broadcast.publish_many(1, [("calls.hourly", {}), ("calls.hourly", {})])
    assert first > 10**15
    assert [m["seq"] for m in broadcast.messages_since(1, first - 1)] == [first, second]


def test_a_message_an_earlier_release_buffered_is_still_read():
    """Before the one-script buffer, a message was stored as Django's cache stores a dict."""
    since = broadcast.publish(1, "calls.hourly", {})
    cache.set("dashboard:1:seq", since + 1, timeout=None)
    old = {"type": "calls.hourly", "seq": since + 1, "company": 1, "sent_at": "x", "payload": {}}
    cache.set(broadcast._message_key(1, since + 1), old)
    assert broadcast.messages_since(1, since) == [old]


def test_a_hole_in_the_buffer_is_never_a_silent_gap():
    since = broadcast.publish(1, "calls.hourly", {})
    missing = broadcast.publish(1, "calls.hourly", {})
    broadcast.publish(1, "calls.hourly", {})
    cache.delete(f"dashboard:1:message:{missing}")
    assert broadcast.messages_since(1, since) is None


async def test_it_sends_to_the_company_group():
    from asgiref.sync import sync_to_async

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(broadcast.group_name(7), channel)
    seq = await sync_to_async(broadcast.publish)(7, "calls.hourly", {"a": 1})
    event = await layer.receive(channel)
    assert event["type"] == "dashboard.message"
    assert event["seq"] == seq
    message = json.loads(event["text"])  # encoded once, sent as is by every socket
    assert message["seq"] == seq
    assert message["type"] == "calls.hourly"
    assert message["payload"] == {"a": 1}
    await layer.group_discard(broadcast.group_name(7), channel)


def test_set_pbx_connected_tells_every_company_of_that_pbx_once(make_company):
    companies = [make_company(), make_company()]
    pbx_b = Pbx.objects.create(
        name="pbx-b", host="10.0.0.6", username="swan", secret_env="SWAN_PBX_X"
    )
    elsewhere = make_company(pbx=pbx_b)
    broadcast.set_pbx_connected("default", False)
    assert pbx_link.pbx_connection("default")["connected"] is False
    assert pbx_link.pbx_connection("pbx-b")["connected"] is None  # its listener never spoke
    assert broadcast.current_seq(elsewhere.pk) == 0  # another PBX's company hears nothing
    seqs = [broadcast.current_seq(c.pk) for c in companies]
    for company, seq in zip(companies, seqs, strict=True):
        (message,) = broadcast.messages_since(company.pk, seq - 1)
        assert message["payload"]["connected"] is False
    broadcast.set_pbx_connected("default", False)
    assert [broadcast.current_seq(c.pk) for c in companies] == seqs
    broadcast.set_pbx_connected("pbx-b", True)
    (message,) = broadcast.messages_since(elsewhere.pk, broadcast.current_seq(elsewhere.pk) - 1)
    assert (message["type"], message["payload"]["connected"]) == ("pbx.gateway.connection", True)
    assert [broadcast.current_seq(c.pk) for c in companies] == seqs
    broadcast.set_pbx_connected("default", True)
    for company, seq in zip(companies, seqs, strict=True):
        (message,) = broadcast.messages_since(company.pk, seq)
        assert message["type"] == "pbx.gateway.connection"
        assert message["payload"]["connected"] is True


def test_user_status_payload_has_the_blf_row_reason_and_since(company, make_user):
    user = make_user(company, "200", "Ana")
    earlier = timezone.now() - timezone.timedelta(minutes=5)
    DeviceState.objects.create(
        interface="PJSIP/200", state="NOT_INUSE", changed_at=earlier, confirmed_at=earlier
    )
    now = timezone.now()
    UserPresence.objects.create(
        user=user, paused=True, pause_reason="Descanso", changed_at=now, confirmed_at=now
    )
    (seq,) = broadcast.publish_users([user.pk])
    (message,) = broadcast.messages_since(company.pk, seq - 1)
    assert message["type"] == "user.status"
    assert message["payload"] == {
        "extension": "200",
        "id": user.pk,
        "name": "Ana",
        "status": "pause",
        "description": "Descanso",
        "reason": "Descanso",
        "since": now.isoformat(),
    }


def test_queue_update_payload_raises_the_alarm_for_waiting_callers(company, make_user, make_queue):
    queue = make_queue(company, "q-ventas", alarm_waiting_calls=2, alarm_wait_seconds=None)
    now = timezone.now()
    for n in range(2):
        QueueCallerState.objects.create(
            queue_name="q-ventas",
            queue=queue,
            unique_id=f"call-{n}",
            caller_id_num=f"60000000{n}",
            position=n + 1,
            entered_at=now,
            confirmed_at=now,
        )
    (seq,) = broadcast.publish_queues([queue.pk])
    (message,) = broadcast.messages_since(company.pk, seq - 1)
    payload = message["payload"]
    assert payload["group"] == "q-ventas"
    assert payload["currentCalls"] == 2
    assert payload["alarm"] is True
    assert payload["alarm_reasons"] == ["waiting_calls"]
    assert [c["caller"] for c in payload["callers"]] == ["600000000", "600000001"]
    assert payload["serviceRatio"] == 100
    assert payload["abandonedRatio"] == 100


def test_on_redis_a_batch_is_numbered_and_buffered_in_one_command(monkeypatch):
    """One script numbers, buffers and prunes; Django's cache reads the counter it wrote."""
    import redis
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("REDIS_URL is unset: the cache is in memory")
    monkeypatch.setattr(broadcast, "BUFFER_SIZE", 100)
    since = broadcast.publish(1, "calls.hourly", {"n": 0})  # the scripts are loaded
    commands = []
    execute = redis.Redis.execute_command

    def counted(self, *args, **options):
        commands.append(args[0])
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    seqs = broadcast.publish_many(1, [("calls.hourly", {"n": n}) for n in range(1, 121)])
    assert commands == ["EVALSHA"]
    monkeypatch.setattr(redis.Redis, "execute_command", execute)
    assert [m["payload"]["n"] for m in broadcast.messages_since(1, seqs[-1] - 100)] == list(
        range(21, 121)
    )
    kept = broadcast.buffered(1, range(since, seqs[-1] + 1))
    assert len(kept) <= 100 + broadcast.PRUNE_EVERY  # pruned in the same script
    client = caches["default"]._cache.get_client(write=True)
    assert client.ttl(cache.make_and_validate_key(broadcast._message_key(1, seqs[-1]))) > 0
    assert client.ttl(cache.make_and_validate_key("dashboard:1:seq")) == -1  # kept for good
    assert cache.get("dashboard:1:seq") == seqs[-1]


def test_on_redis_a_batch_of_thousands_prunes_as_many(monkeypatch):
    """A snapshot of a large company is thousands of messages, and as many fall out."""
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("REDIS_URL is unset: the cache is in memory")
    monkeypatch.setattr(broadcast, "BUFFER_SIZE", 100)
    seqs = broadcast.publish_many(1, [("calls.hourly", {"n": n}) for n in range(9_000)])
    assert len(broadcast.messages_since(1, seqs[-1] - 100)) == 100
    assert broadcast.buffered(1, [seqs[0]]) == {}
