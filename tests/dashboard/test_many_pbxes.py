"""Two companies on two PBXes, the same extension, device and queue name: what one PBX reports
reaches its company's dashboard only, and each dashboard shows its own PBX's link and queues."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dashboard import broadcast
from dashboard.publisher import DashboardPublisher
from dashboard.selectors import snapshot_payload
from pbx.gateway.frames import Frame
from pbx.live.state_tables import LiveState
from pbx.models import Pbx
from tests.pbx_events import apply_frames
from tests.websockets import websocket

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_pbxes(make_company, make_user, make_queue):
    found = {}
    for name in ("pbx-a", "pbx-b"):
        pbx = Pbx.objects.create(
            name=name, host="10.0.0.5", username="swan", secret_env="SWAN_PBX_X"
        )
        company = make_company(slug=f"c-{name}", name=f"Company {name}", pbx=pbx)
        user = make_user(company, "201", f"Agent of {name}", terminals=["PJSIP/201"])
        make_queue(company, "q-ventas", members=[user])
        found[name] = user
    return found


def _member(queue: str, paused: str) -> Frame:
    return Frame(
        [
            ("Event", "QueueMemberStatus"),
            ("Queue", queue),
            ("MemberName", "PJSIP/201"),
            ("Interface", "PJSIP/201"),
            ("StateInterface", "PJSIP/201"),
            ("Status", "1"),
            ("Paused", paused),
            ("InCall", "0"),
        ]
    )


def test_one_pbxs_events_reach_its_companys_dashboard_only(two_pbxes):
    a, b = two_pbxes["pbx-a"], two_pbxes["pbx-b"]
    since_a = broadcast.publish(a.company_id, "calls.hourly", {})
    since_b = broadcast.publish(b.company_id, "calls.hourly", {})
    changes = apply_frames(
        LiveState(pbx="pbx-a"),
        [
            Frame([("Event", "DeviceStateChange"), ("Device", "PJSIP/201"), ("State", "INUSE")]),
            _member("q-ventas", "1"),
        ],
    )
    assert a.pk in changes.user_ids
    assert b.pk not in changes.user_ids
    DashboardPublisher().changes(changes)
    sent_a = broadcast.messages_since(a.company_id, since_a)
    assert {m["type"] for m in sent_a} >= {"user.status", "queue.update"}
    assert {m["payload"]["id"] for m in sent_a if m["type"] == "user.status"} == {a.pk}
    assert broadcast.messages_since(b.company_id, since_b) == []

    snapshot_a = snapshot_payload(company=a.company)
    snapshot_b = snapshot_payload(company=b.company)
    assert [row["status"] for row in snapshot_a["users"]] == ["busy"]  # in a call, paused
    assert [row["status"] for row in snapshot_b["users"]] == ["unavailable"]
    (queue_a,) = snapshot_a["queues"]
    (queue_b,) = snapshot_b["queues"]
    assert [m["extension"] for m in queue_a["members"]] == ["201"]
    assert queue_b["members"] == []


def test_each_dashboard_shows_its_own_pbx_link(two_pbxes):
    a, b = two_pbxes["pbx-a"], two_pbxes["pbx-b"]
    broadcast.set_pbx_connected("pbx-a", True)
    broadcast.set_pbx_connected("pbx-b", False)
    assert snapshot_payload(company=a.company)["stale"] is False
    assert snapshot_payload(company=b.company)["stale"] is True
    assert snapshot_payload(company=b.company)["pbx"]["connected"] is False


@pytest.mark.django_db(transaction=True)
async def test_each_companys_websocket_hears_its_own_pbx_only(two_pbxes, make_supervisor):
    """Two supervisors' sockets; an event on PBX A reaches A's socket, and B's hears nothing."""
    a, b = two_pbxes["pbx-a"], two_pbxes["pbx-b"]
    watch_a = await sync_to_async(make_supervisor)(a.company)
    watch_b = await sync_to_async(make_supervisor)(b.company)
    async with (
        websocket("/ws/dashboard/c-pbx-a/", user=watch_a) as (socket_a, accepted_a, _),
        websocket("/ws/dashboard/c-pbx-b/", user=watch_b) as (socket_b, accepted_b, _),
    ):
        assert accepted_a
        assert accepted_b
        assert (await socket_a.receive_json_from(timeout=5))["type"] == "snapshot"
        assert (await socket_b.receive_json_from(timeout=5))["type"] == "snapshot"

        def on_pbx_a() -> None:
            changes = apply_frames(
                LiveState(pbx="pbx-a"),
                [
                    Frame(
                        [
                            ("Event", "DeviceStateChange"),
                            ("Device", "PJSIP/201"),
                            ("State", "INUSE"),
                        ]
                    )
                ],
            )
            DashboardPublisher().changes(changes)

        await sync_to_async(on_pbx_a)()
        message = await socket_a.receive_json_from(timeout=5)
        assert (message["type"], message["payload"]["id"]) == ("user.status", a.pk)
        assert message["payload"]["status"] == "busy"
        assert await socket_b.receive_nothing(timeout=0.5)


def test_the_hourly_calls_are_the_companys_own_pbxs(two_pbxes):
    """The same queue name and callid on both PBXes: each company's chart counts its own."""
    from django.utils import timezone

    from dashboard.selectors import calls_hourly
    from pbx.models import QueueEntry

    a, b = two_pbxes["pbx-a"], two_pbxes["pbx-b"]
    now = timezone.now()
    for pbx, company, outcome in (
        ("pbx-a", a.company, "answered"),
        ("pbx-b", b.company, "abandoned"),
    ):
        QueueEntry.objects.create(
            pbx=pbx,
            callid="1.1",
            queue_name="q-ventas",
            company=company,
            entered_at=now,
            outcome=outcome,
        )
    totals_a = calls_hourly(company=a.company)["hours"]
    totals_b = calls_hourly(company=b.company)["hours"]
    assert (sum(h["answered"] for h in totals_a), sum(h["abandoned"] for h in totals_a)) == (1, 0)
    assert (sum(h["answered"] for h in totals_b), sum(h["abandoned"] for h in totals_b)) == (0, 1)
