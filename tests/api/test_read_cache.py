"""The web workers' read cache: every writer is seen by the next request, in one query when warm."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.urls import reverse
from django.utils import timezone

from pbx.api import read_cache as live_cache_module
from pbx.api.read_cache import LiveCache, live_cache
from pbx.directory.api_keys import CompanyScope
from pbx.directory.loading import directory_load
from pbx.gateway import PbxSnapshot
from pbx.live import version as live_version
from pbx.live.state_tables import LiveState
from pbx.models import (
    DeviceState,
    ListenerLease,
    LiveChange,
    LiveVersion,
    QueueMember,
    QueueMemberState,
)
from pbx.models.history import QueueEntry
from terminals.models import Terminal
from tests.pbx_events import apply_frames
from tests.today import earlier_today

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gateway")]


def result(response):
    assert response.status_code == 200, response.content
    return json.loads(response.content)["result"]


def status_of(api, extension="200"):
    return result(api.get(f"/userStatus/{extension}"))["status"]


def device(interface, state):
    now = timezone.now()
    DeviceState.objects.update_or_create(
        interface=interface, defaults={"state": state, "changed_at": now, "confirmed_at": now}
    )


@pytest.fixture
def ana(company, make_user, make_queue):
    user = make_user(company, "200", "Ana García", terminals=["PJSIP/200"])
    make_queue(company, "q-soporte", members=[user])
    device("PJSIP/200", "NOT_INUSE")
    QueueMemberState.objects.create(
        queue_name="q-soporte",
        queue=user.queues.get(),
        interface="PJSIP/200",
        user=user,
        changed_at=timezone.now(),
        confirmed_at=timezone.now(),
    )
    return user


# -- writers: the next request sees each ------------------------------------------------------


def test_a_status_post_is_answered_by_the_next_get(api, ana):
    assert status_of(api) == "available"  # now cached
    assert result(api.get("/blf-users/onfarma"))[0]["status"] == "available"
    result(api.post("/userStatus/200", {"status": "busy", "reason": "Reunión"}))
    assert result(api.get("/userStatus/200"))["description"] == "Reunión"
    assert result(api.get("/blf-users/onfarma"))[0]["status"] == "busy"


def test_a_listener_event_is_answered_by_the_next_get(api, ana):
    state = LiveState()
    assert status_of(api) == "available"
    assert result(api.get("/blf-users/onfarma"))[0]["status"] == "available"
    apply_frames(state, [{"Event": "DeviceStateChange", "Device": "PJSIP/200", "State": "INUSE"}])
    assert status_of(api) == "busy"
    assert result(api.get("/blf-users/onfarma"))[0]["status"] == "busy"
    apply_frames(
        state,
        [
            {
                "Event": "QueueMemberPause",
                "Queue": "q-soporte",
                "Interface": "PJSIP/200",
                "Paused": "1",
                "PausedReason": "Descanso",
            },
            {"Event": "DeviceStateChange", "Device": "PJSIP/200", "State": "NOT_INUSE"},
        ],
    )
    assert result(api.get("/userStatus/200"))["description"] == "Descanso"


def test_a_device_the_listener_does_not_know_yet_is_seen_too(api, ana):
    """The listener maps devices to users with the directory it loaded when it started; a
    terminal added since maps to nobody there, so the cache maps the event's device itself."""
    state = LiveState()
    Terminal.objects.create(mac="0a0b0c0d0e0f", user=ana, interface="PJSIP/200w")
    assert status_of(api) == "available"
    changes = apply_frames(
        state, [{"Event": "DeviceStateChange", "Device": "PJSIP/200w", "State": "RINGING"}]
    )
    assert ana.pk not in changes.user_ids
    assert status_of(api) == "ringing"


def test_a_resync_is_answered_by_the_next_get(api, ana):
    assert status_of(api) == "available"
    LiveState().apply_snapshot(
        PbxSnapshot(
            device_states={"PJSIP/200": "UNAVAILABLE"},
            queue_members=[],
            queue_callers=[],
            channels=[],
            contacts=[],
            taken_at=timezone.now(),
        )
    )
    assert status_of(api) == "unavailable"


