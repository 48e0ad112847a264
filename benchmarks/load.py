"""HTTP load with wrk: userStatus, blf-users (500 users), queues-status, beside a bare view.

Seeds one company of 500 users with terminals and device states, 5 queue groups (10 queues) with
100,000 of today's entries and an API key on the `swan_bench` PostgreSQL database, with
production settings (DEBUG off, Redis cache for the throttle counters), then runs, side by side
on their own ports:
- the ceiling: `/bench/bare`, a bare Django view (benchmarks/bench_urls.py, loaded through
  benchmarks/bench_settings.py), under gunicorn with 2 sync workers;
- SWAN's endpoints and the bare view under the web tier of `make serve` (the same gunicorn
  command, swanproject/webtier.py, with --workers workers);
- with --daphne, the same under one daphne process (how SWAN was served before `make serve`).
Every target is measured between two runs of the ceiling, --rounds times; it prints requests/s,
p99 latency and each figure as a share of the mean of its two ceiling runs: the machines are
noisy and shared, so read the ratios. Traffic goes to 127.0.0.1 only; every server is always
stopped.

Run: .venv/bin/python benchmarks/load.py [--duration 10] [--rounds 1] [--connections 64]
         [--threads 2] [--workers N] [--daphne]
Needs wrk (`apt-get install -y wrk`), PostgreSQL (BENCH_SERVER_URL, BENCH_DATABASE) and Redis
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from _setup import ROOT, cpu_pressure, setup

sys.path.insert(0, str(ROOT))
from swanproject.webtier import WebTier

USERS = 500
EXTENSION_BASE = 1000
QUEUES = {
    "ventas": ["q-ventas-1", "q-ventas-2", "q-ventas-3"],
    "soporte": ["q-soporte-1", "q-soporte-2"],
    "postventa": ["q-postventa-1", "q-postventa-2", "q-postventa-3"],
    "citas": ["q-citas-1"],
    "urgencias": ["q-urgencias-1"],
}
ENTRIES_TODAY = 100_000  # spread over the queues
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
HOST = "127.0.0.1"
CEILING = "gunicorn-2 (ceiling)"


@dataclass
class Result:
    name: str
    requests_per_second: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(
            "wrk is not installed. Install it with `apt-get install -y wrk` (Debian/Ubuntu) "
            "or `brew install wrk` (macOS), then run this benchmark again."
        )
    return wrk


def seed() -> tuple[str, str]:
    """One company of USERS users, terminals, device states, queues with today's entries, a key.

    Returns (the API key, the company slug).
    """
    from django.db import connection

    from pbx.history import selectors as history
    from pbx.models import (
        ApiKey,
        Company,
        Department,
        DeviceState,
        PbxUser,
        Queue,
        QueueCallerState,
        QueueMember,
        QueueMemberState,
        UserPresence,
    )
    from pbx.models.history import QueueEntry
    from terminals.models import Terminal

    tables = [
        model._meta.db_table
        for model in (ApiKey, Company, DeviceState, QueueCallerState, QueueMemberState)
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    rng = random.Random(42)
    now = datetime.now(UTC)
    company = Company.objects.create(slug="bench", name="Bench Call Centre")
    departments = Department.objects.bulk_create(
        [Department(company=company, name=name) for name in ("Ventas", "Soporte", "Postventa")]
    )
    users = PbxUser.objects.bulk_create(
        [
            PbxUser(
                company=company,
                extension=str(EXTENSION_BASE + n),
                name=f"Agente {n:03d}",
                mobile=f"+346000{n:05d}",
                department=departments[n % len(departments)],
            )
            for n in range(USERS)
        ]
    )
    terminals = [
        Terminal(mac=f"00156500{n:04x}", user=user, interface=f"PJSIP/{user.extension}")
        for n, user in enumerate(users)
    ]
    terminals += [
        Terminal(
            mac=f"0a0b0c00{n:04x}",
            user=user,
            interface=f"PJSIP/{user.extension}w",
            type=Terminal.Type.WEBPHONE,
        )
        for n, user in enumerate(users[::5])
    ]
    Terminal.objects.bulk_create(terminals)
    states = ["NOT_INUSE"] * 6 + ["INUSE", "INUSE", "RINGING", "UNAVAILABLE"]
    DeviceState.objects.bulk_create(
        [
            DeviceState(
                interface=t.interface, state=rng.choice(states), changed_at=now, confirmed_at=now
            )
            for t in terminals
        ]
    )
    UserPresence.objects.bulk_create(
        [
            UserPresence(
                user=user,
                paused=n % 10 == 1,
                pause_reason="Descanso" if n % 10 == 1 else "",
                dnd=n % 25 == 2,
                dnd_reason="Reunión" if n % 25 == 2 else "",
                changed_at=now,
                confirmed_at=now,
            )
            for n, user in enumerate(users)
            if n % 10 == 1 or n % 25 == 2
        ]
    )
    names = [name for group in QUEUES.values() for name in group]
    queues = Queue.objects.bulk_create([Queue(company=company, name=name) for name in names])
    QueueMember.objects.bulk_create(
        [
            QueueMember(queue=q, user=users[(i * 40 + k) % USERS])
            for i, q in enumerate(queues)
            for k in range(40)
        ]
    )
    QueueMemberState.objects.bulk_create(
        [
            QueueMemberState(
                queue_name=q.name,
                queue=q,
                interface=f"PJSIP/{users[(i * 40 + k) % USERS].extension}",
                user=users[(i * 40 + k) % USERS],
                paused=k % 7 == 0,
                changed_at=now,
                confirmed_at=now,
            )
            for i, q in enumerate(queues)
            for k in range(30)
        ]
    )
    day_start, _ = history.day_bounds(company.time_zone, now)
    span = max(60, int((now - day_start).total_seconds()))
    outcomes = ["answered"] * 7 + ["abandoned", "timeout", "transferred"]
    rows = []
    for i, q in enumerate(queues):
        for n in range(ENTRIES_TODAY // len(queues)):
            outcome = rng.choice(outcomes)
            answered = outcome in ("answered", "transferred")
            rows.append(
                QueueEntry(
                    callid=f"{i}{n:05d}.1",
                    queue_name=q.name,
                    queue=q,
                    company=company,
                    entered_at=day_start + timedelta(seconds=rng.randrange(span)),
                    outcome=outcome,
                    wait_seconds=rng.randrange(90),
                    talk_seconds=rng.randrange(600) if answered else 0,
                    agent_user=users[(i * 40 + rng.randrange(40)) % USERS] if answered else None,
                )
            )
    QueueEntry.objects.bulk_create(rows, batch_size=5000)
    QueueCallerState.objects.bulk_create(
        [
            QueueCallerState(
                queue_name=names[n % len(names)],
                queue=queues[n % len(names)],
                unique_id=f"w{n}",
                entered_at=now - timedelta(seconds=10 * n),
                confirmed_at=now,
            )
            for n in range(12)
        ]
    )
    key = ApiKey(name="load-benchmark")
    raw = key.set_new_key()
    key.save()
    key.companies.set([company])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()
    return raw, company.slug


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_env(rate: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SWAN_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.bench_settings",
        DATABASE_URL=os.environ["DATABASE_URL"],  # set by _setup.setup(): the swan_bench database
        DEBUG="false",
        SECRET_KEY="load-benchmark-" + os.urandom(16).hex(),
        ALLOWED_HOSTS=HOST,
        SECURE_SSL_REDIRECT="false",
        SWAN_THROTTLE_RATE=rate,
        REDIS_URL=REDIS_URL,
        SERVE_STATIC="false",
        LOG_LEVEL="WARNING",
        PBX_GATEWAY="pbx.gateway.ami.AmiGateway",  # never called: every benchmarked path reads
    )
    return env


class Server:
    """A web server as a child process; always stopped, SIGKILL if it ignores SIGTERM."""

    def __init__(self, label: str, argv: list[str], env: dict[str, str], log: Path):
        self.label = label
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def wait_ready(self, url: str, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log_file.close()


def web_tier(port: int, workers: int) -> WebTier:
    return WebTier(
        host=HOST,
        http_port=port,
        http_workers=workers,
        http_timeout=30,
        ws_port=port + 1,
        ws_workers=1,
    )


def server_commands(
    env: dict[str, str], workers: int, *, daphne: bool
) -> dict[str, tuple[int, list[str], dict]]:
    """name → (port, argv, env): the ceiling's server and SWAN's, the web tier's own commands
    (swanproject/webtier.py), each on its own port so that all run side by side."""
    ceiling = web_tier(free_port(), 2)
    tier = web_tier(free_port(), workers)
    commands = {
        CEILING: (ceiling.http_port, ceiling.gunicorn_argv(), ceiling.http_env(env)),
        f"web tier ({workers} gunicorn workers)": (
            tier.http_port,
            tier.gunicorn_argv(),
            tier.http_env(env),
        ),
    }
    if daphne:
        port = free_port()
        commands["daphne"] = (port, tier.daphne_argv(port), env)
    return commands


def check(url: str, key: str, expect: str) -> None:
    """One request before the load: 200 and the expected shape, or the figures mean nothing."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    if expect == "bare":
        assert body == {"ok": True, "n": 42}, body
        return
    assert body["error"] is False, body
    result = body["result"]
    if expect == "users":
        assert len(result) == USERS, len(result)
    elif expect == "queues":
        assert set(result["queues"]) == set(QUEUES), result
        assert result["queues"]["ventas"]["status"]["completed"] > 0, result
    elif expect == "status":
        assert result["extension"] == str(EXTENSION_BASE), result


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def run_wrk(
    wrk: str, name: str, url: str, key: str, *, threads: int, connections: int, seconds: int
) -> Result:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "20s",
        "--latency",
        "-H",
        f"Authorization: Bearer {key}",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return Result(
        name,
        rps,
        p99,
        total,
        int(non_2xx.group(1)) if non_2xx else 0,
        errors.group(1) if errors else "",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (max 60)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target")
    parser.add_argument("--rounds", type=int, default=1, help="ceiling/target pairs per target")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--daphne", action="store_true", help="also measure SWAN under daphne")
    parser.add_argument("--rate", default="1000000/s", help="SWAN_THROTTLE_RATE for the server")
    args = parser.parse_args()
    duration = max(1, min(args.duration, 60))
    rounds = max(1, min(args.rounds, 10))
    wrk = require_wrk()

    setup()  # swan_bench database, migrated; DATABASE_URL now points to it
    key, slug = seed()
    queues_query = urlencode(
        [(f"queues[{group}][]", name) for group, names in QUEUES.items() for name in names]
    )
    endpoints = [
        (f"userStatus/{EXTENSION_BASE}", f"/userStatus/{EXTENSION_BASE}", "status"),
        (f"blf-users/{slug} ({USERS} users)", f"/blf-users/{slug}", "users"),
        (f"queues-status ({len(QUEUES)} groups)", f"/queues-status?{queues_query}", "queues"),
    ]
    bare = ("bare view", "/bench/bare", "bare")
    commands = server_commands(server_env(args.rate), args.workers, daphne=args.daphne)
    targets = [
        (name, target) for name in commands if name != CEILING for target in (bare, *endpoints)
    ]
    options = dict(threads=args.threads, connections=args.connections)

    started: dict[str, Server] = {}
    logs = {
        name: Path(tempfile.gettempdir()) / f"swan-load-{port}.log"
        for name, (port, *_) in commands.items()
    }
    # (round, server, target name, ceiling runs around it, the target's run)
    pairs: list[tuple[int, str, Result, Result, Result]] = []
    try:
        for name, (_port, argv, env) in commands.items():
            started[name] = Server(name, argv, env, logs[name])
        for name, (port, *_rest) in commands.items():
            started[name].wait_ready(f"http://{HOST}:{port}/bench/bare")
        url = {name: f"http://{HOST}:{port}" for name, (port, *_rest) in commands.items()}
        check(url[CEILING] + bare[1], key, bare[2])
        for name, (_label, path, expect) in targets:
            check(url[name] + path, key, expect)
        if args.warmup:  # every worker reads its caches and connects before it is measured
            run_wrk(wrk, "warm-up", url[CEILING] + bare[1], key, seconds=args.warmup, **options)
            for name, (label, path, _expect) in targets:
                run_wrk(wrk, label, url[name] + path, key, seconds=args.warmup, **options)
        # Each target between two runs of the ceiling: the machine is shared and drifts.
        for round_number in range(1, rounds + 1):
            before = run_wrk(
                wrk, "bare view", url[CEILING] + bare[1], key, seconds=duration, **options
            )
            for name, (label, path, _expect) in targets:
                result = run_wrk(wrk, label, url[name] + path, key, seconds=duration, **options)
                after = run_wrk(
                    wrk, "bare view", url[CEILING] + bare[1], key, seconds=duration, **options
                )
                pairs.append((round_number, name, before, result, after))
                before = after
    finally:
        for server in started.values():
            server.stop()
    failed = [(name, r) for _n, name, *runs in pairs for r in runs if r.non_2xx or r.socket_errors]
    if failed:
        name, r = failed[0]
        sys.exit(f"errors under {name} ({r.name}): the figures are not valid; logs in {logs}")
    for log in logs.values():
        log.unlink(missing_ok=True)

    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{duration}s (after {args.warmup} s "
        f"warm-up), PostgreSQL, DEBUG off, Redis throttle cache, {os.cpu_count()} CPUs, "
        f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}; {cpu_pressure()}"
    )
    print(
        "ceiling: a bare Django view under gunicorn, 2 sync workers, measured before and after "
        "each target; x ceiling = the target's req/s over the mean of those two"
    )
    print(
        f"{'round':>5} {'server':32} {'target':36} {'req/s':>9} {'p99 ms':>8} "
        f"{'ceiling':>9} {'x ceiling':>10}"
    )
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    p99s: dict[tuple[str, str], list[float]] = defaultdict(list)
    for round_number, name, before, result, after in pairs:
        ceiling = (before.requests_per_second + after.requests_per_second) / 2
        ratio = result.requests_per_second / ceiling
        ratios[name, result.name].append(ratio)
        p99s[name, result.name].append(result.p99_ms)
        print(
            f"{round_number:>5} {name:32} {result.name:36} {result.requests_per_second:9.1f} "
            f"{result.p99_ms:8.1f} {ceiling:9.0f} {ratio:10.3f}"
        )
    if rounds > 1:
        print(f"over {rounds} rounds: median x ceiling, and the worst p99")
        for (name, target), values in ratios.items():
            print(
                f"{'':>5} {name:32} {target:36} {'':>9} {max(p99s[name, target]):8.1f} "
                f"{'':>9} {statistics.median(values):10.3f}"
            )


if __name__ == "__main__":
    main()
