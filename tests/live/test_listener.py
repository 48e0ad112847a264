"""The listener against the simulated Asterisk over real TCP: snapshot, events, drops, lease."""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime

import pytest

from pbx.gateway import PbxSnapshot, PbxUnavailable
from pbx.gateway.ami import AmiGateway
from pbx.live.listener import Listener, ListenerSettings
from pbx.live.queue_updates import queue_updates
from pbx.live.state_tables import LiveChanges
from pbx.models import DeviceState, ListenerLease, QueueCallerState, QueueMemberState, UserPresence
from pbx.simulator import SimulatedPbx
from pbx.simulator.callcentre import CallCentre
from pbx.simulator.config import QUIET
from terminals.models import Terminal
from tests.amireplay import AmiReplayServer

pytestmark = pytest.mark.django_db(transaction=True)

FAST = ListenerSettings(
    lease_seconds=1.0,
    ping_seconds=0.3,
    reconcile_seconds=3600,
    directory_check_seconds=0.2,
    backoff_first=0.1,
    backoff_max=0.3,
)


class RecordingPublisher:
    def __init__(self):
        self.user_ids: list[int] = []
        self.connections: list[bool] = []
        self.resyncs = 0

    def changes(self, changes: LiveChanges) -> None:
        self.user_ids.extend(changes.user_ids)

    def resynced(self, pbx, company_ids) -> None:
        self.resyncs += 1

    def connection(self, pbx: str, connected: bool) -> None:
        self.connections.append(connected)


