"""`make serve`'s web tier as deployed: gunicorn answers HTTP, daphne the websockets, and the
whole tier stops within 10 s of SIGTERM, or goes down as a whole when one server dies."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.process.conftest import STOP_LIMIT, free_port, wait_until

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def _tier(processes, **env: str):
    http_port, ws_port = free_port(), free_port()
    process = processes.start(
        "webtier",
        [sys.executable, "-m", "swanproject.webtier"],
        SWAN_HTTP_PORT=str(http_port),
        SWAN_WS_PORT=str(ws_port),
        SWAN_HTTP_WORKERS="2",
        **env,
    )
    process.wait_for_port(http_port, timeout=30)
    process.wait_for_port(ws_port, timeout=30)
    return process, http_port, ws_port


def _get(url: str, key: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), json.loads(response.read())


def test_http_on_gunicorn_websockets_on_daphne_and_a_clean_stop(processes, call_centre):
    tier, http_port, ws_port = _tier(processes)
    status, headers, body = _get(f"http://127.0.0.1:{http_port}/blf-users/acme", call_centre.key)
    assert status == 200, body
    assert body["error"] is False
    assert {u["extension"] for u in body["result"]} == {"201", "202", "203", "204"}
    assert "gunicorn" in headers.get("Server", "").lower()

    url = f"ws://127.0.0.1:{ws_port}/ws/dashboard/acme/?key={call_centre.key}"
    with connect(url, open_timeout=10) as websocket:
        assert json.loads(websocket.recv(timeout=10))["type"] == "snapshot"

    took = tier.terminate()
    assert took < STOP_LIMIT, tier.tail()
    assert "web tier started server=http" in tier.log()


def test_the_tier_goes_down_when_one_server_dies(processes, call_centre):
    """systemd restarts the tier as a whole: a dead daphne must not leave HTTP half-served."""
    tier, _http_port, _ws_port = _tier(processes)
    daphne_pid = wait_until(lambda: _child_pid(tier.pid, "daphne"), 10)
    assert daphne_pid, tier.tail()
    os.kill(daphne_pid, signal.SIGKILL)
    assert wait_until(lambda: tier.popen.poll() is not None, STOP_LIMIT + 5), tier.tail()
    assert tier.popen.returncode != 0
    assert "web tier server exited server=ws:" in tier.log()


def test_a_bad_setting_is_named_and_nothing_starts(processes):
    tier = processes.start(
        "webtier", [sys.executable, "-m", "swanproject.webtier"], SWAN_HTTP_WORKERS="many"
    )
    assert wait_until(lambda: tier.popen.poll() is not None, 10), tier.tail()
    assert tier.popen.returncode == 2
    assert "SWAN_HTTP_WORKERS='many' is not a whole number" in tier.log()


def _child_pid(parent: int, name: str) -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[1]) == parent and name in command:
            return int(entry)
    return None
