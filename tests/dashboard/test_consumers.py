"""The dashboard websocket: who may connect, the snapshot, resuming, and stale marking."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.utils import timezone

from dashboard import broadcast
from dashboard.consumers import CLOSE_FORBIDDEN_ORIGIN, CLOSE_UNAUTHENTICATED, CLOSE_UNKNOWN_COMPANY
from pbx.models import DeviceState
from tests.websockets import websocket

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/dashboard/onfarma/"


@pytest.fixture
def setup(company, make_company, make_user, make_queue, make_supervisor):
    """ONFARMA with two users and a queue; another company; a supervisor of ONFARMA only."""
    ana = make_user(company, "200", "Ana García")
    make_user(company, "201", "Luis Pérez")
    make_queue(company, "q-soporte", members=[ana])
    other = make_company(slug="other", name="Other")
    make_user(other, "300", "Someone Else")
    now = timezone.now()
    DeviceState.objects.create(
        interface="PJSIP/200", state="NOT_INUSE", changed_at=now, confirmed_at=now
    )
    return {
        "company": company,
        "other": other,
        "ana": ana,
        "supervisor": make_supervisor(company),
    }


async def test_it_sends_a_snapshot_with_the_sequence_to_a_supervisor(setup):
    seq = await sync_to_async(broadcast.publish)(setup["company"].pk, "calls.hourly", {})
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        message = await communicator.receive_json_from(timeout=5)
        assert message["type"] == "snapshot"
        assert message["seq"] == seq
        payload = message["payload"]
        assert payload["company"]["slug"] == "onfarma"
        assert [u["extension"] for u in payload["users"]] == ["200", "201"]
        ana = payload["users"][0]
        assert ana["status"] == "available"
        assert ana["since"] is not None
        assert payload["users"][1]["status"] == "unavailable"
        assert [q["group"] for q in payload["queues"]] == ["q-soporte"]
        assert len(payload["hourly"]["hours"]) == 24


async def test_it_forwards_published_messages_in_order(setup):
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        snapshot = await communicator.receive_json_from(timeout=5)
        company_id = setup["company"].pk
        (first,) = await sync_to_async(broadcast.publish_users)([setup["ana"].pk])
        second = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"x": 1})
        received = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
        assert [m["seq"] for m in received] == [first, second]
        assert second == first + 1 > snapshot["seq"]
        assert received[0]["type"] == "user.status"
        assert received[0]["payload"]["extension"] == "200"


async def test_a_batch_of_messages_arrives_as_separate_messages_in_order(setup):
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        snapshot = await communicator.receive_json_from(timeout=5)
        company_id = setup["company"].pk
        items = [("calls.hourly", {"n": n}) for n in range(5)]
        seqs = await sync_to_async(broadcast.publish_many)(company_id, items)
        received = [await communicator.receive_json_from(timeout=5) for _ in range(5)]
        assert [m["seq"] for m in received] == seqs
        assert [m["payload"]["n"] for m in received] == list(range(5))
        assert seqs[0] > snapshot["seq"]


async def test_a_batch_delivered_twice_is_sent_once(setup):
    await sync_to_async(broadcast.publish)(setup["company"].pk, "calls.hourly", {})
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        snapshot = await communicator.receive_json_from(timeout=5)
        company_id = setup["company"].pk
        seqs = await sync_to_async(broadcast.publish_many)(
            company_id, [("calls.hourly", {"n": n}) for n in range(3)]
        )
        messages = await sync_to_async(broadcast.messages_since)(company_id, snapshot["seq"])
        # the same batch again, as a second publisher's copy would come: nothing is repeated
        await communicator.send_input(
            {
                "type": "dashboard.message",
                **broadcast.group_event(seqs, [json.dumps(m) for m in messages]),
            }
        )
        received = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
        assert [m["seq"] for m in received] == seqs
        await communicator.send_json_to({"type": "ping"})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "pong"


async def test_it_accepts_an_api_key_without_origin(setup, make_api_key):
    raw = await database_sync_to_async(make_api_key)(setup["company"])
    for headers, path in [
        ([(b"authorization", f"Bearer {raw}".encode())], PATH),
        ([], f"{PATH}?key={raw}"),
    ]:
        async with websocket(path, origin=None, headers=headers) as (communicator, accepted, _code):
            assert accepted
            assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"


async def test_it_refuses_a_connection_without_credentials(setup):
    async with websocket(PATH) as (_communicator, accepted, code):
        assert not accepted
        assert code == CLOSE_UNAUTHENTICATED


async def test_it_refuses_a_bad_api_key(setup):
    async with websocket(f"{PATH}?key=swan_nope", origin=None) as (_communicator, accepted, code):
        assert not accepted
        assert code == CLOSE_UNAUTHENTICATED


async def test_it_refuses_a_foreign_company_to_a_supervisor(setup):
    async with websocket("/ws/dashboard/other/", user=setup["supervisor"]) as (
        _communicator,
        accepted,
        code,
    ):
        assert not accepted
        assert code == CLOSE_UNKNOWN_COMPANY


async def test_it_refuses_a_foreign_company_to_a_limited_api_key(setup, make_api_key):
    raw = await database_sync_to_async(make_api_key)(setup["company"])
    async with websocket(f"/ws/dashboard/other/?key={raw}", origin=None) as (
        _communicator,
        accepted,
        code,
    ):
        assert not accepted
        assert code == CLOSE_UNKNOWN_COMPANY


async def test_it_refuses_a_foreign_origin_even_when_every_host_is_allowed(setup, settings):
    settings.ALLOWED_HOSTS = ["*"]
    for origin in [b"http://evil.example", b"http://testserver.evil.example", b"null"]:
        async with websocket(PATH, user=setup["supervisor"], origin=origin) as (
            _communicator,
            accepted,
            code,
        ):
            assert not accepted, origin
            assert code == CLOSE_FORBIDDEN_ORIGIN


async def test_it_refuses_a_foreign_origin_with_an_api_key(setup, make_api_key, settings):
    settings.ALLOWED_HOSTS = ["*"]
    raw = await database_sync_to_async(make_api_key)(setup["company"])
    async with websocket(f"{PATH}?key={raw}", origin=b"https://evil.example") as (
        _communicator,
        accepted,
        code,
    ):
        assert not accepted
        assert code == CLOSE_FORBIDDEN_ORIGIN


async def test_it_refuses_a_session_without_origin(setup, settings):
    settings.ALLOWED_HOSTS = ["*"]
    async with websocket(PATH, user=setup["supervisor"], origin=None) as (
        _communicator,
        accepted,
        code,
    ):
        assert not accepted
        assert code == CLOSE_FORBIDDEN_ORIGIN


async def test_it_refuses_an_origin_on_another_port(setup):
    async with websocket(
        PATH, user=setup["supervisor"], origin=b"http://testserver:8080", host=b"testserver:8000"
    ) as (_communicator, accepted, code):
        assert not accepted
        assert code == CLOSE_FORBIDDEN_ORIGIN


async def test_it_accepts_a_configured_origin(setup, settings):
    settings.DASHBOARD_ALLOWED_ORIGINS = ["https://wall.example"]
    async with websocket(PATH, user=setup["supervisor"], origin=b"https://wall.example:443") as (
        _communicator,
        accepted,
        _code,
    ):
        assert accepted


async def test_a_superuser_sees_every_company(setup, admin_user):
    async with websocket("/ws/dashboard/other/", user=admin_user) as (
        communicator,
        accepted,
        _code,
    ):
        assert accepted
        message = await communicator.receive_json_from(timeout=5)
        assert [u["extension"] for u in message["payload"]["users"]] == ["300"]


async def test_resuming_within_the_buffer_sends_only_the_missed_messages(setup):
    company_id = setup["company"].pk
    publish = sync_to_async(broadcast.publish)
    since = await publish(company_id, "calls.hourly", {"n": 0})
    missed = [await publish(company_id, "calls.hourly", {"n": n}) for n in (1, 2, 3)]
    async with websocket(f"{PATH}?since={since}", user=setup["supervisor"]) as (
        communicator,
        accepted,
        _code,
    ):
        assert accepted
        received = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
        assert [m["seq"] for m in received] == missed
        assert [m["payload"]["n"] for m in received] == [1, 2, 3]
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "resumed",
            "since": since,
            "last": missed[-1],
        }
        live = await publish(company_id, "calls.hourly", {"n": 4})
        assert (await communicator.receive_json_from(timeout=5))["seq"] == live


async def test_resuming_from_the_latest_message_sends_nothing_but_resumed(setup):
    last = await sync_to_async(broadcast.publish)(setup["company"].pk, "calls.hourly", {})
    async with websocket(f"{PATH}?since={last}", user=setup["supervisor"]) as (
        communicator,
        accepted,
        _code,
    ):
        assert accepted
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "resumed",
            "since": last,
            "last": last,
        }


async def test_resuming_from_too_old_a_message_gets_a_fresh_snapshot(setup, monkeypatch):
    monkeypatch.setattr(broadcast, "BUFFER_SIZE", 5)
    company_id = setup["company"].pk
    publish = sync_to_async(broadcast.publish)
    since = await publish(company_id, "calls.hourly", {})
    for _ in range(10):
        last = await publish(company_id, "calls.hourly", {})
    async with websocket(f"{PATH}?since={since}", user=setup["supervisor"]) as (
        communicator,
        accepted,
        _code,
    ):
        assert accepted
        message = await communicator.receive_json_from(timeout=5)
        assert message["type"] == "snapshot"
        assert message["seq"] == last


async def test_resuming_from_a_number_never_handed_out_gets_a_snapshot(setup):
    last = await sync_to_async(broadcast.publish)(setup["company"].pk, "calls.hourly", {})
    async with websocket(f"{PATH}?since={last + 100}", user=setup["supervisor"]) as (
        communicator,
        accepted,
        _code,
    ):
        assert accepted
        message = await communicator.receive_json_from(timeout=5)
        assert message["type"] == "snapshot"
        assert message["seq"] == last


async def test_the_dashboard_is_stale_while_the_pbx_is_down(setup):
    set_connected = sync_to_async(broadcast.set_pbx_connected)
    await set_connected("default", True)
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        first = await communicator.receive_json_from(timeout=5)
        snapshot = first["payload"]
        assert snapshot["pbx"]["connected"] is True
        assert snapshot["stale"] is False

        await set_connected("default", False)
        message = await communicator.receive_json_from(timeout=5)
        assert message["type"] == "pbx.gateway.connection"
        assert message["payload"]["connected"] is False
        assert message["payload"]["since"]
        assert message["seq"] == first["seq"] + 1

    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        snapshot = (await communicator.receive_json_from(timeout=5))["payload"]
        assert snapshot["pbx"]["connected"] is False
        assert snapshot["stale"] is True


async def test_a_dashboard_without_word_from_the_listener_is_stale(setup):
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        snapshot = (await communicator.receive_json_from(timeout=5))["payload"]
        assert snapshot["pbx"] == {"connected": None, "since": None}
        assert snapshot["stale"] is True


async def test_it_answers_a_ping(setup):
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        snapshot = await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "pong",
            "seq": snapshot["seq"],
        }
