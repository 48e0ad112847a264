"""A database that is locked or away never makes the listener skip events."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from pbx.gateway.events import DeviceStateChanged
from pbx.gateway.frames import Frame
from pbx.live import state_tables as livestate
from pbx.live.batch import EventBatch
from pbx.live.state_tables import LiveState
from pbx.models import DeviceState, UserPresence
from tests.pbx_events import apply_frames

pytestmark = pytest.mark.django_db


def event(**headers) -> Frame:
    return Frame([(key, str(value)) for key, value in headers.items()])


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(livestate, "BATCH_RETRY_DELAYS", (0, 0, 0))


def events_for(extension: str) -> list[Frame]:
    return [
        event(Event="DeviceStateChange", Device=f"PJSIP/{extension}", State="INUSE"),
        event(
            Event="QueueMemberPause",
            Queue="q",
            Interface=f"PJSIP/{extension}",
            MemberName="x",
            Paused="1",
            PausedReason="Descanso",
        ),
    ]


def locked_first(times: int, monkeypatch):
    real = livestate._apply_batches
    calls = {"n": 0}

    def apply(timed, *, guarded):
        calls["n"] += 1
        if calls["n"] <= times:
            raise OperationalError("database is locked")
        return real(timed, guarded=guarded)

    monkeypatch.setattr(livestate, "_apply_batches", apply)


def test_a_locked_batch_is_retried_whole_and_nothing_is_skipped(
    company, make_user, make_queue, monkeypatch, caplog
):
    user = make_user(company, "201")
    make_queue(company, "q", members=[user])
    locked_first(2, monkeypatch)
    apply_frames(LiveState(), events_for("201"))
    assert DeviceState.objects.get(interface="PJSIP/201").state == "INUSE"
    assert UserPresence.objects.get(user=user).pause_reason == "Descanso"
    assert "skipped an event" not in caplog.text


def test_a_database_that_stays_away_raises_instead_of_skipping(company, make_user, monkeypatch):
    make_user(company, "201")
    locked_first(99, monkeypatch)
    with pytest.raises(OperationalError):
        apply_frames(LiveState(), events_for("201"))


def test_an_event_failing_on_the_database_is_not_skipped_as_a_bad_event(
    company, make_user, monkeypatch
):
    make_user(company, "201")

    def locked(self, event):
        raise OperationalError("database is locked")

    monkeypatch.setitem(EventBatch.handlers, DeviceStateChanged, locked)
    with pytest.raises(OperationalError):
        apply_frames(LiveState(), events_for("201"))


def test_the_dnd_event_never_puts_back_a_reason_written_meanwhile(company, make_user):
    """A userStatus POST committed busy with a reason while the batch ran (PostgreSQL lets both
    run): the event writes the lamp's columns only, never a whole row read before the POST."""
    from django.utils import timezone

    user = make_user(company, "201")
    now = timezone.now()
    UserPresence.objects.create(
        user=user, dnd=False, dnd_reason="Reunión", changed_at=now, confirmed_at=now
    )
    apply_frames(
        LiveState(), [event(Event="DeviceStateChange", Device="Custom:DND201", State="BUSY")]
    )
    presence = UserPresence.objects.get(user=user)
    assert (presence.dnd, presence.dnd_reason) == (True, "Reunión")
