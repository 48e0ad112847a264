"""Supervisor actions (dashboard.actions.action_run) on the recording gateway: the exact PBX
actions sent, nothing sent when a rule refuses, the result and the audit log entry."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import override

from dashboard.actions import Action, action_run, allowed_actions
from dashboard.models import AuditEntry, Supervisor
from dashboard.transcript import PbxAnswer
from pbx.gateway import PbxUnavailable, SpyRequest
from pbx.models import DeviceState, LiveChannel
from terminals.models import Terminal
from tests.fakes import RecordingGateway, refuse

ALL_FLAGS = {
    "may_pause": True,
    "may_log_agents": True,
    "may_listen": True,
    "may_whisper": True,
    "may_barge": True,
}


@pytest.fixture(autouse=True)
def english():
    with override("en"):
        yield


def grant(user, **flags):
    Supervisor.objects.filter(user=user).update(**flags)
    user.refresh_from_db()
    return user


@pytest.fixture
def setup(company, make_company, make_user, make_queue, make_supervisor, gateway):
    ana = make_user(company, "200", "Ana García")
    luis = make_user(company, "201", "Luis Pérez")
    make_queue(company, "q-soporte", members=[ana, luis])
    make_queue(company, "q-ventas", members=[luis])
    other = make_company(slug="other", name="Other")
    make_user(other, "300", "Someone Else")
    now = timezone.now()
    for extension in ("200", "201"):
        DeviceState.objects.create(
            interface=f"PJSIP/{extension}", state="NOT_INUSE", changed_at=now, confirmed_at=now
        )
    marta = grant(make_supervisor(company, username="marta"), phone="PJSIP/250", **ALL_FLAGS)
    return {
        "company": company,
        "other": other,
        "ana": ana,
        "luis": luis,
        "marta": marta,
        "gateway": gateway,
    }


def run(setup, action, extension="201", *, actor=None, reason=""):
    return action_run(
        gateway=RecordingGateway(),
        actor=actor or setup["marta"],
        company=setup["company"],
        action=action,
        extension=extension,
        reason=reason,
    )


def in_call(interface="PJSIP/201", channel="PJSIP/201-0000001a", state="Up"):
    now = timezone.now()
    return LiveChannel.objects.create(
        unique_id=f"1700000000.{LiveChannel.objects.count()}",
        linked_id="1700000000.0",
        channel=channel,
        interface=interface,
        state=state,
        started_at=now,
        confirmed_at=now,
    )


# -- each action -------------------------------------------------------------------------------


def test_pause_pauses_the_agent_in_every_queue_with_the_reason(setup):
    result = run(setup, Action.PAUSE, reason="Descanso")
    assert (result.ok, result.status_code) == (True, 200)
    assert setup["gateway"].calls == [
        (
            "QueuePause",
            {"interface": "PJSIP/201", "paused": True, "queue": None, "reason": "Descanso"},
        )
    ]
    assert result.answers == [
        PbxAnswer("QueuePause", "PJSIP/201", True, "Interface paused successfully")
    ]
    assert result.message == "Extension 201 is paused: Descanso."
    assert (result.status["status"], result.status["description"]) == ("pause", "Descanso")
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.company, entry.company_name) == (
        "marta",
        setup["company"],
        "ONFARMA",
    )
    assert (entry.action, entry.extension, entry.target_name) == ("pause", "201", "Luis Pérez")
    assert (entry.outcome, entry.status_code, entry.detail) == ("done", 200, "Descanso")
    assert entry.pbx_answer == "QueuePause PJSIP/201: Interface paused successfully"
    assert entry.message == result.message
    assert entry.user == setup["marta"]


def test_unpause_makes_the_agent_available_as_user_status_does(setup):
    result = run(setup, Action.UNPAUSE)
    assert result.ok
    assert [call[0] for call in setup["gateway"].calls] == ["DND", "QueuePause"]
    assert setup["gateway"].calls[0][1] == {"key": "201", "enabled": False, "reason": ""}
    assert setup["gateway"].calls[1][1]["paused"] is False
    assert [a.line() for a in result.answers] == [
        "DND 201 off: Key deleted successfully; Variable Set",
        "QueuePause PJSIP/201: Interface unpaused successfully",
    ]
    assert result.status["status"] == "available"
    assert AuditEntry.objects.get().action == "unpause"


def test_logout_removes_the_agent_from_each_of_its_queues(setup):
    result = run(setup, Action.LOGOUT)
    assert result.ok, result.message
    assert sorted(args["queue"] for _action, args in setup["gateway"].calls) == [
        "q-soporte",
        "q-ventas",
    ]
    assert {action for action, _ in setup["gateway"].calls} == {"QueueRemove"}
    assert [a.line() for a in result.answers] == [
        "QueueRemove q-soporte PJSIP/201: Removed interface from queue",
        "QueueRemove q-ventas PJSIP/201: Removed interface from queue",
    ]
    assert result.message == "Extension 201 is out of its queues."


def test_login_adds_the_agent_to_its_queues_on_its_terminal_without_leaving_first(setup):
    Terminal.objects.filter(user=setup["luis"]).update(registered=True)
    result = run(setup, Action.LOGIN)
    assert result.ok, result.message
    assert [
        (action, args["queue"], args["interface"]) for action, args in setup["gateway"].calls
    ] == [
        ("QueueAdd", "q-soporte", "PJSIP/201"),
        ("QueueAdd", "q-ventas", "PJSIP/201"),
    ]
    assert result.message == "Extension 201 is in its queues on PJSIP/201."
    assert AuditEntry.objects.get().detail == "PJSIP/201"
    assert Terminal.objects.get(user=setup["luis"]).registered


@pytest.mark.parametrize(
    ("action", "caller_id", "verb"),
    [
        (Action.LISTEN, '"Listen 201" <201>', "listen to"),
        (Action.WHISPER, '"Whisper 201" <201>', "whisper to"),
        (Action.BARGE, '"Barge 201" <201>', "barge into the call of"),
    ],
)
def test_spying_rings_the_supervisors_phone_onto_the_agents_call(setup, action, caller_id, verb):
    in_call()
    result = run(setup, action)
    assert result.ok, result.message
    assert setup["gateway"].calls == [
        (
            "Spy",
            {
                "request": SpyRequest(
                    device="PJSIP/250",
                    channel="PJSIP/201-0000001a",
                    mode=action,
                    caller_id=caller_id,
                )
            },
        )
    ]
    assert result.answers == [
        PbxAnswer(
            "Originate",
            f"PJSIP/250 → ChanSpy PJSIP/201-0000001a ({action})",
            True,
            "Originate successfully queued",
        )
    ]
    assert result.message == f"Your phone PJSIP/250 rings: answer it to {verb} extension 201."
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.detail) == (action, "PJSIP/250 → PJSIP/201-0000001a")


def test_the_newest_answered_channel_of_the_agent_is_spied_on(setup):
    in_call(channel="PJSIP/201-00000001")
    in_call(channel="PJSIP/201-00000002", state="Ringing")
    in_call(interface="PJSIP/200", channel="PJSIP/200-00000003")
    run(setup, Action.LISTEN)
    (_name, args) = setup["gateway"].calls[0]
    assert args["request"].channel == "PJSIP/201-00000001"


# -- who may -------------------------------------------------------------------------------------


def test_each_flag_allows_its_own_actions(setup, make_supervisor):
    user = make_supervisor(setup["company"])
    assert allowed_actions(user) == []
    grant(user, may_pause=True)
    assert allowed_actions(user) == ["pause", "unpause"]
    grant(user, may_pause=False, may_log_agents=True, may_barge=True)
    assert allowed_actions(user) == ["logout", "login", "barge"]
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    assert allowed_actions(admin) == list(Action.values)


def test_a_supervisor_without_the_permission_is_refused_and_nothing_is_sent(setup, make_supervisor):
    viewer = grant(make_supervisor(setup["company"], username="viewer"), may_listen=True)
    in_call()
    for action in (Action.PAUSE, Action.LOGOUT, Action.WHISPER):
        result = run(setup, action, actor=viewer, reason="x")
        assert (result.ok, result.status_code, result.outcome) == (False, 403, "denied")
        assert "You may not" in result.message
    assert setup["gateway"].calls == []
    assert list(AuditEntry.objects.values_list("outcome", flat=True)) == ["denied"] * 3
    assert run(setup, Action.LISTEN, actor=viewer).status_code == 409  # allowed; no phone


def test_an_extension_of_another_company_is_not_found(setup):
    for extension in ("300", "999"):
        result = run(setup, Action.PAUSE, extension)
        assert (result.status_code, result.outcome) == (404, "refused")
        assert "not found in ONFARMA" in result.message
    assert setup["gateway"].calls == []


@pytest.mark.parametrize("extension", ["", "20a", "2" * 21, "1\nlevel=ERROR forged"])
def test_a_malformed_extension_is_refused_and_logged_on_one_line(setup, extension, caplog):
    caplog.set_level("INFO", logger="swan.dashboard")

    result = run(setup, Action.PAUSE, extension)

    assert (result.status_code, result.outcome) == (400, "refused")
    assert "is not a valid extension: it must be 1 to 20 digits" in result.message
    assert setup["gateway"].calls == []
    assert AuditEntry.objects.get().outcome == "refused"
    [line] = [r.getMessage() for r in caplog.records if r.name == "swan.dashboard"]
    assert "\n" not in line
    assert f"extension={extension[:20]!r}" in line


@pytest.mark.parametrize(
    ("reason", "message"),
    [("a\r\nAction: Hangup", "control characters"), ("x" * 121, "longer than 120")],
)
def test_a_bad_reason_is_refused_before_the_pbx(setup, reason, message):
    result = run(setup, Action.PAUSE, reason=reason)
    assert result.status_code == 400
    assert message in result.message
    assert setup["gateway"].calls == []


# -- spying: what it needs -----------------------------------------------------------------------


def test_listening_to_an_agent_without_a_call_is_refused(setup):
    in_call(channel="PJSIP/201-00000002", state="Ringing")  # ringing is no call to join yet
    in_call(interface="PJSIP/200", channel="PJSIP/200-00000003")  # another agent's call
    result = run(setup, Action.LISTEN)
    assert (result.status_code, result.outcome) == (409, "refused")
    assert result.message == "Extension 201 is not in a call."
    assert setup["gateway"].calls == []


def test_a_supervisor_without_a_phone_cannot_join_calls(setup):
    in_call()
    Supervisor.objects.filter(user=setup["marta"]).update(phone="")
    result = run(setup, Action.WHISPER)
    assert result.status_code == 409
    assert "no phone" in result.message
    assert setup["gateway"].calls == []
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    assert run(setup, Action.BARGE, actor=admin).status_code == 409  # a superuser: no profile


def test_a_channel_name_chanspy_could_not_take_is_refused(setup):
    in_call(channel="PJSIP/201-1a,B")
    result = run(setup, Action.LISTEN)
    assert result.status_code == 409
    assert "cannot be joined" in result.message
    assert setup["gateway"].calls == []


# -- the PBX down or refusing ----------------------------------------------------------------------


@pytest.mark.parametrize("action", list(Action.values))
def test_the_pbx_down_is_a_503_with_what_was_tried(setup, action):
    in_call()
    setup["gateway"].unreachable = True
    result = run(setup, action, reason="Descanso")
    assert (result.ok, result.status_code, result.outcome) == (False, 503, "unavailable")
    assert result.message == "The PBX cannot be reached right now; try again later."
    assert result.answers
    assert not result.answers[0].ok
    assert result.answers[0].message.startswith("no answer: ")
    entry = AuditEntry.objects.get()
    assert (entry.outcome, entry.status_code) == ("unavailable", 503)
    assert "no answer: connection refused" in entry.pbx_answer


def test_the_pbx_dropping_half_way_through_a_logout_is_a_503(setup):
    outcomes = iter([None, PbxUnavailable("connection dropped")])
    setup["gateway"].failures["QueueRemove"] = lambda arguments: next(outcomes)
    result = run(setup, Action.LOGOUT)
    assert result.status_code == 503
    assert [a.ok for a in result.answers] == [True, False]


def test_a_pause_the_pbx_refuses_everywhere_is_a_409_with_its_answers(setup):
    setup["gateway"].failures["QueuePause"] = refuse("Interface not found")
    result = run(setup, Action.PAUSE, reason="Descanso")
    assert (result.status_code, result.outcome) == (409, "refused")
    assert result.message == "Extension 201 is not a member of any queue on the PBX."
    assert [a.line() for a in result.answers] == ["QueuePause PJSIP/201: Interface not found"]
    assert AuditEntry.objects.get().pbx_answer == "QueuePause PJSIP/201: Interface not found"


def test_a_logout_of_static_members_is_refused_by_the_pbx(setup):
    setup["gateway"].failures["QueueRemove"] = refuse("Member not dynamic")
    result = run(setup, Action.LOGOUT)
    assert result.status_code == 409
    assert result.message == (
        "The PBX did not take extension 201 out of every queue: "
        "q-soporte PJSIP/201: Member not dynamic; q-ventas PJSIP/201: Member not dynamic"
    )


def test_a_login_the_pbx_refuses_is_a_409(setup):
    setup["gateway"].failures["QueueAdd"] = refuse(
        "Unable to add interface to queue: No such queue"
    )
    result = run(setup, Action.LOGIN)
    assert result.status_code == 409
    assert "did not put extension 201 in every queue" in result.message
    assert not Terminal.objects.get(user=setup["luis"]).registered


def test_a_login_without_a_terminal_is_refused(setup):
    Terminal.objects.filter(user=setup["luis"]).delete()
    result = run(setup, Action.LOGIN)
    assert (result.status_code, result.message) == (
        409,
        "Extension 201 has no terminal to log in with.",
    )
    assert setup["gateway"].calls == []


def test_a_spy_the_pbx_refuses_is_a_409_with_its_answer(setup):
    in_call()
    setup["gateway"].failures["Spy"] = refuse("Permission denied")
    result = run(setup, Action.BARGE)
    assert (result.status_code, result.message) == (
        409,
        "The PBX refused the call: Permission denied",
    )
    assert result.answers[0].message == "Permission denied"
