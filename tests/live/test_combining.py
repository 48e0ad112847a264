"""The listeners of one process write in turns, the batches waiting for a turn together."""

from __future__ import annotations

import threading

import pytest
from django.utils import timezone

from pbx.gateway.events import DeviceStateChanged, parse_event
from pbx.gateway.frames import Frame
from pbx.live import state_tables as livestate
from pbx.live.batch import EventBatch
from pbx.live.combining import BatchCombiner
from pbx.live.presence import presence_rows_of
from pbx.live.state_tables import LiveChanges, LiveState, apply_together
from pbx.models import (
    DeviceState,
    LiveChannel,
    LiveVersion,
    Pbx,
    QueueCallerState,
    QueueMemberState,
    UserPresence,
)
from pbx.simulator import Behaviour, CallCentre
from tests.live.test_listener import wait_until
from tests.pbx_events import pbx_events


class Gate:
    """An apply_together stand-in that records each call and holds the first until opened."""

    def __init__(self, error: Exception | None = None):
        self.calls: list[list[str]] = []
        self.writing = threading.Event()
        self.opened = threading.Event()
        self.error = error

    def __call__(self, batches):
        names = [state for state, _events in batches]
        self.calls.append(names)
        if len(self.calls) == 1:
            self.writing.set()
            assert self.opened.wait(10)
        if self.error is not None:
            raise self.error
        return [LiveChanges(user_ids={len(events)}) for _state, events in batches]


def hand_in(combiner: BatchCombiner, name: str, events: list, results: dict) -> threading.Thread:
    def run():
        try:
            results[name] = combiner.apply(name, events)
        except Exception as exc:
            results[name] = exc

    thread = threading.Thread(target=run, name=f"listener-{name}")
    thread.start()
    return thread


def test_batches_handed_in_during_a_write_are_applied_together_next():
    gate = Gate()
    combiner = BatchCombiner(apply=gate)
    results: dict = {}
    first = hand_in(combiner, "pbx-a", [1], results)
    assert gate.writing.wait(10)
    others = [
        hand_in(combiner, "pbx-b", [1, 2], results),
        hand_in(combiner, "pbx-c", [1, 2, 3], results),
    ]
    wait_until(lambda: len(combiner._waiting) == 2, message="two batches waiting for the turn")
    gate.opened.set()
    for thread in (first, *others):
        thread.join(10)
    assert gate.calls[0] == ["pbx-a"]
    assert sorted(gate.calls[1]) == ["pbx-b", "pbx-c"]  # one transaction for both
    assert len(gate.calls) == 2
    assert combiner.transactions == 2
    # each listener gets what its own batch changed
    assert {name: changes.user_ids for name, changes in results.items()} == {
        "pbx-a": {1},
        "pbx-b": {2},
        "pbx-c": {3},
    }


def test_a_lone_batch_is_applied_at_once_by_its_own_thread():
    gate = Gate()
    gate.opened.set()
    combiner = BatchCombiner(apply=gate)
    assert combiner.apply("pbx-a", [1, 2]).user_ids == {2}
    assert combiner.apply("pbx-a", [1]).user_ids == {1}
    assert gate.calls == [["pbx-a"], ["pbx-a"]]


def test_a_failed_write_is_raised_in_every_thread_whose_batch_it_held():
    gate = Gate(error=RuntimeError("the database went away"))
    combiner = BatchCombiner(apply=gate)
    results: dict = {}
    first = hand_in(combiner, "pbx-a", [1], results)
    assert gate.writing.wait(10)
    others = [hand_in(combiner, "pbx-b", [1], results), hand_in(combiner, "pbx-c", [1], results)]
    wait_until(lambda: len(combiner._waiting) == 2, message="two batches waiting for the turn")
    gate.opened.set()
    for thread in (first, *others):
        thread.join(10)
    assert sorted(results) == ["pbx-a", "pbx-b", "pbx-c"]
    assert all(isinstance(error, RuntimeError) for error in results.values())
    # the combiner is free again: the next batch is written
    gate.error = None
    assert combiner.apply("pbx-a", [1]).user_ids == {1}


# -- apply_together on the database: two PBXes, the same extension on both ----------------


