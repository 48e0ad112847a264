"""Once the PBX did a change, our own failing write never turns the answer into an error."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from django.utils import timezone

from pbx.live import services, writes
from pbx.models import DeviceState, UserPresence
from terminals.models import Terminal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def gateway(gateway, monkeypatch):
    monkeypatch.setattr(writes, "RETRY_DELAYS", (0, 0, 0))
    return gateway


@pytest.fixture
def ana(company, make_user, make_queue):
    user = make_user(company, "200", "Ana García", terminals=["PJSIP/200"])
    make_queue(company, "q-soporte", members=[user])
    now = timezone.now()
    DeviceState.objects.create(
        interface="PJSIP/200", state="NOT_INUSE", changed_at=now, confirmed_at=now
    )
    return user


def failing(times: int, real):
    """`real`, failing with 'database is locked' the first `times` calls."""
    calls = {"n": 0}

    def write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= times:
            raise OperationalError("database is locked")
        return real(*args, **kwargs)

    return write


def answer(response):
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    assert body["error"] is False
    return body["result"]


def test_a_locked_write_is_retried_and_stored(api, ana, gateway, monkeypatch):
    monkeypatch.setattr(services, "_save_presence", failing(2, services._save_presence))
    result = answer(api.post("/userStatus/200", {"status": "pause", "reason": "Descanso"}))
    assert result["description"] == "Descanso"
    assert UserPresence.objects.get(user=ana).pause_reason == "Descanso"


def test_a_write_that_keeps_failing_still_answers_what_the_pbx_did(
    api, ana, gateway, monkeypatch, caplog
):
    monkeypatch.setattr(services, "_save_presence", failing(99, services._save_presence))
    result = answer(api.post("/userStatus/200", {"status": "pause", "reason": "Descanso"}))
    assert (result["status"], result["description"]) == ("pause", "Descanso")
    assert [name for name, _ in gateway.calls] == ["QueuePause"]
    assert "write lost after the pbx changed" in caplog.text
    assert not UserPresence.objects.filter(user=ana).exists()


def test_a_failing_read_after_the_change_answers_what_the_pbx_did(api, ana, gateway, monkeypatch):
    def unreadable(**_kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "user_status_get", unreadable)
    result = answer(api.post("/userStatus/200", {"status": "busy"}))
    assert (result["status"], result["extension"]) == ("busy", "200")


def test_terminal_register_answers_the_pbx_when_storing_fails(api, ana, gateway, monkeypatch):
    terminal = Terminal.objects.get(user=ana)
    real_save = Terminal.save
    monkeypatch.setattr(Terminal, "save", failing(99, real_save))
    assert answer(api.post(f"/terminal-register/{terminal.mac}")) == {"success": True}
    assert [name for name, _ in gateway.calls] == ["QueueAdd"]


def test_terminal_register_retries_the_stored_state(api, ana, gateway, monkeypatch):
    terminal = Terminal.objects.get(user=ana)
    monkeypatch.setattr(Terminal, "save", failing(1, Terminal.save))
    assert answer(api.post(f"/terminal-register/{terminal.mac}")) == {"success": True}
    terminal.refresh_from_db()
    assert terminal.registered is True