def wait_until(condition, timeout=5.0, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.fixture
def directory(company, make_user, make_queue):
    ana = make_user(company, "200", "Ana García", terminals=["PJSIP/200"])
    bea = make_user(company, "201", "Bea Ruiz", terminals=["PJSIP/201"])
    make_queue(company, "q-soporte", members=[ana, bea])
    return ana, bea


def start_simulator(port: int = 0) -> SimulatedPbx:
    centre = CallCentre.from_directory(behaviour=QUIET, seed=3)
    simulator = SimulatedPbx(centre, port=port, username="swan", secret="pw", speed=0)
    simulator.start()
    return simulator


def gateway_factory(port_of):
    return lambda: AmiGateway("127.0.0.1", port_of(), "swan", "pw", timeout=0.5)


@pytest.fixture
def simulator(directory):
    simulator = start_simulator()
    yield simulator
    simulator.stop()


class Running:
    """A listener on its own thread, stopped at teardown."""

    def __init__(self, listener: Listener):
        self.listener = listener
        self.stop = threading.Event()
        self.thread = threading.Thread(target=listener.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "the listener did not stop"


@pytest.fixture
def run_listener():
    running: list[Running] = []

    def start(port_of, publisher=None, holder=None) -> Running:
        listener = Listener(
            gateway_factory=gateway_factory(port_of),
            publisher=publisher or RecordingPublisher(),
            settings=FAST,
            holder=holder,
        )
        running.append(Running(listener))
        return running[-1]

    yield start
    for item in running:
        item.close()
    # Their last queue updates, before the test's database goes (conftest waits again later).
    assert queue_updates.idle(5.0), "a queue update still running 5 s after the listeners"


def test_snapshot_fills_live_state(simulator, run_listener, directory):
    publisher = RecordingPublisher()
    running = run_listener(lambda: simulator.port, publisher)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    assert dict(
        DeviceState.objects.filter(interface__startswith="PJSIP/2").values_list(
            "interface", "state"
        )
    ) == {"PJSIP/200": "NOT_INUSE", "PJSIP/201": "NOT_INUSE"}
    members = set(QueueMemberState.objects.values_list("queue_name", "interface", "user_id"))
    assert members == {
        ("q-soporte", "PJSIP/200", directory[0].pk),
        ("q-soporte", "PJSIP/201", directory[1].pk),
    }
    assert publisher.connections[-1] is True
    lease = ListenerLease.objects.get()
    assert lease.connected is True
    assert lease.last_resync_at is not None


def test_a_pause_on_the_pbx_reaches_user_status_within_a_second(
    simulator, run_listener, directory, api
):
    running = run_listener(lambda: simulator.port)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    with simulator.lock:
        simulator.centre.queue_pause("PJSIP/201", True, reason="Descanso")
    simulator.step(0)
    started = time.monotonic()
    wait_until(
        lambda: UserPresence.objects.filter(user=directory[1], paused=True).exists(),
        timeout=1.0,
        message="the pause to arrive",
    )
    assert time.monotonic() - started < 1.0
    answer = json.loads(api.get("/userStatus/201").content)["result"]
    assert (answer["status"], answer["description"]) == ("pause", "Descanso")


def test_status_post_is_confirmed_by_the_pbx_own_events(
    simulator, run_listener, directory, api, settings
):
    settings.PBX_GATEWAY = "pbx.gateway.ami.AmiGateway"
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", simulator.port
    settings.AMI_USERNAME, settings.AMI_SECRET = "swan", "pw"
    running = run_listener(lambda: simulator.port)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    api.post("/userStatus/200", {"status": "pause", "reason": "Comida"})
    wait_until(
        lambda: QueueMemberState.objects.filter(
            interface="PJSIP/200", paused=True, paused_reason="Comida"
        ).exists(),
        message="QueueMemberPause from the PBX",
    )


def test_a_terminal_moved_in_swan_moves_the_agents_pause_without_a_resync(
    simulator, run_listener, directory, api, company, make_user
):
    """The PBX's member stays in its queue; SWAN's directory says now whose it is."""
    _ana, bea = directory
    publisher = RecordingPublisher()
    running = run_listener(lambda: simulator.port, publisher)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    with simulator.lock:
        simulator.centre.queue_pause("PJSIP/201", True, reason="Descanso")
    simulator.step(0)
    wait_until(
        lambda: UserPresence.objects.filter(user=bea, paused=True).exists(),
        message="the pause to arrive",
    )
    carla = make_user(company, "202", "Carla Gil", terminals=[])
    terminal = Terminal.objects.get(interface="PJSIP/201")
    terminal.user = carla
    terminal.save()  # as the admin does: the directory changed
    wait_until(
        lambda: UserPresence.objects.filter(user=carla, paused=True).exists(),
        message="the member and its pause to move to Carla",
    )
    assert QueueMemberState.objects.get(interface="PJSIP/201").user_id == carla.pk
    assert UserPresence.objects.get(user=bea).paused is False
    # published after the commit that the waits above saw
    wait_until(
        lambda: {bea.pk, carla.pk} <= set(publisher.user_ids),
        message="both users' statuses to be published",
    )
    assert running.listener.resyncs == 1  # the connect's: no snapshot was needed
    answer = json.loads(api.get("/userStatus/202").content)["result"]
    assert (answer["status"], answer["description"]) == ("pause", "Descanso")


def test_a_database_error_while_following_the_directory_is_tried_again_in_the_session(
    simulator, run_listener, directory, company, make_user, monkeypatch, caplog
):
    from django.db import OperationalError

    from pbx.live.state_tables import LiveState

    rematch, failures = LiveState.rematch, []

    def rematch_failing_once(state):
        if not failures:
            failures.append(1)
            raise OperationalError("database is locked")
        return rematch(state)

    monkeypatch.setattr(LiveState, "rematch", rematch_failing_once)
    caplog.set_level(logging.WARNING, logger="swan.listener")
    running = run_listener(lambda: simulator.port)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    carla = make_user(company, "202", "Carla Gil", terminals=[])
    terminal = Terminal.objects.get(interface="PJSIP/201")
    terminal.user = carla
    terminal.save()
    wait_until(
        lambda: QueueMemberState.objects.filter(interface="PJSIP/201", user=carla).exists(),
        message="the member to move to Carla at the next check",
    )
    assert failures == [1]
    assert "could not match its live rows to the directory" in caplog.text
    assert "lost the PBX" not in caplog.text
    assert "listener failed" not in caplog.text
    assert running.listener.resyncs == 1


def test_connection_dropped_reconnects_and_resyncs_without_stale_state(
    directory, run_listener, caplog
):
    caplog.set_level(logging.INFO, logger="swan.listener")
    simulator = start_simulator()
    port = simulator.port
    current = {"sim": simulator}
    publisher = RecordingPublisher()
    running = run_listener(lambda: port, publisher)
    try:
        wait_until(running.listener.active.is_set, message="the first sync")
        with simulator.lock:
            simulator.centre.queue_pause("PJSIP/200", True, reason="Comida")
        simulator.step(0)
        wait_until(lambda: UserPresence.objects.filter(paused=True).exists(), message="pause")

        simulator.stop()  # the PBX goes away mid-stream; it comes back with the pause gone
        wait_until(lambda: False in publisher.connections, message="the loss to be noticed")
        current["sim"] = start_simulator(port)
        wait_until(lambda: running.listener.resyncs >= 2, message="the resync")
        wait_until(running.listener.active.is_set, message="active again")
        assert not UserPresence.objects.filter(paused=True).exists()
        assert not QueueMemberState.objects.filter(paused=True).exists()
        assert publisher.connections[-1] is True
        assert "listener lost the PBX" in caplog.text
        assert "listener resync pbx=default reason=connect" in caplog.text
    finally:
        current["sim"].stop()


def test_refused_login_is_logged_and_retried(directory, run_listener, caplog):
    caplog.set_level(logging.INFO, logger="swan.listener")
    simulator = start_simulator()
    try:
        listener = Listener(
            gateway_factory=lambda: AmiGateway("127.0.0.1", simulator.port, "swan", "wrong", 0.5),
            publisher=RecordingPublisher(),
            settings=FAST,
        )
        running = Running(listener)
        wait_until(lambda: caplog.text.count("login refused") >= 2, message="two attempts")
        running.close()
        assert not listener.active.is_set()
    finally:
        simulator.stop()


def test_malformed_frames_are_skipped_and_the_listener_keeps_going(directory, run_listener):
    with AmiReplayServer() as server:
        for _ in range(5):  # an empty PBX, answered the way Asterisk 20 answers
            server.expect(
                "QueueStatus",
                [
                    [
                        "Response: Success",
                        "ActionID: 1",
                        "EventList: start",
                        "Message: Queue status will follow",
                    ],
                    [
                        "Event: QueueStatusComplete",
                        "ActionID: 1",
                        "EventList: Complete",
                        "ListItems: 0",
                    ],
                ],
            )
            server.expect(
                "CoreShowChannels",
                [
                    [
                        "Response: Success",
                        "ActionID: 1",
                        "EventList: start",
                        "Message: Channels will follow",
                    ],
                    [
                        "Event: CoreShowChannelsComplete",
                        "ActionID: 1",
                        "EventList: Complete",
                        "ListItems: 0",
                    ],
                ],
            )
        for _ in range(100):
            server.expect("Ping", [["Response: Success", "ActionID: 1", "Ping: Pong"]])
        running = run_listener(lambda: server.port)
        wait_until(lambda: server.actions("QueueStatus"), message="the snapshot")
        wait_until(running.listener.active.is_set, message="the listener to sync")
        server.push(
            [
                ["this line has no colon", "Event: DeviceStateChange", "Device: PJSIP/200"],
                [
                    "Event: QueueCallerJoin",
                    "Queue: q-soporte",
                    "Position: not-a-number",
                    "Uniqueid: 1.1",
                ],
                ["Event: DeviceStateChange", "Device: PJSIP/201", "State: INUSE"],
            ]
        )
        wait_until(
            lambda: DeviceState.objects.filter(interface="PJSIP/201", state="INUSE").exists(),
            message="the good event after the bad ones",
        )
        assert running.listener.active.is_set()


def test_only_one_listener_is_active_and_a_standby_takes_over(
    simulator, run_listener, directory, caplog
):
    caplog.set_level(logging.INFO, logger="swan.listener")
    first = run_listener(lambda: simulator.port, holder="first")
    wait_until(first.listener.active.is_set, message="the first listener")
    second = run_listener(lambda: simulator.port, holder="second")
    wait_until(lambda: "listener standby" in caplog.text, message="the standby")
    time.sleep(FAST.lease_seconds * 1.5)
    assert not second.listener.active.is_set()
    assert ListenerLease.objects.get().holder == "first"

    first.close()  # the active one stops; the standby takes over
    started = time.monotonic()
    wait_until(second.listener.active.is_set, timeout=5, message="the takeover")
    assert time.monotonic() - started < 5
    assert ListenerLease.objects.get().holder == "second"


def test_the_lease_counts_every_event_though_it_is_written_at_most_once_a_second(
    simulator, run_listener, directory, monkeypatch
):
    from pbx.live.lease import Lease

    writes: list[dict] = []
    real_record = Lease.record

    def record(self, **fields):
        writes.append(fields)
        real_record(self, **fields)

    monkeypatch.setattr(Lease, "record", record)
    # Every batch from the first, so that none applied before the count started is missed.
    applied: list[int] = []
    real_apply = Listener._apply

    def apply(self, state, batch):
        applied.append(len(batch))
        real_apply(self, state, batch)

    monkeypatch.setattr(Listener, "_apply", apply)
    lease = ListenerLease.objects.filter(name="default")
    counted_before = lease.values_list("events_processed", flat=True).first() or 0
    started = time.monotonic()
    running = run_listener(lambda: simulator.port)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    batches_before = len(applied)
    for n in range(20):  # twenty batches, one pause change each, over about a second
        with simulator.lock:
            simulator.centre.queue_pause("PJSIP/201", n % 2 == 0, reason="Descanso")
        simulator.step(0)
        time.sleep(0.05)
    wait_until(
        lambda: len(applied) - batches_before >= 20 or sum(applied[batches_before:]) >= 20,
        message="the batches",
    )
    wait_until(
        lambda: (
            ListenerLease.objects.get(name="default").events_processed
            == counted_before + sum(applied)
        ),
        timeout=10.0,  # written at most once a second; a loaded machine may take longer
        message="the lease to count every event applied",
    )
    elapsed = time.monotonic() - started
    counts = [fields for fields in writes if "events_processed" in fields]
    assert len(applied) > len(counts)
    assert len(counts) <= elapsed / FAST.record_seconds + 2
    assert ListenerLease.objects.get(name="default").last_event_at is not None


class QueueRecordingPublisher(RecordingPublisher):
    def __init__(self):
        super().__init__()
        self.queue_updates: list[tuple[float, set[int]]] = []

    def changes(self, changes: LiveChanges) -> None:
        super().changes(changes)
        if changes.queue_ids:
            self.queue_updates.append((time.monotonic(), set(changes.queue_ids)))


def test_queue_figures_follow_at_most_twice_a_second_and_none_is_left_out(
    simulator, run_listener, directory
):
    from pbx.models import Queue

    publisher = QueueRecordingPublisher()
    running = run_listener(lambda: simulator.port, publisher=publisher)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    # The snapshot's update of every queue first (listener._resync)
    wait_until(lambda: publisher.queue_updates, message="the queues after the snapshot")
    assert queue_updates.idle(5.0)
    publisher.queue_updates.clear()
    queue = Queue.objects.get(name="q-soporte")
    for _ in range(10):  # ten callers over about a second: ten batches with queue changes
        with simulator.lock:
            simulator.centre.caller_arrives("q-soporte", patience=600)
        simulator.step(0)
        time.sleep(0.1)
    wait_until(
        lambda: QueueCallerState.objects.filter(queue_name="q-soporte").count() == 10,
        message="the ten callers",
    )
    # Within one interval of the last change, what it changed is published: nothing waits.
    wait_until(
        lambda: not queue_updates.pending(publisher),
        timeout=FAST.queue_update_seconds + 1.0,
        message="the figures after the last caller",
    )
    times = [at for at, _ids in publisher.queue_updates]
    assert all(ids == {queue.pk} for _at, ids in publisher.queue_updates)
    assert len(times) < 10  # coalesced
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= FAST.queue_update_seconds * 0.9 for gap in gaps)


class OrderRecordingPublisher(RecordingPublisher):
    """What reached it, in order: ("snapshot", pbx) and ("queues", ids, thread name)."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []
        self._lock = threading.Lock()

    def changes(self, changes: LiveChanges) -> None:
        super().changes(changes)
        if changes.queue_ids:
            with self._lock:
                name = threading.current_thread().name
                self.calls.append(("queues", set(changes.queue_ids), name))

    def resynced(self, pbx, company_ids) -> None:
        super().resynced(pbx, company_ids)
        with self._lock:
            self.calls.append(("snapshot", pbx))


def test_after_a_snapshot_every_queue_goes_again_with_the_queue_updates(
    simulator, run_listener, directory, company, make_queue
):
    """A queue update read before the snapshot may still be on its way when the snapshot is
    published: its queues go again after it, from the queue updates' thread, never from the
    listener's (where they could overtake that update)."""
    from pbx.models import Queue

    make_queue(company, "q-ventas", members=[])
    publisher = OrderRecordingPublisher()
    running = run_listener(lambda: simulator.port, publisher=publisher)
    wait_until(running.listener.active.is_set, message="the listener to sync")
    wait_until(lambda: publisher.calls and publisher.calls[-1][0] == "queues", message="queues")
    assert queue_updates.idle(5.0)
    snapshot_at = publisher.calls.index(("snapshot", "default"))
    after = [call for call in publisher.calls[snapshot_at + 1 :] if call[0] == "queues"]
    assert set().union(*(ids for _kind, ids, _thread in after)) == set(
        Queue.objects.values_list("pk", flat=True)
    )
    assert {thread for *_call, thread in (c for c in publisher.calls if c[0] == "queues")} == {
        "queue-updates"
    }


class _DropsAfterTwoSessions:
    """Sessions 1 and 2 connect and sync, then the ping finds the PBX gone; 3 and 4 cannot
    connect; the 5th stops the listener."""

    sessions = 0
    stop: threading.Event

    def live_events(self, handler, on_disconnect=None):
        type(self).sessions += 1
        if type(self).sessions >= 5:
            type(self).stop.set()
        if type(self).sessions >= 3:
            raise PbxUnavailable("connection refused")

    def snapshot(self):
        return PbxSnapshot(
            taken_at=datetime.now(UTC),
            device_states={"PJSIP/201": "NOT_INUSE"},
            queue_members=[],
            queue_callers=[],
            channels=[],
            contacts=[],
        )

    def ping(self):
        raise PbxUnavailable("Ping: no answer")

    def close(self):
        pass


@pytest.mark.django_db(transaction=True)
def test_a_drop_after_a_session_that_synced_is_retried_after_the_first_backoff(caplog):
    """Backoff doubles while connecting fails, and starts again from its first step after a
    session that worked: a PBX restart late in the listener's life is not 30 s of stale state."""
    stop = threading.Event()
    _DropsAfterTwoSessions.sessions, _DropsAfterTwoSessions.stop = 0, stop
    settings = ListenerSettings(
        lease_seconds=5, ping_seconds=0.0, reconcile_seconds=3600, backoff_first=0.2, backoff_max=3
    )
    listener = Listener(
        gateway_factory=_DropsAfterTwoSessions, publisher=RecordingPublisher(), settings=settings
    )
    caplog.set_level(logging.WARNING, logger="swan.listener")

    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    thread.join(30)

    assert not thread.is_alive()
    retries = [float(m) for m in re.findall(r"lost the PBX .*retry_in=([\d.]+)s", caplog.text)]
    assert retries == [0.2, 0.2, 0.4, 0.8, 1.6], caplog.text
