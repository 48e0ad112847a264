"""The listener's dashboard publisher: one event loop for every send, no second read of the rows."""

from __future__ import annotations

import asyncio

import pytest
from django.core.cache import cache

from dashboard import broadcast
from dashboard.pbx_link import pbx_state_key
from dashboard.publisher import DashboardPublisher
from pbx.gateway.frames import Frame
from pbx.live.state_tables import LiveChanges, LiveState
from tests.pbx_events import apply_frames

pytestmark = pytest.mark.django_db


class RecordingLayer:
    """A channel layer that notes the event loop each group_send ran on."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.groups: list[str] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.loops.append(asyncio.get_running_loop())
        self.groups.append(group)


@pytest.fixture
def layer(monkeypatch) -> RecordingLayer:
    recording = RecordingLayer()
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: recording)
    return recording


def test_every_batch_is_sent_on_one_event_loop(company, make_user, layer):
    ana = make_user(company, "200", "Ana", terminals=["PJSIP/200"])
    cache.delete(pbx_state_key("default"))  # so that connection(True) is a change to publish
    publisher = DashboardPublisher()
    publisher.changes(LiveChanges(user_ids={ana.pk}))
    publisher.changes(LiveChanges(user_ids={ana.pk}))
    publisher.connection("default", True)
    assert layer.groups == [broadcast.group_name(company.pk)] * 3
    # One loop, so one set of Redis connections for the life of the listener.
    assert len(set(layer.loops)) == 1
    assert layer.loops[0].is_running()


def test_it_publishes_the_rows_the_batch_read_without_reading_them_again(
    company, make_user, layer, django_assert_num_queries
):
    ana = make_user(company, "200", "Ana", terminals=["PJSIP/200"])
    changes = apply_frames(
        LiveState(),
        [Frame([("Event", "DeviceStateChange"), ("Device", "PJSIP/200"), ("State", "INUSE")])],
    )
    assert set(changes.rows) == {ana.pk}
    since = broadcast.publish(company.pk, "calls.hourly", {})  # a number to read from
    with django_assert_num_queries(0):
        DashboardPublisher().changes(changes)
    (message,) = broadcast.messages_since(company.pk, since)
    assert (message["type"], message["payload"]["id"]) == ("user.status", ana.pk)
    assert message["payload"]["status"] == "busy"
