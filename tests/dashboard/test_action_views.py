"""The actions over HTTP: the panel (only for what one may do), CSRF, the envelope and statuses."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.models import AuditEntry, Supervisor
from pbx.models import DeviceState
from tests.fakes import refuse

PAGE = "/dashboard/onfarma/"


def url(action: str, slug: str = "onfarma") -> str:
    return f"/dashboard/{slug}/actions/{action}/"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def setup(company, make_company, make_user, make_queue, make_supervisor, gateway):
    luis = make_user(company, "201", "Luis Pérez")
    make_queue(company, "q-soporte", members=[luis])
    other = make_company(slug="other", name="Other")
    make_user(other, "300", "Someone Else")
    now = timezone.now()
    DeviceState.objects.create(
        interface="PJSIP/201", state="NOT_INUSE", changed_at=now, confirmed_at=now
    )
    marta = make_supervisor(company, username="marta")
    Supervisor.objects.filter(user=marta).update(may_pause=True, may_listen=True)
    return {"company": company, "other": other, "marta": marta, "gateway": gateway}


def client_of(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def answer(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.content)


def test_the_page_shows_only_the_buttons_the_supervisor_may_use(setup):
    html = client_of(setup["marta"]).get(PAGE).content.decode()
    assert 'id="actions"' in html
    assert re.findall(r'data-action="(\w+)"', html) == ["pause", "unpause", "listen"]
    assert '<option value="201">201 · Luis Pérez</option>' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "dashboard/actions.js" in html
    assert 'data-url="/dashboard/onfarma/actions/ACTION/"' in html


def test_a_supervisor_without_permissions_gets_no_panel(setup, make_supervisor):
    html = client_of(make_supervisor(setup["company"])).get(PAGE).content.decode()
    assert 'id="actions"' not in html
    assert "actions.js" not in html
    assert "data-action=" not in html


def test_a_pause_answers_the_envelope_with_the_pbx_answer(setup):
    response = client_of(setup["marta"]).post(
        url("pause"), {"extension": "201", "reason": "Descanso"}
    )
    body = answer(response, 200)
    assert (body["error"], body["error-msg"]) == (False, None)
    result = body["result"]
    assert (result["action"], result["extension"], result["name"]) == ("pause", "201", "Luis Pérez")
    assert (result["ok"], result["outcome"]) == (True, "done")
    assert result["message"] == "Extension 201 is paused: Descanso."
    assert result["pbx"] == [
        {
            "action": "QueuePause",
            "target": "PJSIP/201",
            "ok": True,
            "message": "Interface paused successfully",
        }
    ]
    assert result["status"]["status"] == "pause"


def test_a_post_without_the_csrf_token_is_refused_before_anything(setup):
    client = client_of(setup["marta"], enforce_csrf_checks=True)
    response = client.post(url("pause"), {"extension": "201"})
    assert response.status_code == 403
    assert setup["gateway"].calls == []
    assert not AuditEntry.objects.exists()
    # with the page's token (as the page's script sends it), the same POST goes through
    client.get(PAGE)
    token = client.cookies["csrftoken"].value
    response = client.post(url("pause"), {"extension": "201"}, HTTP_X_CSRFTOKEN=token)
    assert answer(response, 200)["result"]["ok"] is True


def test_only_post_is_allowed(setup):
    response = client_of(setup["marta"]).get(url("pause"))
    assert answer(response, 405)["error"] is True
    assert response["Allow"] == "POST"


def test_anonymous_posts_are_refused(setup):
    body = answer(Client().post(url("pause"), {"extension": "201"}), 403)
    assert body["error-msg"] == "Log in to act on the dashboard."
    assert setup["gateway"].calls == []


def test_another_company_or_an_unknown_action_is_a_404(setup):
    client = client_of(setup["marta"])
    for path in (url("pause", "other"), url("pause", "nowhere"), url("steal")):
        body = answer(client.post(path, {"extension": "300"}), 404)
        assert body["error"] is True
    assert setup["gateway"].calls == []
    assert not AuditEntry.objects.exists()


def test_an_action_without_the_permission_is_a_403(setup):
    body = answer(client_of(setup["marta"]).post(url("logout"), {"extension": "201"}), 403)
    assert body["error"] is True
    assert body["error-msg"] == (
        "You may not “log out of the queues”: an administrator allows it in your supervisor "
        "profile."
    )
    assert body["result"]["outcome"] == "denied"
    assert setup["gateway"].calls == []
    assert AuditEntry.objects.get().outcome == "denied"


def test_the_pbx_down_is_a_503_the_page_can_show(setup):
    setup["gateway"].unreachable = True
    body = answer(client_of(setup["marta"]).post(url("pause"), {"extension": "201"}), 503)
    assert body["error-msg"] == "The PBX cannot be reached right now; try again later."
    assert body["result"]["outcome"] == "unavailable"
    assert body["result"]["pbx"][0]["ok"] is False


def test_a_pbx_refusal_is_a_409_with_its_answer(setup):
    setup["gateway"].failures["QueuePause"] = refuse("Interface not found")
    body = answer(client_of(setup["marta"]).post(url("pause"), {"extension": "201"}), 409)
    assert body["error-msg"] == "Extension 201 is not a member of any queue on the PBX."
    assert body["result"]["pbx"][0]["message"] == "Interface not found"


def test_listening_without_a_call_is_a_409(setup):
    Supervisor.objects.filter(user=setup["marta"]).update(phone="PJSIP/250")
    body = answer(client_of(setup["marta"]).post(url("listen"), {"extension": "201"}), 409)
    assert body["error-msg"] == "Extension 201 is not in a call."
    assert setup["gateway"].calls == []


def test_the_messages_are_in_spanish_by_default(setup, settings):
    settings.LANGUAGE_CODE = "es"
    body = answer(client_of(setup["marta"]).post(url("pause"), {"extension": "201"}), 200)
    assert body["result"]["message"] == "La extensión 201 está en pausa."
