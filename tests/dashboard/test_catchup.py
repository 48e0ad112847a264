"""A socket whose last message was lost catches up without waiting for the next one."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from dashboard import broadcast
from dashboard.catchup import catchup
from tests.websockets import open_socket, websocket

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/dashboard/onfarma/"


@pytest.fixture
def setup(company, make_user, make_supervisor):
    make_user(company, "200", "Ana García")
    return {"company": company, "supervisor": make_supervisor(company)}


async def _lost(company_id: int, payload: dict) -> int:
    """Publishes a message that never reaches the sockets (as a channel at capacity drops it)."""
    layer = get_channel_layer()
    group = broadcast.group_name(company_id)
    channels = list(layer.groups[group])
    for channel in channels:
        await layer.group_discard(group, channel)
    seq = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", payload)
    for channel in channels:
        await layer.group_add(group, channel)
    return seq


async def test_a_lost_last_message_is_sent_from_the_buffer_at_the_next_check(setup):
    company_id = setup["company"].pk
    await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 0})
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        snapshot = await communicator.receive_json_from(timeout=5)
        lost = await _lost(company_id, {"n": 1})
        assert await communicator.receive_nothing(timeout=0.1)
        await catchup().check()
        message = await communicator.receive_json_from(timeout=5)
        assert (message["seq"], message["payload"]) == (lost, {"n": 1})
        assert lost == snapshot["seq"] + 1
        await catchup().check()  # caught up: nothing more
        assert await communicator.receive_nothing(timeout=0.1)


async def test_a_socket_that_is_getting_messages_is_not_nudged(setup):
    company_id = setup["company"].pk
    await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 0})
    async with websocket(PATH, user=setup["supervisor"]) as (communicator, accepted, _code):
        assert accepted
        await communicator.receive_json_from(timeout=5)
        delivered = await sync_to_async(broadcast.publish)(company_id, "calls.hourly", {"n": 1})
        assert (await communicator.receive_json_from(timeout=5))["seq"] == delivered
        # As far as the check can tell, this one may still be on its way: a socket that got a
        # message since the last look is left to its stream.
        await _lost(company_id, {"n": 2})
        await catchup().check()
        assert await communicator.receive_nothing(timeout=0.1)


async def test_closed_sockets_leave_the_check(setup):
    communicator, accepted, _code = await open_socket(PATH, user=setup["supervisor"])
    assert accepted
    await communicator.receive_json_from(timeout=5)
    assert len(catchup().sockets) == 1
    await communicator.disconnect()
    assert catchup().sockets == {}
