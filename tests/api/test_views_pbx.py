"""userStatus, call, user-unregister and terminal-register through a recording gateway."""

from __future__ import annotations

import pytest
from django.utils import timezone

from pbx.models import DeviceState, UserPresence
from terminals.models import Terminal
from tests.envelope import error, result
from tests.fakes import drop, refuse

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gateway")]


def actions(gateway):
    return [name for name, _ in gateway.calls]


@pytest.fixture
def ana(company, make_user, make_queue):
    user = make_user(company, "200", "Ana García", terminals=["PJSIP/200"])
    make_queue(company, "q-soporte", members=[user])
    make_queue(company, "q-ventas", members=[user])
    now = timezone.now()
    DeviceState.objects.create(
        interface="PJSIP/200", state="NOT_INUSE", changed_at=now, confirmed_at=now
    )
    return user


# userStatus GET


def test_user_status_get(api, ana):
    assert result(api.get("/userStatus/200")) == {
        "extension": "200",
        "id": ana.pk,
        "name": "Ana García",
        "status": "available",
        "description": "Disponible",
    }


def test_user_status_get_unknown_extension_is_a_404(api, company):
    assert "999" in error(api.get("/userStatus/999"), 404)


def test_user_status_get_bad_extension_is_a_400(api):
    error(api.get("/userStatus/abc"), 400)


# userStatus POST


def test_pause_reaches_the_pbx_and_the_answer_shows_it(api, ana, gateway):
    data = result(api.post("/userStatus/200", {"status": "pause", "reason": "Descanso"}))
    assert gateway.calls == [
        (
            "QueuePause",
            {"interface": "PJSIP/200", "paused": True, "queue": None, "reason": "Descanso"},
        )
    ]
    assert (data["status"], data["description"]) == ("pause", "Descanso")
    assert UserPresence.objects.get(user=ana).paused is True


def test_available_unpauses_and_clears_dnd(api, ana, gateway):
    result(api.post("/userStatus/200", {"status": "busy", "reason": "Reunión"}))
    data = result(api.post("/userStatus/200", {"status": "available"}, format="json"))
    # DND cleared first: all or nothing, a refusal leaves the pause as it was too
    assert actions(gateway) == ["DND", "DND", "QueuePause"]
    assert gateway.calls[1][1] == {"key": "200", "enabled": False, "reason": ""}
    assert data["status"] == "available"


def test_busy_sets_dnd_with_reason(api, ana, gateway):
    data = result(api.post("/userStatus/200", {"status": "busy", "reason": "Reunión"}))
    assert gateway.calls == [("DND", {"key": "200", "enabled": True, "reason": "Reunión"})]
    assert (data["status"], data["description"]) == ("busy", "Reunión")


@pytest.mark.parametrize("status", ["", "ringing", "unavailable", "PAUSE"])
def test_other_status_values_are_a_400_and_nothing_reaches_the_pbx(api, ana, gateway, status):
    assert "status" in error(api.post("/userStatus/200", {"status": status}), 400)
    assert gateway.calls == []


def test_reason_with_line_breaks_never_reaches_the_pbx(api, ana, gateway):
    payload = {"status": "pause", "reason": "x\r\nAction: Originate"}
    assert "reason" in error(api.post("/userStatus/200", payload), 400)
    assert gateway.calls == []


def test_pbx_unreachable_is_a_503_and_the_stored_state_is_unchanged(api, ana, gateway):
    gateway.unreachable = True
    error(api.post("/userStatus/200", {"status": "pause", "reason": "Comida"}), 503)
    assert not UserPresence.objects.filter(user=ana).exists()


def test_pbx_dropping_mid_change_is_a_503_and_the_stored_state_is_unchanged(api, ana, gateway):
    gateway.failures["DND"] = drop()
    error(api.post("/userStatus/200", {"status": "available"}), 503)
    assert not UserPresence.objects.filter(user=ana).exists()
    assert gateway.closed == 1


