"""Every SWAN process exits within 10 s of SIGTERM, idle and under load."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from pbx.gateway.ami import AmiGateway
from pbx.models import ListenerLease
from pbx.models.history import IngestCursor, QueueLogLine
from tests.process.conftest import STOP_LIMIT, Load, wait_until

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def _dashboard(host: str, key: str):
    return connect(f"ws://{host}/ws/dashboard/acme/?key={key}", open_timeout=10)


def test_every_process_stops_idle(processes, call_centre, tmp_path):
    """Started side by side, then stopped one by one, each left idle."""
    path = tmp_path / "queue_log"
    total = _queue_log(path, 10)
    simulator, ami_port = processes.simulator("simulator", "--no-calls", wait=False)
    server, _host = processes.daphne(wait=False)
    follower = processes.manage(
        "ingest", "ingest_queue_log", str(path), "--follow", "--poll", "0.2"
    )
    simulator.wait_for_port()
    listener = processes.listener(ami_port)
    server.wait_for_port()
    assert wait_until(lambda: (c := _cursor(path)) and c.line_number == total, 20), follower.tail()
    listener.wait_for_log(r"listener resync pbx=default reason=connect")

    took = {
        process.name: process.terminate() for process in (server, listener, follower, simulator)
    }
    print("idle stop: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in took.items()))
    assert all(seconds < STOP_LIMIT for seconds in took.values()), took
    assert follower.popen.returncode == 0
    assert "listener stopped" in listener.log()
    lease = ListenerLease.objects.get(name="default")
    assert (lease.holder, lease.connected) == ("", False)  # released on the way out


def test_daphne_stops_under_load(processes, call_centre):
    server, host = processes.daphne()
    with _dashboard(host, call_centre.key) as websocket:
        assert json.loads(websocket.recv(timeout=10))["type"] == "snapshot"
        with Load([f"http://{host}/blf-users/acme"], {"X-Api-Key": call_centre.key}) as load:
            assert wait_until(lambda: load.ok >= 300, 30), (
                f"no load: {load.ok} ok, {load.errors} errors\n{server.tail()}"
            )
            served = load.ok
            took = server.terminate()
    print(f"daphne stop under load: {took:.2f}s after {served} requests")
    assert took < STOP_LIMIT


# -- listener and simulator ------------------------------------------------------------------


def _events_processed() -> int:
    lease = ListenerLease.objects.filter(name="default").first()
    return lease.events_processed if lease else 0


def test_listener_and_simulator_stop_under_load(processes, call_centre):
    # A busy call centre: a hundred calls a wall-clock second.
    simulator, ami_port = processes.simulator(
        "simulator", "--call-rate", "600", "--speed", "10", "--seed", "7"
    )
    listener = processes.listener(ami_port)
    listener.wait_for_log(r"listener resync pbx=default reason=connect")
    first = wait_until(_events_processed, 20)
    assert first, f"no events applied\n{listener.tail()}\n{simulator.tail()}"
    assert wait_until(lambda: _events_processed() > first + 200, 20), listener.tail()
    listener_took = listener.terminate()

    # The simulator, still busy, with a client reading its events.
    received = []
    lost = threading.Event()
    gateway = AmiGateway("127.0.0.1", ami_port, "swan", "swan-simulator", timeout=3)
    try:
        gateway.events(received.append, on_disconnect=lost.set)
        assert wait_until(lambda: len(received) > 50, 10), simulator.tail()
        simulator_took = simulator.terminate()
        assert lost.wait(5), "the AMI client did not see the simulator go"
    finally:
        gateway.close()
    print(
        f"stop under load: listener {listener_took:.2f}s after {_events_processed()} events, "
        f"simulator {simulator_took:.2f}s after {len(received)} events to a client"
    )
    assert listener_took < STOP_LIMIT
    assert simulator_took < STOP_LIMIT


# -- the ingest follower ---------------------------------------------------------------------


def _queue_log(path: Path, calls: int, first_call: int = 0) -> int:
    """Writes `calls` answered queue calls (3 lines each); returns the number of lines."""
    lines = []
    start = 1_760_000_000
    for n in range(first_call, first_call + calls):
        stamp = start + n * 7
        callid = f"{stamp}.{n}"
        agent = f"User 20{1 + n % 4}"
        lines.append(f"{stamp}|{callid}|q-sales|NONE|ENTERQUEUE||6000{n:05d}|1\n")
        lines.append(f"{stamp + 3}|{callid}|q-sales|{agent}|CONNECT|3|{callid}9|2\n")
        lines.append(f"{stamp + 60}|{callid}|q-sales|{agent}|COMPLETECALLER|3|57|1\n")
    with path.open("a") as handle:
        handle.writelines(lines)
    return len(lines)


def _offset_after_line(path: Path, line_number: int) -> int:
    with path.open("rb") as handle:
        return sum(len(next(handle)) for _ in range(line_number))


def _cursor(path: Path) -> IngestCursor | None:
    return IngestCursor.objects.filter(source=str(path.resolve())).first()


def test_ingest_follower_stops_mid_file_and_resumes(processes, call_centre, tmp_path):
    path = tmp_path / "queue_log"
    total = _queue_log(path, 12_000)  # 36,000 lines: four batches of the default 10,000
    follower = processes.manage("ingest", "ingest_queue_log", str(path), "--follow")
    # SIGTERM once the first batch is committed, while the rest of the file is being read.
    started = time.monotonic()
    assert wait_until(lambda: (c := _cursor(path)) and c.line_number > 0, 30), follower.tail()
    first_batch = time.monotonic() - started
    took = follower.terminate()
    cursor = _cursor(path)
    stored = QueueLogLine.objects.count()
    print(f"ingest follower stop mid-file: {took:.2f}s at line {cursor.line_number:,}/{total:,}")
    assert took < STOP_LIMIT
    assert follower.popen.returncode == 0, follower.tail()
    assert 0 < cursor.line_number < total, "the follower finished before it was stopped"
    # The cursor holds exactly what the last committed batch stored, to the byte.
    assert cursor.line_number % 10_000 == 0
    assert stored == cursor.line_number
    assert cursor.offset == _offset_after_line(path, cursor.line_number)

    started = time.monotonic()
    second = processes.manage("ingest-again", "ingest_queue_log", str(path))
    assert second.popen.wait(60) == 0, second.tail()
    print(f"first batch after {first_batch:.2f}s, second run {time.monotonic() - started:.2f}s")
    rest = total - cursor.line_number
    assert f"{rest} lines read, {rest} new, 0 already stored" in second.log(), second.tail()
    assert QueueLogLine.objects.count() == total
    # Every line once: each of the file's lines has its own (time, callid, event).
    assert QueueLogLine.objects.values("time", "callid", "event").distinct().count() == total
    assert _cursor(path).line_number == total