def event(**headers) -> Frame:
    return Frame([(key, str(value)) for key, value in headers.items()])


def pause_events(device_state: str) -> list[Frame]:
    return [
        event(Event="DeviceStateChange", Device="PJSIP/201", State=device_state),
        event(
            Event="QueueMemberPause",
            Queue="q-ventas",
            Interface="PJSIP/201",
            MemberName="Agent",
            Paused="1",
            PausedReason="Descanso",
        ),
    ]


@pytest.fixture
def two_states(db, make_company, make_user, make_queue):
    users, states = {}, {}
    for name in ("pbx-a", "pbx-b"):
        pbx = Pbx.objects.create(name=name, host="127.0.0.1", port=5038, username="swan")
        company = make_company(slug=f"c-{name}", name=f"Company {name}", pbx=pbx)
        users[name] = make_user(company, "201", f"Agent of {name}", terminals=["PJSIP/201"])
        make_queue(company, "q-ventas", members=[users[name]])
        states[name] = LiveState(pbx=name)
    return states, users


def version() -> int:
    row = LiveVersion.objects.filter(pk=1).first()
    return row.version if row else 0


def test_two_pbxes_batches_are_one_change_and_each_its_own_rows(two_states):
    states, users = two_states
    before = version()
    changes = apply_together(
        [
            (states["pbx-a"], pbx_events(pause_events("INUSE"))),
            (states["pbx-b"], pbx_events(pause_events("NOT_INUSE"))),
        ]
    )
    assert version() == before + 1  # one transaction, numbered once
    by_pbx = dict(DeviceState.objects.filter(interface="PJSIP/201").values_list("pbx", "state"))
    assert by_pbx == {"pbx-a": "INUSE", "pbx-b": "NOT_INUSE"}
    for name, found in zip(("pbx-a", "pbx-b"), changes, strict=True):
        user = users[name]
        assert found.user_ids == {user.pk}
        assert set(found.rows) == {user.pk}  # its own users' rows only, read in that transaction
        assert [found.rows[user.pk]] == presence_rows_of({user.pk})  # the status as it is now
        assert UserPresence.objects.get(user=user).pause_reason == "Descanso"


def test_a_bad_event_of_one_pbx_skips_that_event_only(two_states, monkeypatch, caplog):
    monkeypatch.setattr(livestate, "BATCH_RETRY_DELAYS", (0,))
    states, users = two_states
    real = EventBatch.handlers[DeviceStateChanged]

    def fails_on_b(batch, event):
        if batch.state.pbx == "pbx-b":
            raise ValueError("a device state this listener cannot take")
        return real(batch, event)

    monkeypatch.setitem(EventBatch.handlers, DeviceStateChanged, fails_on_b)
    apply_together(
        [
            (states["pbx-a"], pbx_events(pause_events("INUSE"))),
            (states["pbx-b"], pbx_events(pause_events("INUSE"))),
        ]
    )
    assert list(DeviceState.objects.values_list("pbx", flat=True)) == ["pbx-a"]
    for name in ("pbx-a", "pbx-b"):  # the pauses of both PBXes applied
        assert UserPresence.objects.get(user=users[name]).pause_reason == "Descanso"
    assert caplog.text.count("skipped an event") == 1


def test_a_write_that_waits_for_the_database_is_retried_with_every_pbx_in_it(
    two_states, monkeypatch
):
    from django.db import OperationalError

    monkeypatch.setattr(livestate, "BATCH_RETRY_DELAYS", (0, 0))
    states, _users = two_states
    real = EventBatch.replay
    calls = {"n": 0}

    def locked_once(self, events):
        calls["n"] += 1
        if calls["n"] == 2:  # the second PBX's part of the first try
            raise OperationalError("database is locked")
        return real(self, events)

    monkeypatch.setattr(EventBatch, "replay", locked_once)
    before = version()
    apply_together(
        [
            (states["pbx-a"], pbx_events(pause_events("INUSE"))),
            (states["pbx-b"], pbx_events(pause_events("INUSE"))),
        ]
    )
    assert calls["n"] == 4  # both again, in a new transaction
    assert version() == before + 1  # the rolled-back try numbered nothing
    assert DeviceState.objects.filter(interface="PJSIP/201").count() == 2


