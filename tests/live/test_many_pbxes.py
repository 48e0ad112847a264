"""One pbx_listen, two PBXes over real TCP (two simulated Asterisks): the same extension and
queue name on both, each PBX's events change its own company only, and one PBX going away
leaves the other live."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from django.core.management import CommandError, call_command

from dashboard.publisher import listener_for
from pbx.live.pool import ListenerPool
from pbx.live.queue_updates import queue_updates
from pbx.models import DeviceState, ListenerLease, Pbx, QueueMemberState, UserPresence
from pbx.simulator import SimulatedPbx
from pbx.simulator.callcentre import CallCentre
from pbx.simulator.config import QUIET
from tests.live.test_listener import FAST, RecordingPublisher, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class TwoPbxes:
    """pbx-a and pbx-b, each with company, extension 201 on PJSIP/201 and queue q-ventas."""

    def __init__(self, make_company, make_user, make_queue, monkeypatch):
        self.users = {}
        self.pbxes = {}
        for name in ("pbx-a", "pbx-b"):
            monkeypatch.setenv(f"SWAN_PBX_TEST_{name[-1].upper()}_SECRET", f"pw-{name}")
            pbx = Pbx.objects.create(
                name=name,
                host="127.0.0.1",
                port=1,
                username="swan",
                secret_env=f"SWAN_PBX_TEST_{name[-1].upper()}_SECRET",
            )
            company = make_company(slug=f"c-{name}", name=f"Company {name}", pbx=pbx)
            user = make_user(company, "201", f"Agent of {name}", terminals=["PJSIP/201"])
            make_queue(company, "q-ventas", members=[user])
            self.users[name] = user
            self.pbxes[name] = pbx
        self.simulators: dict[str, SimulatedPbx] = {}
        for name in self.pbxes:
            self.start(name)

    def start(self, name: str, port: int = 0) -> SimulatedPbx:
        centre = CallCentre.from_directory(behaviour=QUIET, seed=5, pbx=name)
        simulator = SimulatedPbx(centre, port=port, username="swan", secret=f"pw-{name}", speed=0)
        simulator.start()
        Pbx.objects.filter(name=name).update(port=simulator.port)
        self.simulators[name] = simulator
        return simulator

    def pause(self, name: str, paused: bool) -> None:
        simulator = self.simulators[name]
        with simulator.lock:
            simulator.centre.queue_pause("PJSIP/201", paused, reason="Descanso")
        simulator.step(0)

    def close(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()


@pytest.fixture
def two_pbxes(make_company, make_user, make_queue, monkeypatch):
    pbxes = TwoPbxes(make_company, make_user, make_queue, monkeypatch)
    yield pbxes
    pbxes.close()


@pytest.fixture
def pool():
    publisher = RecordingPublisher()
    pool = ListenerPool(
        make_listener=lambda pbx: listener_for(
            pbx, publisher=publisher, settings=replace(FAST, name=pbx)
        ),
        refresh_seconds=0.2,
    )
    stop = threading.Event()
    thread = threading.Thread(target=pool.run, args=(stop,), daemon=True)
    thread.start()
    yield pool
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the pool did not stop"
    assert queue_updates.idle(5.0), "a queue update still running 5 s after the listeners"


def _paused(user) -> bool:
    return UserPresence.objects.filter(user=user, paused=True).exists()


def _connected(name: str) -> bool:
    return ListenerLease.objects.filter(name=name, connected=True).exists()


def _synced(pool: ListenerPool, name: str) -> bool:
    running = pool.running.get(name)
    return running is not None and running.listener.active.is_set()


def test_each_pbx_has_its_own_live_rows_and_users(two_pbxes, pool):
    for name in ("pbx-a", "pbx-b"):
        wait_until(lambda name=name: _synced(pool, name), timeout=10, message=f"{name} synced")
    assert set(pool.running) == {"pbx-a", "pbx-b"}  # no company on the settings' PBX
    members = set(QueueMemberState.objects.values_list("pbx", "queue_name", "interface", "user"))
    assert members == {
        ("pbx-a", "q-ventas", "PJSIP/201", two_pbxes.users["pbx-a"].pk),
        ("pbx-b", "q-ventas", "PJSIP/201", two_pbxes.users["pbx-b"].pk),
    }
    devices = set(DeviceState.objects.filter(interface="PJSIP/201").values_list("pbx", flat=True))
    assert devices == {"pbx-a", "pbx-b"}


def test_a_pause_on_one_pbx_changes_its_company_only(two_pbxes, pool):
    for name in ("pbx-a", "pbx-b"):
        wait_until(lambda name=name: _synced(pool, name), timeout=10, message=f"{name} synced")
    a, b = two_pbxes.users["pbx-a"], two_pbxes.users["pbx-b"]
    two_pbxes.pause("pbx-a", True)
    wait_until(lambda: _paused(a), message="A's agent paused")
    assert not _paused(b)
    member_b = QueueMemberState.objects.get(pbx="pbx-b")
    assert member_b.paused is False
    two_pbxes.pause("pbx-b", True)
    wait_until(lambda: _paused(b), message="B's agent paused")
    two_pbxes.pause("pbx-a", False)
    wait_until(lambda: not _paused(a), message="A's agent unpaused")
    assert _paused(b)


def test_one_pbx_down_leaves_the_other_live_and_it_comes_back(two_pbxes, pool):
    for name in ("pbx-a", "pbx-b"):
        wait_until(lambda name=name: _synced(pool, name), timeout=10, message=f"{name} synced")
    port_b = two_pbxes.simulators["pbx-b"].port
    two_pbxes.simulators["pbx-b"].stop()
    wait_until(lambda: not _connected("pbx-b"), timeout=10, message="B's link down")
    assert _connected("pbx-a")
    a = two_pbxes.users["pbx-a"]
    two_pbxes.pause("pbx-a", True)  # A is still served while B backs off
    wait_until(lambda: _paused(a), message="A's pause applied with B down")
    two_pbxes.start("pbx-b", port=port_b)
    wait_until(lambda: _connected("pbx-b"), timeout=10, message="B reconnected")
    wait_until(lambda: _synced(pool, "pbx-b"), timeout=10, message="B resynced")
    assert _connected("pbx-a")


def test_a_pbx_without_its_secret_is_reported_and_retried(two_pbxes, pool, monkeypatch, caplog):
    """The variable that holds B's secret is missing: B's listener says so and backs off; A is
    served; once the variable is there, B connects."""
    for name in ("pbx-a", "pbx-b"):
        wait_until(lambda name=name: _synced(pool, name), timeout=10, message=f"{name} synced")
    monkeypatch.delenv("SWAN_PBX_TEST_B_SECRET")
    two_pbxes.simulators["pbx-b"].stop()
    wait_until(
        lambda: "environment variable SWAN_PBX_TEST_B_SECRET is missing" in caplog.text,
        timeout=10,
        message="the missing secret logged",
    )
    assert _connected("pbx-a")
    two_pbxes.start("pbx-b", port=0)
    monkeypatch.setenv("SWAN_PBX_TEST_B_SECRET", "pw-pbx-b")
    wait_until(lambda: _synced(pool, "pbx-b"), timeout=10, message="B connected")


def test_a_pbx_added_later_gets_a_listener_and_a_deleted_one_loses_it(
    two_pbxes, pool, make_company
):
    wait_until(lambda: set(pool.running) == {"pbx-a", "pbx-b"}, message="both served")
    make_company(slug="on-default", name="On the settings' PBX")  # now the default is served too
    wait_until(lambda: "default" in pool.running, message="the settings' PBX served")
    company_b = two_pbxes.users["pbx-b"].company
    company_b.delete()
    Pbx.objects.filter(name="pbx-b").delete()
    wait_until(lambda: "pbx-b" not in pool.running, message="pbx-b no longer served")


def test_pbx_listen_refuses_an_unknown_pbx(db):
    with pytest.raises(CommandError, match="No PBX named nowhere"):
        call_command("pbx_listen", "--pbx", "nowhere")


@pytest.mark.parametrize("wait", ["-0.1", "1.5"])
def test_pbx_listen_refuses_a_batch_wait_out_of_range(db, wait):
    with pytest.raises(CommandError, match="--batch-wait: 0 to 1 second"):
        call_command("pbx_listen", "--batch-wait", wait)


class _Dying:
    """A listener whose thread dies at once (its database gone at the wrong moment)."""

    def __init__(self, name: str, started: list[str]):
        self.pbx = name
        started.append(name)

    def run(self, stop: threading.Event) -> None:
        raise RuntimeError("boom")


def test_a_listener_thread_that_died_is_started_again(caplog):
    started: list[str] = []
    pool = ListenerPool(make_listener=lambda name: _Dying(name, started), pbx_names=["pbx-x"])
    pool.refresh()
    pool.running["pbx-x"].thread.join(5)
    pool.refresh()
    assert started == ["pbx-x", "pbx-x"]
    assert "listener thread failed pbx=pbx-x" in caplog.text
    assert "listener thread died pbx=pbx-x: starting it again" in caplog.text


def test_the_pool_survives_a_database_it_cannot_read(monkeypatch, caplog):
    from pbx.live import pool as pool_module

    reads = []

    def unreadable():
        reads.append(1)
        raise RuntimeError("database away")

    monkeypatch.setattr(pool_module, "served_pbx_keys", unreadable)
    stop = threading.Event()
    pool = ListenerPool(make_listener=lambda name: None, refresh_seconds=0.01)
    thread = threading.Thread(target=pool.run, args=(stop,), daemon=True)
    thread.start()
    wait_until(lambda: len(reads) >= 3, message="it tries again")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert "listener pool could not read the PBXes; retrying" in caplog.text