def test_pause_of_a_user_in_no_queue_on_the_pbx_is_a_409(api, ana, gateway):
    gateway.failures["QueuePause"] = refuse("Interface not found")
    assert "200" in error(api.post("/userStatus/200", {"status": "pause"}), 409)
    assert not UserPresence.objects.filter(user=ana).exists()


def test_available_whose_unpause_is_refused_says_and_stores_that_dnd_was_cleared(api, ana, gateway):
    result(api.post("/userStatus/200", {"status": "busy", "reason": "Reunión"}))
    gateway.failures["QueuePause"] = refuse("Permission denied")
    message = error(api.post("/userStatus/200", {"status": "available"}), 409)
    assert "Permission denied; do-not-disturb was cleared before it" in message
    presence = UserPresence.objects.get(user=ana)
    assert (presence.dnd, presence.dnd_reason) == (False, "")


def test_pbx_refusing_dnd_is_a_409(api, ana, gateway):
    gateway.failures["DND"] = refuse("Permission denied")
    assert "Permission denied" in error(api.post("/userStatus/200", {"status": "busy"}), 409)


# call/{destination}


def test_call_rings_the_source_and_dials_in_the_company_context(api, ana, gateway):
    ana.company.dial_context = "from-onfarma"
    ana.company.save()
    payload = {"private_source": "200", "company": "onfarma"}
    assert result(api.post("/call/+34931234567", payload)) == {"success": True}
    ((name, arguments),) = gateway.calls
    request = arguments["request"]
    assert (name, request.channel, request.context, request.exten) == (
        "Originate",
        "PJSIP/200",
        "from-onfarma",
        "+34931234567",
    )


def test_call_refused_by_the_pbx_is_success_false(api, ana, gateway):
    gateway.failures["Originate"] = refuse("Originate failed")
    payload = {"private_source": "200", "company": "onfarma"}
    assert result(api.post("/call/600", payload)) == {"success": False}


@pytest.mark.parametrize("destination", ["abc", "6 00", "+", "1" * 33, "600%0D%0A", "++600"])
def test_call_bad_destination_is_a_400(api, ana, gateway, destination):
    payload = {"private_source": "200", "company": "onfarma"}
    error(api.post(f"/call/{destination}", payload), 400)
    assert gateway.calls == []


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"company": "onfarma"}, 400),
        ({"private_source": "200"}, 400),
        ({"private_source": "2x0", "company": "onfarma"}, 400),
        ({"private_source": "999", "company": "onfarma"}, 404),
        ({"private_source": "200", "company": "nowhere"}, 404),
    ],
)
def test_call_parameter_errors(api, ana, gateway, payload, status):
    error(api.post("/call/600", payload), status)
    assert gateway.calls == []


def test_call_source_without_terminal_is_a_409(api, company, make_user, gateway):
    make_user(company, "300", terminals=[])
    error(api.post("/call/600", {"private_source": "300", "company": "onfarma"}), 409)


def test_call_pbx_down_is_a_503(api, ana, gateway):
    gateway.unreachable = True
    error(api.post("/call/600", {"private_source": "200", "company": "onfarma"}), 503)


def test_call_source_of_another_company_is_a_404(api_for, ana, make_company, gateway):
    other = make_company(slug="other")
    error(api_for(other).post("/call/600", {"private_source": "200", "company": "onfarma"}), 404)


# user-unregister/{extension}


def test_user_unregister_removes_from_every_queue_and_marks_the_webphone(
    api, company, make_user, make_queue, gateway
):
    user = make_user(company, "201", terminals=["PJSIP/201w"])
    Terminal.objects.filter(user=user).update(type="webphone", registered=True)
    make_queue(company, "q1", members=[user])
    make_queue(company, "q2", members=[user])
    assert result(api.post("/user-unregister/201")) == {"success": True}
    assert sorted(arguments["queue"] for _, arguments in gateway.calls) == ["q1", "q2"]
    assert Terminal.objects.get(user=user).registered is False


def test_user_unregister_not_there_still_succeeds(api, ana, gateway):
    gateway.failures["QueueRemove"] = refuse("Unable to remove interface: Not there")
    assert result(api.post("/user-unregister/200")) == {"success": True}