# -- many PBXes' batches written together leave the tables as each PBX's written alone ------

SECONDS = 240
BUSY = Behaviour(call_rate=40.0, pauses_per_agent_hour=12.0, talk_seconds=(5.0, 60.0))
TABLE_FIELDS = {
    DeviceState: ["pbx", "interface", "state"],
    QueueMemberState: ["pbx", "queue_name", "interface", "member_name", "state_interface",
                       "paused", "paused_reason", "in_call", "status", "calls_taken", "user_id"],
    QueueCallerState: ["pbx", "queue_name", "unique_id", "channel", "caller_id_num", "position"],
    LiveChannel: ["pbx", "unique_id", "linked_id", "channel", "interface", "state",
                  "connected_line_num"],
    UserPresence: ["user_id", "paused", "pause_reason", "dnd", "dnd_reason"],
}  # fmt: skip


@pytest.fixture
def two_centres(db, make_company, make_user, make_queue):
    """pbx-a and pbx-b: the same extensions 200-205 and queues on both, each its own calls."""
    events = {}
    for seed, name in enumerate(("pbx-a", "pbx-b"), start=3):
        pbx = Pbx.objects.create(name=name, host="127.0.0.1", port=5038, username="swan")
        company = make_company(slug=f"c-{name}", name=f"Company {name}", pbx=pbx)
        agents = [
            make_user(company, str(200 + n), terminals=[f"PJSIP/{200 + n}"]) for n in range(6)
        ]
        make_queue(company, "ventas", members=agents[:4])
        make_queue(company, "soporte", members=agents[2:])
        centre = CallCentre.from_directory(seed=seed, behaviour=BUSY, pbx=name)
        frames = []
        for second in range(SECONDS):
            centre.step(1.0)
            if second % 37 == 0:
                centre.set_custom_state(
                    f"Custom:DND20{second % 6}", "BUSY" if second % 2 else "NOT_INUSE"
                )
            frames.extend(centre.drain_events())
        events[name] = [parse_event(Frame(list(message.headers))) for message in frames]
    return events


def _tables() -> dict[str, list[tuple]]:
    return {
        model.__name__: sorted(model.objects.values_list(*fields).order_by())
        for model, fields in TABLE_FIELDS.items()
    }


def _chunks(events: list, size: int) -> list[list]:
    return [events[start : start + size] for start in range(0, len(events), size)]


def test_two_pbxes_written_together_leave_the_tables_as_each_written_alone(
    two_centres, monkeypatch
):
    assert min(len(events) for events in two_centres.values()) > 200
    states = {name: LiveState(pbx=name) for name in two_centres}
    for name, events in two_centres.items():
        for chunk in _chunks(events, 9):
            states[name].apply_events(chunk)
    alone = _tables()
    assert {row[0] for row in alone["QueueMemberState"]} == {"pbx-a", "pbx-b"}
    assert any(row[1] for row in alone["UserPresence"])  # some pause was applied
    for model in TABLE_FIELDS:
        model.objects.all().delete()
    states = {name: LiveState(pbx=name) for name in two_centres}

    def apart(self, events):
        raise AssertionError("the batches were applied apart, not together")

    monkeypatch.setattr(LiveState, "apply_events", apart)  # what apply_together falls back to
    a, b = (_chunks(two_centres[name], 9) for name in ("pbx-a", "pbx-b"))
    for index in range(max(len(a), len(b))):
        batches = [
            (states[name], chunks[index])
            for name, chunks in (("pbx-a", a), ("pbx-b", b))
            if index < len(chunks)
        ]
        apply_together(batches)
    assert _tables() == alone


def test_two_batches_of_one_pbx_are_applied_one_after_the_other(two_states):
    states, users = two_states
    state = states["pbx-a"]
    first, second = apply_together(
        [(state, pbx_events(pause_events("INUSE"))), (state, pbx_events(pause_events("BUSY")))]
    )
    assert DeviceState.objects.get(pbx="pbx-a", interface="PJSIP/201").state == "BUSY"
    assert first.user_ids == second.user_ids == {users["pbx-a"].pk}


