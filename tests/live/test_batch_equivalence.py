"""A batch written set-based (pbx/live/batch.py) leaves the live tables as its events one by one.

The events are the simulator's: six minutes of a busy call centre (callers queueing and leaving,
agents ringing, talking and pausing), members added and removed, DND lamps switched, all
through the gateway's parsing as the listener gets them. Applied one event per batch, in
batches of 7 and 60, and all at once, every live table must end the same, row for row.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from pbx.gateway.events import MemberChanged, parse_event
from pbx.gateway.frames import Frame
from pbx.live.state_tables import LiveState
from pbx.models import DeviceState, LiveChannel, QueueCallerState, QueueMemberState, UserPresence
from pbx.simulator import Behaviour, CallCentre
from pbx.simulator.callcentre import MemberNotDynamic, MemberNotFound

pytestmark = pytest.mark.django_db

SECONDS = 360
BUSY = Behaviour(call_rate=40.0, pauses_per_agent_hour=6.0, talk_seconds=(5.0, 60.0))
TABLES = {
    DeviceState: ["interface", "state"],
    QueueMemberState: [
        "queue_name",
        "interface",
        "member_name",
        "state_interface",
        "paused",
        "paused_reason",
        "in_call",
        "status",
        "calls_taken",
        "user_id",
        "queue_id",
    ],
    QueueCallerState: ["queue_name", "unique_id", "channel", "caller_id_num", "position"],
    LiveChannel: [
        "unique_id",
        "linked_id",
        "channel",
        "interface",
        "state",
        "caller_id_num",
        "connected_line_num",
        "exten",
        "context",
    ],
    UserPresence: ["user_id", "paused", "pause_reason", "dnd", "dnd_reason"],
}


@pytest.fixture
def centre_run(company, make_user, make_queue):
    """The events of the run, and the callers the simulator has waiting at its end as
    (queue, unique id, position)."""
    agents = [make_user(company, str(200 + n), terminals=[f"PJSIP/{200 + n}"]) for n in range(8)]
    make_queue(company, "ventas", members=agents[:5])
    make_queue(company, "soporte", members=agents[3:])
    centre = CallCentre.from_directory(seed=7, behaviour=BUSY)
    chance = random.Random(7)
    frames = []
    for second in range(SECONDS):
        centre.step(1.0)
        if second % 97 == 0:  # DND lamps, on and off
            extension = 200 + chance.randrange(8)
            centre.set_custom_state(f"Custom:DND{extension}", chance.choice(["BUSY", "NOT_INUSE"]))
        if second % 61 == 0:  # pauses in one queue or all, and back
            interface = f"PJSIP/{200 + chance.randrange(8)}"
            queue = chance.choice([None, "ventas", "soporte"])
            with contextlib.suppress(MemberNotFound):
                centre.queue_pause(interface, chance.random() < 0.6, queue=queue, reason="Descanso")
        if second % 53 == 0:  # a member added, later removed
            interface = f"PJSIP/{200 + chance.randrange(8)}"
            queue = chance.choice(["ventas", "soporte"])
            if interface in centre.queues[queue].members:
                with contextlib.suppress(MemberNotDynamic):
                    centre.queue_remove(queue, interface)
            else:
                centre.queue_add(queue, interface, member_name="temp")
        frames.extend(centre.drain_events())
    member = next(iter(centre.queues["ventas"].members))
    centre.queue_pause(member, True, reason="Comida")  # left paused at the end
    frames.extend(centre.drain_events())
    waiting = sorted(
        (queue.name, call.channel.uniqueid, queue.position(call))
        for queue in centre.queues.values()
        for call in queue.callers
    )
    return [parse_event(Frame(list(message.headers))) for message in frames], waiting


@pytest.fixture
def centre_events(centre_run):
    return centre_run[0]


def _tables() -> dict[str, list[tuple]]:
    return {
        model.__name__: sorted(model.objects.values_list(*fields).order_by())
        for model, fields in TABLES.items()
    }


def _empty_tables() -> None:
    for model in TABLES:
        model.objects.all().delete()


def _applied(events: list, size: int) -> tuple[dict, set[int]]:
    _empty_tables()
    state = LiveState()
    users: set[int] = set()
    for start in range(0, len(events), size):
        users |= state.apply_events(events[start : start + size]).user_ids
    return _tables(), users


def test_every_batch_size_leaves_the_tables_as_one_event_at_a_time(centre_events):
    kinds = {type(event).__name__ for event in centre_events}
    assert {"ChannelCreated", "ChannelHungUp", "CallerJoined", "CallerLeft"} <= kinds
    assert {"MemberChanged", "MemberRemoved", "DeviceStateChanged"} <= kinds
    one_by_one, users = _applied(centre_events, 1)
    assert one_by_one["QueueCallerState"] or one_by_one["LiveChannel"] or one_by_one["DeviceState"]
    pauses = [e for e in centre_events if isinstance(e, MemberChanged) and e.paused]
    assert {e.paused_reason for e in pauses} >= {"Comida", "Descanso"}
    assert any(row[1:3] == (True, "Comida") for row in one_by_one["UserPresence"])
    for size in (7, 60, len(centre_events)):
        tables, batch_users = _applied(centre_events, size)
        for name in TABLES_BY_NAME:
            assert tables[name] == one_by_one[name], f"{name}, batches of {size}"
        # Whom to republish: every user whose row changed is named (a device that went and
        # came back within one batch changed no one, so the set may be smaller, never wrong).
        assert batch_users <= users
        assert batch_users


TABLES_BY_NAME = [model.__name__ for model in TABLES]


def test_the_callers_left_waiting_are_numbered_as_the_pbx_numbers_them(centre_run):
    events, waiting = centre_run
    # Callers left ahead of others (answered or hung up) during the run: positions moved up.
    assert any(position > 1 for _queue, _uid, position in waiting), waiting
    for size in (1, 60):
        _applied(events, size)
        stored = sorted(QueueCallerState.objects.values_list("queue_name", "unique_id", "position"))
        assert stored == waiting, f"batches of {size}"
