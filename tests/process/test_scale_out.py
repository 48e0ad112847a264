"""Scale-out: two web servers behind one Redis, two listeners behind one lease."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from websockets.sync.client import connect

from pbx.models import ListenerLease, QueueMemberState
from tests.process.conftest import pause, wait_until

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

# Short enough for the suite; PROCESS_TEST_LEASE_SECONDS=20 measures the production default.
LEASE_SECONDS = os.environ.get("PROCESS_TEST_LEASE_SECONDS", "6")
TAKEOVER_LIMIT = 30.0


def _paused_message(websocket, extension: str, reason: str, timeout: float = 15.0) -> dict:
    """The first `user.status` of `extension` carrying the pause `reason`."""
    deadline = time.monotonic() + timeout
    seen = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(websocket.recv(timeout=remaining))
        except TimeoutError:
            break
        seen.append(message["type"])
        payload = message.get("payload") or {}
        if (
            message["type"] == "user.status"
            and payload.get("extension") == extension
            and payload.get("reason") == reason
        ):
            return message
    pytest.fail(f"no paused user.status for {extension} within {timeout}s; got {seen}")


def test_a_pbx_change_reaches_dashboards_on_two_servers(processes, call_centre):
    simulator, ami_port = processes.simulator("simulator", "--no-calls", wait=False)
    first, first_host = processes.daphne("daphne-1", wait=False)
    second, second_host = processes.daphne("daphne-2", wait=False)
    simulator.wait_for_port()
    listener = processes.listener(ami_port)
    first.wait_for_port()
    second.wait_for_port()
    listener.wait_for_log(r"listener resync pbx=default reason=connect")

    key = call_centre.key
    with (
        connect(f"ws://{first_host}/ws/dashboard/acme/?key={key}", open_timeout=10) as one,
        connect(f"ws://{second_host}/ws/dashboard/acme/?key={key}", open_timeout=10) as two,
    ):
        for websocket in (one, two):
            assert json.loads(websocket.recv(timeout=10))["type"] == "snapshot"
        sent = time.monotonic()
        pause(ami_port, "PJSIP/201", "Comida")
        via_one = _paused_message(one, "201", "Comida")
        via_two = _paused_message(two, "201", "Comida")
        took = time.monotonic() - sent
    print(f"pause reached both dashboards in {took:.2f}s")
    # One publish (numbered once), delivered through Redis to both servers' groups.
    assert via_one == via_two
    assert first.alive()
    assert second.alive()


def _holder_pid(lease: ListenerLease | None) -> int | None:
    match = re.match(r"^[^:]*:(\d+):", lease.holder if lease else "")
    return int(match.group(1)) if match else None


def _member_paused(interface: str, reason: str) -> bool:
    return QueueMemberState.objects.filter(
        interface=interface, paused=True, paused_reason=reason
    ).exists()


def test_one_listener_is_active_and_a_standby_takes_over(processes, call_centre):
    _simulator, ami_port = processes.simulator("simulator", "--no-calls")
    args = ("--lease-seconds", LEASE_SECONDS)
    listeners = [processes.listener(ami_port, *args, name=f"listener-{n}") for n in (1, 2)]

    def lease() -> ListenerLease | None:
        return ListenerLease.objects.filter(name="default").first()

    def active_pid() -> int | None:
        current = lease()
        return _holder_pid(current) if current and current.connected else None

    assert wait_until(active_pid, 20), "\n".join(p.tail() for p in listeners)
    active = next(p for p in listeners if p.pid == active_pid())
    standby = next(p for p in listeners if p is not active)
    active.wait_for_log(r"listener resync pbx=default reason=connect")
    standby.wait_for_log(r"listener standby")
    # Changes flow through the active one; the standby never connects.
    pause(ami_port, "PJSIP/201", "Comida")
    assert wait_until(lambda: _member_paused("PJSIP/201", "Comida"), 10), active.tail()
    assert "listener connected" not in standby.log()
    assert _holder_pid(lease()) == active.pid

    active.popen.kill()
    killed = time.monotonic()
    active.popen.wait(5)
    assert wait_until(lambda: active_pid() == standby.pid, TAKEOVER_LIMIT + 5, 0.05), standby.tail()
    standby.wait_for_log(r"listener resync pbx=default reason=connect", timeout=10)
    takeover = time.monotonic() - killed
    pause(ami_port, "PJSIP/202", "Descanso")
    assert wait_until(lambda: _member_paused("PJSIP/202", "Descanso"), 10), standby.tail()
    flowing = time.monotonic() - killed
    print(
        f"takeover (lease {LEASE_SECONDS}s): standby active {takeover:.2f}s after SIGKILL, "
        f"changes flowing again after {flowing:.2f}s"
    )
    assert takeover < TAKEOVER_LIMIT
    assert standby.log().count("listener standby") == 1