def test_a_change_of_many_users_keeps_the_status_of_the_first_rows_at_most():
    from pbx.live.presence import PresenceRow
    from pbx.live.version import ROWS_AT_MOST, Changed

    rows = {
        user: PresenceRow(user_id=user, company_id=1, extension=str(user), name="", mobile="",
                          status="available", description="", reason="", since=None)
        for user in range(1, ROWS_AT_MOST + 51)
    }  # fmt: skip
    loaded = Changed.loads(Changed(users=set(rows), rows=rows).dumps())
    assert loaded.users == set(rows)  # every user named: a read cache drops the others' rows
    assert sorted(loaded.rows) == list(range(1, ROWS_AT_MOST + 1))
    assert loaded.rows[1] == rows[1]


def test_the_dnd_lamps_of_every_pbx_in_a_write_cost_the_statements_of_one(
    db, make_company, make_user
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    states, users = {}, {}
    for name in ("pbx-a", "pbx-b", "pbx-c", "pbx-d"):
        pbx = Pbx.objects.create(name=name, host="127.0.0.1", port=5038, username="swan")
        company = make_company(slug=f"c-{name}", name=f"Company {name}", pbx=pbx)
        users[name] = make_user(company, "201", f"Agent of {name}", terminals=["PJSIP/201"])
        states[name] = LiveState(pbx=name)
    lamp = {"pbx-a": "INUSE", "pbx-b": "NOT_INUSE", "pbx-c": "INUSE", "pbx-d": "INUSE"}
    now = timezone.now()
    UserPresence.objects.create(
        user=users["pbx-b"], dnd=True, dnd_reason="Reunión", changed_at=now, confirmed_at=now
    )

    def dnd_writes(batches) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            apply_together(batches)
        presence = UserPresence._meta.db_table
        return [
            q["sql"]
            for q in captured.captured_queries
            if presence in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")
        ]

    def lamp_changed(name: str) -> list:
        return pbx_events(
            [event(Event="DeviceStateChange", Device="Custom:DND201", State=lamp[name])]
        )

    writes = dnd_writes([(states[name], lamp_changed(name)) for name in lamp])
    # One insert of the missing rows, one update of the lamps on, one of those off.
    assert len(writes) == 3
    found = {
        name: UserPresence.objects.values_list("dnd", "dnd_reason").get(user=users[name])
        for name in lamp
    }
    assert found == {
        "pbx-a": (True, ""),
        "pbx-b": (False, ""),  # switched off: its reason goes
        "pbx-c": (True, ""),
        "pbx-d": (True, ""),
    }


def test_an_application_that_answers_for_too_few_batches_raises_and_frees_the_turn():
    answers = {"bad": True}

    def apply(batches):
        if answers.pop("bad", False):
            return []  # no result for the batch handed in
        return [LiveChanges() for _batch in batches]

    combiner = BatchCombiner(apply=apply)
    with pytest.raises(RuntimeError, match="0 results for 1 batches"):
        combiner.apply(object(), [1])
    assert combiner.apply(object(), [2]) == LiveChanges()  # the next write is not stuck


@pytest.mark.django_db
def test_a_version_row_created_by_another_writer_meanwhile_is_bumped_not_an_error(monkeypatch):
    """The first writers of a new database race to create the version row: the one that finds it
    created meanwhile bumps it, within the listener's pipelined write too (a caught key error
    there would abort the pipeline, and the whole write would be retried)."""
    from django.db import transaction

    from pbx.live import version
    from pbx.plain_sql import pipelined

    LiveVersion.objects.all().delete()
    LiveVersion.objects.create(pk=1, version=5, reset=1)  # another writer's, just now
    real, looked = version._increment, []

    def increment(*, everything):
        if not looked:  # this writer's first look came before the row was there
            looked.append(True)
            return None
        return real(everything=everything)

    monkeypatch.setattr(version, "_increment", increment)
    with transaction.atomic(), pipelined():
        assert version.live_changed(users=[1]) == 6
    assert looked == [True]
    assert LiveVersion.objects.get().version == 6
