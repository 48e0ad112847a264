"""The one-process demo (`make run`) under status changes while its calls run (issue 12, item 1).

`manage.py run_demo` runs the simulated PBX at a high call rate, the listener, the history
ingest and daphne in one process on the test database, with the embedded default's in-memory
channel layer. Eight clients, one per demo user, change statuses and register and unregister
their desk phones over real HTTP for DEMO_LOAD_SECONDS. Then: no 5xx, every answer the
envelope, no event skipped or write lost, no "database is locked" surfacing, and every user's
last answered status is what the simulated PBX has (pause flag and DND) and what SWAN stores.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.process.conftest import free_port, wait_until

pytestmark = pytest.mark.process

LOAD_SECONDS = float(os.environ.get("DEMO_LOAD_SECONDS", "60"))
CLIENTS = 8
CALL_RATE = "120"  # callers per minute over all queues, 20 times the demo's default
# Queue members of the demo with a desk phone (the simulator's member interface), by company.
USERS = ("201", "202", "203", "206", "300", "301", "302", "303")
PAUSE_REASONS = ("Descanso", "Comida", "Formación")
BUSY_REASONS = ("Reunión", "")
BAD_LOG_LINES = (
    "skipped an event",
    "write lost",
    "database is locked",
    "database unavailable",
    "Traceback",
)


@dataclass
class Client:
    """One user's requests and what its 200 answers say the PBX now has."""

    extension: str
    company: str
    mac: str
    paused: bool | None = None  # None: unknown until an answer says
    dnd: bool | None = None
    last_status: str | None = None  # the status field of the last 200 userStatus answer
    codes: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    slowest: tuple[int, str] = (0, "")


def _request(session, client: Client, method: str, url: str, label: str, **kwargs):
    started = time.monotonic()
    try:
        response = session.request(method, url, timeout=(2, 30), **kwargs)
    except Exception as exc:  # a refused or timed-out request is a failure of its own
        client.codes[f"{label}:{type(exc).__name__}"] += 1
        client.problems.append(f"{method} {url}: {exc!r}")
        return None
    took = time.monotonic() - started
    client.latencies.append(took)
    client.slowest = max(
        client.slowest,
        (round(took * 1000), f"{method} {url.split('/', 3)[3]} at {time.time() - took:.3f}"),
    )
    client.codes[f"{label}:{response.status_code}"] += 1
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or set(body) != {"error", "error-msg", "result"}:
        client.problems.append(f"{method} {url}: {response.status_code} not the envelope")
        return None
    if response.status_code >= 500:
        client.problems.append(f"{method} {url}: {response.status_code} {body['error-msg']}")
    return response.status_code, body


def _set_status(session, base: str, client: Client, rng: random.Random, status: str) -> None:
    reason = rng.choice(PAUSE_REASONS if status == "pause" else BUSY_REASONS)
    data = {"company": client.company, "status": status}
    if status != "available":
        data["reason"] = reason
    answer = _request(
        session,
        client,
        "POST",
        f"{base}/userStatus/{client.extension}",
        f"status-{status}",
        data=data,
    )
    if answer is None or answer[0] != 200:
        return
    if status == "available":
        client.paused, client.dnd = False, False
    elif status == "pause":
        client.paused = True
    else:
        client.dnd = True
    client.last_status = answer[1]["result"]["status"]


def _terminal(session, base: str, client: Client, method: str) -> bool:
    answer = _request(session, client, method, f"{base}/terminal-register/{client.mac}", method)
    done = answer is not None and answer[0] == 200 and answer[1]["result"]["success"] is True
    # Registering re-adds the device to its queues unpaused; unregistering leaves them all.
    client.paused = False if done else None
    return done


def _drive(base: str, key: str, client: Client, deadline: float, seed: int) -> None:
    import requests

    rng = random.Random(seed)
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {key}"
        while time.monotonic() < deadline:
            if rng.random() < 0.25:
                _terminal(session, base, client, rng.choice(("POST", "DELETE")))
            else:
                _set_status(session, base, client, rng, rng.choice(("pause", "available", "busy")))
        # End registered, with a status change last: the answer the PBX must agree with.
        if not _terminal(session, base, client, "POST"):
            client.problems.append("the final terminal register failed")
        _set_status(session, base, client, rng, rng.choice(("pause", "available", "busy")))
        if client.last_status is None or client.paused is None or client.dnd is None:
            client.problems.append("no status change answered 200 after the final register")


def _pbx_state(ami_port: int, users):
    """As the simulated PBX reports it over AMI: (paused, dnd) per extension, and the paused
    flag of each of these users' members by (queue, interface)."""
    from pbx.directory.dnd import dnd_key_of
    from pbx.gateway.ami import AmiGateway

    gateway = AmiGateway(
        "127.0.0.1", ami_port, settings.AMI_USERNAME, settings.AMI_SECRET, timeout=10
    )
    try:
        snapshot = gateway.snapshot()
    finally:
        gateway.close()
    states = {device.lower(): state for device, state in snapshot.device_states.items()}
    flags, members = {}, {}
    for user in users:
        interfaces = {t.interface.lower() for t in user.terminals.all()}
        mine = [m for m in snapshot.queue_members if m.interface.lower() in interfaces]
        members.update({(m.queue, m.interface): m.paused for m in mine})
        dnd = states.get(f"custom:dnd{dnd_key_of(user)}".lower(), "NOT_INUSE") == "BUSY"
        flags[user.extension] = (any(m.paused for m in mine), dnd)
    return flags, members


