"""Two companies on two PBXes with the same extension, device and queue name: the live reads
answer each from its own PBX's rows and link, and each action goes to its company's PBX."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pbx.models import DeviceState, ListenerLease, LiveChannel, Pbx, QueueMemberState
from tests.envelope import error, result

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_pbxes(make_company, make_user, make_queue, monkeypatch):
    """pbx-a and pbx-b; on each a company with extension 201 on PJSIP/201 in queue q-ventas."""
    found = {}
    for name, host in (("pbx-a", "10.0.0.5"), ("pbx-b", "10.0.0.6")):
        env = f"SWAN_PBX_TEST_{name[-1].upper()}_SECRET"
        monkeypatch.setenv(env, f"secret-of-{name}")
        pbx = Pbx.objects.create(
            name=name, host=host, port=5038, username="swan", secret_env=env, dial_context=name
        )
        company = make_company(slug=f"c-{name}", name=f"Company {name}", pbx=pbx)
        user = make_user(company, "201", f"Agent of {name}", terminals=["PJSIP/201"])
        make_queue(company, "q-ventas", members=[user])
        found[name] = user
    return found


def _live(name: str, connected: bool = True) -> None:
    ListenerLease.objects.create(
        name=name,
        holder="host:1",
        expires_at=timezone.now() + timedelta(seconds=20),
        connected=connected,
    )


def _device(pbx: str, state: str) -> None:
    now = timezone.now()
    DeviceState.objects.create(
        pbx=pbx, interface="PJSIP/201", state=state, changed_at=now, confirmed_at=now
    )


def test_user_status_and_blf_read_the_companys_own_pbx(api, two_pbxes):
    _device("pbx-a", "INUSE")
    _device("pbx-b", "NOT_INUSE")
    status_a = result(api.get("/userStatus/201", {"company": "c-pbx-a"}))
    status_b = result(api.get("/userStatus/201", {"company": "c-pbx-b"}))
    assert (status_a["status"], status_b["status"]) == ("busy", "available")
    (row_a,) = result(api.get("/blf-users/c-pbx-a"))
    (row_b,) = result(api.get("/blf-users/c-pbx-b"))
    assert (row_a["name"], row_a["status"]) == ("Agent of pbx-a", "busy")
    assert (row_b["name"], row_b["status"]) == ("Agent of pbx-b", "available")
    # Without a company the extension is in two companies: ambiguous, as before.
    assert api.get("/userStatus/201").status_code == 409


def test_a_key_of_one_company_sees_nothing_of_the_other_pbx(api_for, two_pbxes):
    _device("pbx-a", "INUSE")
    _device("pbx-b", "NOT_INUSE")
    client = api_for(two_pbxes["pbx-b"].company)
    assert result(client.get("/userStatus/201"))["status"] == "available"
    assert client.get("/blf-users/c-pbx-a").status_code == 404
    assert client.get("/userStatus/201", {"company": "c-pbx-a"}).status_code == 404


def test_current_calls_are_the_pbxs_own_channels(api, two_pbxes):
    now = timezone.now()
    LiveChannel.objects.create(
        pbx="pbx-a",
        unique_id="1700000000.1",
        channel="PJSIP/201-00000001",
        interface="PJSIP/201",
        state="Up",
        exten="600111222",
        started_at=now,
        confirmed_at=now,
    )
    calls_a = result(api.get("/current-calls/201", {"company": "c-pbx-a"}))
    calls_b = result(api.get("/current-calls/201", {"company": "c-pbx-b"}))
    assert [call["number"] for call in calls_a] == ["600111222"]
    assert calls_b == []


def test_the_live_state_header_is_that_of_the_companys_pbx(api, api_for, two_pbxes):
    _live("pbx-a")
    _live("pbx-b", connected=False)
    for path, params in (
        ("/userStatus/201", {"company": "c-pbx-a"}),
        ("/blf-users/c-pbx-a", {}),
        ("/current-calls/201", {"company": "c-pbx-a"}),
    ):
        assert api.get(path, params)["X-Swan-Live-State"] == "live", path
    for path, params in (
        ("/userStatus/201", {"company": "c-pbx-b"}),
        ("/blf-users/c-pbx-b", {}),
        ("/current-calls/201", {"company": "c-pbx-b"}),
    ):
        assert api.get(path, params)["X-Swan-Live-State"] == "stale", path
    # A key of A's company alone needs no company parameter: A's link it is.
    assert api_for(two_pbxes["pbx-a"].company).get("/userStatus/201")["X-Swan-Live-State"] == "live"


def test_actions_go_to_the_pbx_of_the_users_company(api, two_pbxes, gateway):
    QueueMemberState.objects.create(
        pbx="pbx-b",
        queue_name="q-ventas",
        interface="PJSIP/201",
        user=two_pbxes["pbx-b"],
        changed_at=timezone.now(),
        confirmed_at=timezone.now(),
    )
    answer = api.post("/userStatus/201", {"company": "c-pbx-b", "status": "pause"})
    assert answer.status_code == 200, answer.content
    assert [(a.name, a.host, a.secret) for a in gateway.addresses] == [
        ("pbx-b", "10.0.0.6", "secret-of-pbx-b")
    ]
    gateway.addresses.clear()
    api.post("/call/600111222", {"private_source": "201", "company": "c-pbx-a"})
    ((_action, arguments),) = [call for call in gateway.calls if call[0] == "Originate"]
    assert arguments["request"].context == "pbx-a"  # the PBX's default dial context
    assert [a.name for a in gateway.addresses] == ["pbx-a"]
    gateway.addresses.clear()
    api.post("/user-unregister/201", {"company": "c-pbx-a"})
    assert [a.name for a in gateway.addresses] == ["pbx-a"]


@pytest.mark.parametrize("empty", [False, True], ids=["unset", "empty"])
def test_a_pbx_whose_secret_is_missing_is_a_503_that_asks_nothing(
    api, two_pbxes, gateway, monkeypatch, caplog, empty
):
    if empty:
        monkeypatch.setenv("SWAN_PBX_TEST_B_SECRET", "")
    else:
        monkeypatch.delenv("SWAN_PBX_TEST_B_SECRET")
    message = error(api.post("/userStatus/201", {"company": "c-pbx-b", "status": "pause"}), 503)
    assert "SWAN_PBX_TEST_B_SECRET" not in message  # the operator's detail is in the log
    assert gateway.addresses == []
    assert gateway.calls == []
    assert "environment variable SWAN_PBX_TEST_B_SECRET is missing" in caplog.text


def test_a_pbx_that_names_a_variable_without_the_prefix_never_gets_its_value(
    api, two_pbxes, gateway, monkeypatch, caplog
):
    """A row stored before the SWAN_PBX_ rule, naming another setting: the value is never sent to
    the PBX's host (an editor of the PBX chooses both)."""
    monkeypatch.setenv("DATABASE_URL_OF_SWAN", "postgres://swan:db-password@db/swan")
    Pbx.objects.filter(name="pbx-b").update(secret_env="DATABASE_URL_OF_SWAN")

    message = error(api.post("/userStatus/201", {"company": "c-pbx-b", "status": "pause"}), 503)

    assert gateway.addresses == []
    assert gateway.calls == []
    assert "db-password" not in message + caplog.text
    assert "environment variable DATABASE_URL_OF_SWAN does not start with SWAN_PBX_" in caplog.text
