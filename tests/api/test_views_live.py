"""current-calls and web-phone-username: what the live tables say, and every error path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from pbx.models import DeviceState, LiveChannel
from terminals.models import Terminal

pytestmark = pytest.mark.django_db


def answer(response, status=200):
    assert response.status_code == status, response.content
    return json.loads(response.content)


def channel(unique_id, channel_name, *, linked_id, started_at, **fields):
    return LiveChannel.objects.create(
        unique_id=unique_id,
        linked_id=linked_id,
        channel=channel_name,
        interface=channel_name.rsplit("-", 1)[0],
        started_at=started_at,
        confirmed_at=started_at,
        **fields,
    )


def test_current_calls_newest_first_with_direction_number_and_duration(
    api, company, make_user, monkeypatch
):
    make_user(company, "200", terminals=["PJSIP/200"])
    now = timezone.now()
    # an outgoing call placed from 200 to 600111222, answered
    channel(
        "1700000000.1",
        "PJSIP/200-00000001",
        linked_id="1700000000.1",
        started_at=now - timedelta(seconds=95),
        exten="600111222",
        caller_id_num="200",
        connected_line_num="600111222",
    )
    channel(
        "1700000000.2",
        "PJSIP/trunk-00000002",
        linked_id="1700000000.1",
        started_at=now - timedelta(seconds=94),
    )
    # an incoming queue call from 931234567 ringing on 200
    channel(
        "1700000100.5",
        "PJSIP/200-00000005",
        linked_id="1700000100.3",
        started_at=now - timedelta(seconds=3),
        caller_id_num="200",
        connected_line_num="931234567",
    )
    rows = answer(api.get("/current-calls/200"))["result"]
    assert [(r["uniqueid"], r["direction"], r["number"]) for r in rows] == [
        ("1700000100.3", "incoming", "931234567"),
        ("1700000000.1", "outgoing", "600111222"),
    ]
    assert 94 <= rows[1]["duration"] <= 97
    assert 2 <= rows[0]["duration"] <= 5


def test_current_calls_calldate_is_company_local_time(api, make_company, make_user):
    company = make_company(slug="canarias", time_zone="Atlantic/Canary")
    make_user(company, "300", terminals=["PJSIP/300"])
    channel(
        "1.1",
        "PJSIP/300-00000001",
        linked_id="1.1",
        started_at=datetime(2026, 7, 1, 23, 30, tzinfo=UTC),
        exten="600",
    )
    (row,) = answer(api.get("/current-calls/300"))["result"]
    assert row["calldate"] == "2026-07-02 00:30:00"  # WEST is UTC+1 in summer: past midnight


def test_current_calls_one_row_per_call_even_with_two_legs_on_the_users_devices(
    api, company, make_user
):
    make_user(company, "200", terminals=["PJSIP/200", "PJSIP/200w"])
    now = timezone.now()
    channel("2.1", "PJSIP/200-00000001", linked_id="2.0", started_at=now)
    channel("2.2", "PJSIP/200w-00000002", linked_id="2.0", started_at=now)
    assert len(answer(api.get("/current-calls/200"))["result"]) == 1


def test_current_calls_empty_and_errors(api, api_for, company, make_user, make_company):
    make_user(company, "200")
    assert answer(api.get("/current-calls/200"))["result"] == []
    assert answer(api.get("/current-calls/999"), 404)["error"] is True
    assert answer(api.get("/current-calls/2x"), 400)["error"] is True
    assert answer(api_for(make_company(slug="other")).get("/current-calls/200"), 404)["error"]


@pytest.fixture
def webphone_user(company, make_user):
    user = make_user(company, "200", terminals=["PJSIP/200", "PJSIP/200w"])
    Terminal.objects.filter(interface="PJSIP/200w").update(type="webphone", mac="0a0b0c0d0e0f")
    return user


def test_web_phone_username_not_registered(api, webphone_user):
    assert answer(api.get("/web-phone-username/200"))["result"] == {
        "username": "0a0b0c0d0e0f",
        "is_registered": False,
    }


@pytest.mark.parametrize("state", ["UNAVAILABLE", "UNKNOWN", "INVALID"])
def test_web_phone_username_device_down_is_not_registered(api, webphone_user, state):
    now = timezone.now()
    DeviceState.objects.create(
        interface="PJSIP/200w", state=state, changed_at=now, confirmed_at=now
    )
    assert answer(api.get("/web-phone-username/200"))["result"]["is_registered"] is False


def test_web_phone_username_registered_is_a_409_carrying_the_result(api, webphone_user):
    now = timezone.now()
    DeviceState.objects.create(
        interface="PJSIP/200w", state="NOT_INUSE", changed_at=now, confirmed_at=now
    )
    data = answer(api.get("/web-phone-username/200"), 409)
    assert data["error"] is True
    assert "200" in data["error-msg"]
    assert data["result"] == {"username": "0a0b0c0d0e0f", "is_registered": True}


def test_web_phone_username_without_webphone(api, company, make_user):
    make_user(company, "200")
    assert answer(api.get("/web-phone-username/200"))["result"] == {
        "username": None,
        "is_registered": False,
    }


def test_web_phone_username_errors(api, company):
    assert answer(api.get("/web-phone-username/999"), 404)["error"] is True
    assert answer(api.get("/web-phone-username/abc"), 400)["error"] is True
    assert answer(api.post("/web-phone-username/999"), 405)["error"] is True


def test_live_reads_say_whether_the_pbx_link_is_live(api, company, make_user):
    from pbx.models import ListenerLease

    make_user(company, "200")
    assert api.get("/userStatus/200")["X-Swan-Live-State"] == "stale"  # no listener yet
    lease = ListenerLease.objects.create(
        name="default",
        holder="host:1",
        expires_at=timezone.now() + timedelta(seconds=20),
        connected=True,
    )
    for path in ("/userStatus/200", "/blf-users/onfarma", "/current-calls/200"):
        assert api.get(path)["X-Swan-Live-State"] == "live"
    lease.connected = False  # the PBX went away: reads still answer, from the last state
    lease.save()
    response = api.get("/blf-users/onfarma")
    assert response.status_code == 200
    assert response["X-Swan-Live-State"] == "stale"
    assert "X-Swan-Live-State" not in api.get("/company-numbers/onfarma")  # not live state