def test_user_unregister_failure_is_success_false(api, ana, gateway):
    gateway.failures["QueueRemove"] = refuse("Unable to remove interface from queue: No such queue")
    assert result(api.post("/user-unregister/200")) == {"success": False}


def test_user_unregister_errors(api, ana, gateway):
    error(api.post("/user-unregister/999"), 404)
    error(api.get("/user-unregister/200"), 405)
    gateway.unreachable = True
    error(api.post("/user-unregister/200"), 503)


# terminal-register/{mac}


@pytest.fixture
def terminal(ana):
    terminal = Terminal.objects.get(user=ana)
    terminal.mac = "001565aabbcc"
    terminal.save()
    return terminal


def test_register_adds_the_user_to_each_queue_on_this_device(api, terminal, gateway):
    assert result(api.post("/terminal-register/00:15:65:AA:BB:CC")) == {"success": True}
    assert gateway.calls == [
        ("QueueAdd", {"queue": "q-soporte", "interface": "PJSIP/200", "member_name": "Ana García"}),
        ("QueueAdd", {"queue": "q-ventas", "interface": "PJSIP/200", "member_name": "Ana García"}),
    ]
    terminal.refresh_from_db()
    assert terminal.registered is True
    assert terminal.registered_at is not None


def test_register_of_a_registered_terminal_unregisters_first(api, terminal, gateway):
    Terminal.objects.filter(pk=terminal.pk).update(registered=True)
    assert result(api.post("/terminal-register/001565aabbcc")) == {"success": True}
    assert actions(gateway) == ["QueueRemove", "QueueRemove", "QueueAdd", "QueueAdd"]


def test_unregister_of_an_unregistered_terminal_registers_first(api, terminal, gateway):
    assert result(api.delete("/terminal-register/0015.65aa.bbcc")) == {"success": True}
    assert actions(gateway) == ["QueueAdd", "QueueAdd", "QueueRemove", "QueueRemove"]
    terminal.refresh_from_db()
    assert terminal.registered is False


def test_register_partly_refused_is_success_false_and_stored_as_done(api, terminal, gateway):
    gateway.failures["QueueAdd"] = lambda a: (
        refuse("Unable to add interface to queue: No such queue")(a)
        if a["queue"] == "q-ventas"
        else None
    )
    assert result(api.post("/terminal-register/001565aabbcc")) == {"success": False}
    terminal.refresh_from_db()
    assert terminal.registered is True  # it is in q-soporte: the PBX did that much


def test_register_already_there_counts_as_done(api, terminal, gateway):
    gateway.failures["QueueAdd"] = refuse("Unable to add interface: Already there")
    assert result(api.post("/terminal-register/001565aabbcc")) == {"success": True}


def test_pbx_dropping_half_way_is_a_503_and_the_stored_state_says_what_happened(
    api, terminal, gateway
):
    Terminal.objects.filter(pk=terminal.pk).update(registered=True)
    removed = []

    def drop_second(arguments):
        removed.append(arguments["queue"])
        return drop()(arguments) if len(removed) == 2 else None

    gateway.failures["QueueRemove"] = drop_second
    error(api.delete("/terminal-register/001565aabbcc"), 503)
    terminal.refresh_from_db()
    assert terminal.registered is True  # still in q-ventas


def test_terminal_register_errors(api, api_for, terminal, make_company, gateway):
    assert "MAC" in error(api.post("/terminal-register/not-a-mac"), 400)
    error(api.post("/terminal-register/ffffffffffff"), 404)
    error(api.get("/terminal-register/001565aabbcc"), 405)
    error(api_for(make_company(slug="other")).post("/terminal-register/001565aabbcc"), 404)
    gateway.unreachable = True
    error(api.post("/terminal-register/001565aabbcc"), 503)
    assert gateway.calls == []


def test_terminal_without_user_is_a_409(api, gateway):
    Terminal.objects.create(mac="0a0b0c0d0e0f", interface="PJSIP/999")
    error(api.post("/terminal-register/0a0b0c0d0e0f"), 409)