def test_an_admin_edit_is_answered_by_the_next_get(api, ana, client, admin_user):
    device("PJSIP/200w", "RINGING")
    assert status_of(api) == "available"
    client.force_login(admin_user)
    form = {
        "company": ana.company_id,
        "extension": "200",
        "name": "Ana García López",
        "mobile": "",
        "terminals-TOTAL_FORMS": 2,
        "terminals-INITIAL_FORMS": 1,
        "terminals-0-id": ana.terminals.get().pk,
        "terminals-0-user": ana.pk,
        "terminals-0-mac": ana.terminals.get().mac,
        "terminals-0-type": "desk",
        "terminals-0-interface": "PJSIP/200",
        "terminals-1-mac": "0a0b0c0d0e0f",
        "terminals-1-type": "webphone",
        "terminals-1-interface": "PJSIP/200w",
    }
    url = reverse("admin:pbx_pbxuser_change", args=[ana.pk])
    assert client.post(url, form).status_code == 302
    assert result(api.get("/userStatus/200"))["status"] == "ringing"
    assert result(api.get("/blf-users/onfarma"))[0]["name"] == "Ana García López"


def test_a_directory_edit_in_the_shell_is_answered_by_the_next_get(api, ana):
    assert result(api.get("/blf-users/onfarma"))[0]["name"] == "Ana García"
    ana.name = "Ana G."  # as a shell would
    ana.save()
    assert result(api.get("/blf-users/onfarma"))[0]["name"] == "Ana G."
    ana.delete()
    assert api.get("/userStatus/200").status_code == 404
    assert result(api.get("/blf-users/onfarma")) == []


def test_load_directory_is_answered_by_the_next_get(api, ana):
    """load_directory writes in bulk, which sends no signals: it numbers the change itself."""
    assert result(api.get("/blf-users/onfarma"))[0]["name"] == "Ana García"
    directory_load(
        {
            "companies": [
                {
                    "slug": "onfarma",
                    "name": "ONFARMA",
                    "users": [{"extension": "200", "name": "Ana Renamed"}],
                }
            ]
        }
    )
    assert result(api.get("/blf-users/onfarma"))[0]["name"] == "Ana Renamed"


def test_a_terminal_registration_leaves_the_directory_cached(api, ana):
    """Its PBX effects come through the listener; the registered flag is in no cached answer."""
    status_of(api)
    reset = LiveVersion.objects.values_list("reset", flat=True).first()
    assert result(api.post(f"/terminal-register/{ana.terminals.get().mac}")) == {"success": True}
    assert LiveVersion.objects.values_list("reset", flat=True).first() == reset


# -- queues-status --------------------------------------------------------------------------


def queue_status(api, company="onfarma"):
    answer = result(api.get("/queues-status", {"queues[g][]": "q-soporte", "company": company}))
    return answer["queues"]["g"]


def write_queue_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_an_ingested_queue_log_is_answered_by_the_next_queues_status(api, ana, tmp_path):
    assert queue_status(api)["status"]["completed"] == 0
    start = int(earlier_today(120).timestamp())
    log = write_queue_log(
        tmp_path / "queue_log",
        [
            f"{start}|1.1|q-soporte|NONE|ENTERQUEUE||600111222|1",
            f"{start + 5}|1.1|q-soporte|PJSIP/200|CONNECT|5|1.2|2",
            f"{start + 65}|1.1|q-soporte|PJSIP/200|COMPLETECALLER|5|60|1",
        ],
    )
    call_command("ingest_queue_log", str(log), stdout=io.StringIO())
    assert QueueEntry.objects.count() == 1
    assert queue_status(api)["status"]["completed"] == 1


def test_callers_and_members_are_answered_by_the_next_queues_status(api, ana, make_queue):
    state = LiveState()
    make_queue(ana.company, "q-nueva")  # after the listener loaded its directory
    groups = {"queues[g][]": ["q-soporte", "q-nueva"]}
    before = result(api.get("/queues-status", groups))["queues"]["g"]
    assert (before["members"], before["status"]["currentCalls"]) == (["200"], 0)
    apply_frames(
        state,
        [
            {"Event": "QueueCallerJoin", "Queue": "q-nueva", "Uniqueid": "9.1", "Position": "1"},
            {"Event": "QueueMemberRemoved", "Queue": "q-soporte", "Interface": "PJSIP/200"},
        ],
    )
    after = result(api.get("/queues-status", groups))["queues"]["g"]
    assert (after["members"], after["status"]["currentCalls"]) == ([], 1)


def test_the_figures_start_again_at_local_midnight(ana, monkeypatch):
    client = CompanyScope(company_ids=None)
    evening = datetime(2024, 5, 10, 21, 0, tzinfo=UTC)  # 23:00 in Madrid
    QueueEntry.objects.create(
        callid="1.1",
        queue_name="q-soporte",
        entered_at=evening - timedelta(minutes=30),
        outcome="answered",
        wait_seconds=3,
    )
    groups = {"g": ["q-soporte"]}

    def completed(now):
        live_cache.catch_up()
        answer = live_cache.queues_status(client=client, groups=groups, company=None, now=now)
        return answer["queues"]["g"]["status"]["completed"]

    assert completed(evening) == 1
    assert completed(evening + timedelta(hours=1, minutes=30)) == 0  # 00:30 the next day