def _disagreement(users, log: str) -> str:
    """What SWAN's live tables and the demo's log say about the users SWAN and the PBX disagree
    on: enough to tell a lost event from a lost write."""
    from pbx.models import QueueMemberState

    lines = []
    listener_lines = [line for line in log.splitlines() if "swan.listener" in line]
    for user in users:
        macs = [t.mac for t in user.terminals.all()]
        rows = QueueMemberState.objects.filter(user=user).values_list(
            "queue_name", "interface", "paused", "changed_at"
        )
        lines.append(f"{user.extension}: SWAN's members {list(rows)}")
        mine = [
            line
            for line in log.splitlines()
            if f"extension={user.extension} " in line or any(mac in line for mac in macs)
        ]
        lines.extend(f"  {line}" for line in mine[-8:])
    lines.append("listener:")
    lines.extend(f"  {line}" for line in listener_lines[-10:])
    return "\n".join(lines)


def _consistent(status: str | None, paused: bool, dnd: bool) -> bool:
    """The answered status can come from these flags (pbx.live.presence.derive_status: a ringing,
    busy or unreachable device decides before DND and the pause flag)."""
    if status == "available":
        return not paused and not dnd
    if status == "pause":
        return paused and not dnd
    return status in ("busy", "ringing", "unavailable")


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_demo_under_status_load(processes, tmp_path):
    from pbx.models import CdrRecord, PbxUser, QueueLogLine, QueueMemberState, UserPresence

    out = io.StringIO()
    call_command("setup_demo", "--password", "demo-load", stdout=out)
    key = re.search(r"API key:\s+(\S+)", out.getvalue()).group(1)
    users = {
        u.extension: u
        for u in PbxUser.objects.select_related("company")
        .prefetch_related("terminals")
        .filter(extension__in=USERS)
    }
    clients = []
    for extension in USERS:
        user = users[extension]
        desk = next(t for t in user.terminals.all() if t.type == "desk")
        clients.append(Client(extension, user.company.slug, desk.mac))

    http_port, ami_port = free_port(), free_port()
    demo = processes.manage(
        "demo",
        "run_demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(http_port),
        "--call-rate",
        CALL_RATE,
        "--pauses-per-hour",
        "0",  # no spontaneous pauses: the clients alone decide who is paused
        "--seed",
        "12",
        "--history-dir",
        str(tmp_path / "asterisk"),
        AMI_HOST="127.0.0.1",
        AMI_PORT=str(ami_port),
        REDIS_URL="",  # the embedded default: the in-memory channel layer
    )
    demo.wait_for_port(http_port, timeout=60)
    demo.wait_for_log(r"listener resync pbx=default reason=", timeout=60)
    base = f"http://127.0.0.1:{http_port}"
    if settings.SWAN_URL_PREFIX:
        base = f"{base}/{settings.SWAN_URL_PREFIX}"

    started = time.monotonic()
    deadline = started + LOAD_SECONDS
    threads = [
        threading.Thread(target=_drive, args=(base, key, client, deadline, n), daemon=True)
        for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LOAD_SECONDS + 120)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), demo.tail()

    # The listener has the last changes once the PBX's events are in; then both must agree.
    expected = {c.extension: (c.paused, c.dnd) for c in clients}
    user_list = [users[e] for e in USERS]

    def stored() -> dict[str, tuple[bool, bool]]:
        rows = {p.user_id: p for p in UserPresence.objects.filter(user__in=user_list)}
        return {
            u.extension: (rows[u.pk].paused, rows[u.pk].dnd) if u.pk in rows else (False, False)
            for u in user_list
        }

    def stored_members() -> dict[tuple[str, str], bool]:
        rows = QueueMemberState.objects.filter(user__in=user_list)
        return {(m.queue_name, m.interface): m.paused for m in rows}

    # The clients are done, so the PBX holds still: SWAN has caught up once its members are the
    # PBX's (a moment's agreement of the stored status alone could be a POST ahead of the events).
    pbx, pbx_members = _pbx_state(ami_port, user_list)
    wait_until(
        lambda: stored_members() == pbx_members and stored() == expected, timeout=20, interval=0.5
    )
    swan = stored()
    log = demo.log()

    codes = Counter()
    latencies = []
    for client in clients:
        codes.update(client.codes)
        latencies.extend(client.latencies)
    by_code = Counter(label.rsplit(":", 1)[1] for label in codes.elements())
    summary = {
        "seconds": round(elapsed, 1),
        "requests": sum(codes.values()),
        "by_code": dict(sorted(by_code.items())),
        "by_request": dict(sorted(codes.items())),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "slowest": sorted((c.slowest for c in clients), reverse=True)[:3],
        "ingested": {"queue_log": QueueLogLine.objects.count(), "cdr": CdrRecord.objects.count()},
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "log_retries": {
            "write retried": log.count("write retried"),
            "batch retried": log.count("batch retried"),
        },
    }
    print("\ndemo under load:", json.dumps(summary, ensure_ascii=False))

    problems = [f"{c.extension}: {p}" for c in clients for p in c.problems]
    assert not problems, "\n".join(problems[:30])
    assert not [code for code in by_code if code.startswith("5")], summary
    assert by_code["200"] > CLIENTS * 10, summary
    assert summary["ingested"]["queue_log"] > 0, summary  # the ingest followed the simulator
    bad = {line: log.count(line) for line in BAD_LOG_LINES if line in log}
    assert not bad, f"{bad}\n{demo.tail(6000)}"
    assert pbx == expected, f"the PBX {pbx}\nthe API's last answers {expected}"
    assert stored_members() == pbx_members, "SWAN's members differ from the PBX's"
    assert swan == pbx, f"SWAN stores {swan}\nthe PBX has {pbx}\n" + _disagreement(
        [u for u in user_list if swan[u.extension] != pbx[u.extension]], log
    )
    for client in clients:
        assert _consistent(client.last_status, *expected[client.extension]), client
