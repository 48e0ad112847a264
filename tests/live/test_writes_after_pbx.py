"""Once the PBX did a change, our own failing write never turns the answer into an error."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from django.utils import timezone

from pbx.live import services, writes
from pbx.live.state_tables import LiveState
from pbx.models import DeviceState, UserPresence
from terminals.models import Terminal
from tests.pbx_events import apply_frames

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


def test_a_pause_answer_never_overwrites_newer_events_the_listener_applied_meanwhile(
    api, ana, gateway, monkeypatch
):
    """While a userStatus POST pauses, another client re-registers the phone (the PBX re-adds
    it unpaused) and the listener applies both in one batch: the member rows say unpaused. The
    POST's answer, written after that batch, is older than those events: it must not store a
    pause the PBX no longer has (reproduced under load, tests/process/test_demo_under_load.py)."""
    real = services._pause_everywhere
    member = {"Queue": "q-soporte", "Interface": "PJSIP/200", "MemberName": "Ana García"}

    def pause_then_listener_batch(gateway, user, *, paused, reason):
        done = real(gateway, user, paused=paused, reason=reason)
        apply_frames(
            LiveState(),
            [
                {"Event": "QueueMemberAdded", **member, "Paused": "0", "Status": "1"},
                {"Event": "QueueMemberPause", **member, "Paused": "1", "PausedReason": reason},
                {"Event": "QueueMemberRemoved", **member},
                {"Event": "QueueMemberAdded", **member, "Paused": "0", "Status": "1"},
            ],
        )
        return done

    monkeypatch.setattr(services, "_pause_everywhere", pause_then_listener_batch)
    result = answer(api.post("/userStatus/200", {"status": "pause", "reason": "Descanso"}))
    assert result["status"] == "available"  # what the PBX has now, not what it had a moment ago
    presence = UserPresence.objects.get(user=ana)
    assert (presence.paused, presence.pause_reason) == (False, "")


def test_a_pause_answer_is_stored_when_the_listener_has_not_seen_its_events_yet(api, ana, gateway):
    result = answer(api.post("/userStatus/200", {"status": "pause", "reason": "Descanso"}))
    assert (result["status"], result["description"]) == ("pause", "Descanso")
    presence = UserPresence.objects.get(user=ana)
    assert (presence.paused, presence.pause_reason) == (True, "Descanso")