# -- the cache itself -----------------------------------------------------------------------


def test_another_worker_sees_a_change_made_through_this_one(api, ana):
    client = CompanyScope(company_ids=None)
    other = LiveCache()

    def others_status():
        other.catch_up()
        answer = other.user_status(client=client, extension="200", company=None)
        return json.loads(answer.json)["status"]

    assert others_status() == "available"
    result(api.post("/userStatus/200", {"status": "pause", "reason": "Comida"}))
    assert others_status() == "pause"


def test_a_cache_too_far_behind_reads_everything_again(api, ana, monkeypatch):
    monkeypatch.setattr(live_cache_module, "MAX_CHANGES_BEHIND", 2)
    assert status_of(api) == "available"
    for state in ("INUSE", "NOT_INUSE", "RINGING"):
        apply_frames(
            LiveState(), [{"Event": "DeviceStateChange", "Device": "PJSIP/200", "State": state}]
        )
    assert status_of(api) == "ringing"


def test_changes_no_longer_kept_make_the_cache_read_everything_again(api, ana):
    assert status_of(api) == "available"
    apply_frames(
        LiveState(), [{"Event": "DeviceStateChange", "Device": "PJSIP/200", "State": "INUSE"}]
    )
    LiveChange.objects.all().delete()  # pruned meanwhile
    assert status_of(api) == "busy"


def test_the_listener_hands_the_new_status_to_the_caches(api, ana, django_assert_num_queries):
    """Read once by the listener, inside its transaction, instead of by every worker."""
    assert status_of(api) == "available"
    apply_frames(
        LiveState(), [{"Event": "DeviceStateChange", "Device": "PJSIP/200", "State": "RINGING"}]
    )
    with django_assert_num_queries(1):  # the probe brings the change and the row
        assert status_of(api) == "ringing"


def test_descriptions_are_in_each_requests_language(api, ana):
    assert result(api.get("/userStatus/200"))["description"] == "Disponible"
    english = result(api.get("/userStatus/200", HTTP_ACCEPT_LANGUAGE="en"))
    assert english["description"] == "Available"
    apply_frames(
        LiveState(), [{"Event": "DeviceStateChange", "Device": "PJSIP/200", "State": "INUSE"}]
    )
    rows = result(api.get("/blf-users/onfarma", HTTP_ACCEPT_LANGUAGE="en"))
    assert rows[0]["description"] == "Busy"
    assert result(api.get("/blf-users/onfarma"))[0]["description"] == "Ocupado"


def test_warm_reads_cost_one_query(api, ana, django_assert_num_queries):
    groups = {"queues[g][]": "q-soporte"}
    for path, params in (
        ("/userStatus/200", {}),
        ("/blf-users/onfarma", {}),
        ("/queues-status", groups),
    ):
        result(api.get(path, params))
        with django_assert_num_queries(1):  # the probe: version and PBX link
            result(api.get(path, params))


def test_a_cached_answer_still_says_when_the_link_went_stale(api, ana, monkeypatch):
    now = timezone.now()
    ListenerLease.objects.create(
        name="default", holder="host:1", expires_at=now + timedelta(seconds=20), connected=True
    )
    assert api.get("/userStatus/200")["X-Swan-Live-State"] == "live"
    # The listener died: nobody renews the lease, nothing is written.
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(seconds=21))
    response = api.get("/userStatus/200")
    assert response["X-Swan-Live-State"] == "stale"
    assert json.loads(response.content)["result"]["status"] == "available"


def test_the_probe_replaces_the_health_check_and_reconnects_once(monkeypatch):
    calls = []

    def flaky(after, at_most):
        calls.append(connections[DEFAULT_DB_ALIAS].health_check_done)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return [(0, 3, 1, None)]

    closed = []
    wrapper = connections[DEFAULT_DB_ALIAS]
    monkeypatch.setattr(live_version, "_probe", flaky)
    monkeypatch.setattr(wrapper, "in_atomic_block", False)
    monkeypatch.setattr(wrapper, "health_check_enabled", True)
    monkeypatch.setattr(wrapper, "health_check_done", False)
    monkeypatch.setattr(wrapper, "close", lambda: closed.append(True))
    assert live_version.probe().version == 3
    assert calls == [True, True]  # Django's own SELECT 1 is skipped
    assert closed == [True]


def test_a_broken_connection_inside_a_transaction_is_not_retried(monkeypatch):
    def broken(after, at_most):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr(live_version, "_probe", broken)
    with pytest.raises(InterfaceError):
        live_version.probe()


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "update-select"])
def test_a_new_database_starts_the_version_itself(ana, returning, monkeypatch):
    features = connection.features
    monkeypatch.delitem(features.__dict__, "can_return_rows_from_bulk_insert", raising=False)
    monkeypatch.setattr(type(features), "can_return_rows_from_bulk_insert", returning)
    LiveVersion.objects.all().delete()
    assert live_version.probe().version == 0
    assert live_version.live_changed(users=[ana.pk]) == 1
    assert live_version.live_changed(everything=True) == 2
    assert live_version.probe() == live_version.Probe(version=2, reset=2, live_pbxes=frozenset())
    assert live_version.live_changed() is None  # nothing named: no change


# -- user-resume ------------------------------------------------------------------------------


def resume(api, extension="200", **params):
    return result(api.get(f"/user-resume/{extension}", {"company": "onfarma", **params}))


def answered(queue, user, *, talk=60):
    return QueueEntry.objects.create(
        callid=f"{user.pk}.{QueueEntry.objects.count()}",
        queue_name=queue,
        entered_at=earlier_today(5 * 60),
        outcome="answered",
        wait_seconds=4,
        talk_seconds=talk,
        agent_user=user,
    )


def test_an_ingested_queue_log_is_answered_by_the_next_user_resume(api, ana, tmp_path):
    groups = {"queues[g][]": "q-soporte"}
    before = resume(api, **groups)
    assert (before["user"]["completed"], before["queue"]["completed"]) == (0, 0)
    start = int(earlier_today(120).timestamp())
    log = write_queue_log(
        tmp_path / "queue_log",
        [
            f"{start}|1.1|q-soporte|NONE|ENTERQUEUE||600111222|1",
            f"{start + 5}|1.1|q-soporte|PJSIP/200|CONNECT|5|1.2|2",
            f"{start + 65}|1.1|q-soporte|PJSIP/200|COMPLETECALLER|5|60|1",
        ],
    )
    call_command("ingest_queue_log", str(log), stdout=io.StringIO())
    after = resume(api, **groups)
    assert (after["user"]["completed"], after["queue"]["completed"]) == (1, 1)
    assert after["user"]["totalSpeechTime"] == "01 minutos 00 segundos"


def test_the_base_of_comparison_follows_the_configured_queue_members(api, ana, make_user):
    bea = make_user(ana.company, "201", "Bea")
    membership = QueueMember.objects.create(queue=ana.queues.get(), user=bea)
    answered("q-soporte", ana)
    answered("q-soporte", bea)
    answered("q-soporte", bea)
    groups = {"queues[g][]": "q-soporte"}
    # Ana 1 call against an average of 1.5: 66.67 %
    assert resume(api, **groups)["user"]["stats_complete"]["percentage"] == 66.67
    membership.delete()  # Bea leaves the queue (the admin's inline, or a shell)
    assert resume(api, **groups)["user"]["stats_complete"]["percentage"] == 100.0


def test_a_user_outside_its_base_still_counts_in_it(api, ana, make_user):
    """As history.user_resume: the base is the queue's members and the user, once each."""
    outsider = make_user(ana.company, "202", "Carla")
    answered("q-soporte", ana, talk=30)
    answered("q-soporte", outsider)
    groups = {"queues[g][]": "q-soporte"}
    mine = resume(api, "202", **groups)["user"]
    assert (mine["completed"], mine["stats_complete"]["percentage"]) == (1, 100.0)
    assert resume(api, **groups)["user"]["stats_complete"]["percentage"] == 100.0


def test_a_warm_user_resume_reads_only_the_last_call(api, ana, django_assert_num_queries):
    params = {"queues[g][]": "q-soporte", "department": ""}
    resume(api, **params)
    with django_assert_num_queries(2):  # the probe, the user's newest CDR row (none)
        resume(api, **params)


@pytest.mark.django_db(transaction=True)
def test_a_lost_prepared_probe_is_prepared_again():
    if connection.vendor != "postgresql":
        pytest.skip("the probe is a prepared statement on PostgreSQL only")
    first = live_version.probe()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE swan_live_probe")
    assert live_version.probe() == first


def test_the_refresh_command_makes_the_caches_read_everything_again(api, ana):
    assert status_of(api) == "available"
    DeviceState.objects.filter(interface="PJSIP/200").update(state="INUSE")  # SQL-like: unseen
    assert status_of(api) == "available"
    out = io.StringIO()
    call_command("refresh_read_caches", stdout=out)
    assert "start again" in out.getvalue()
    assert status_of(api) == "busy"
