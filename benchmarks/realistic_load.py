"""A realistic load: a 1,000-agent helpdesk polling SWAN and 20 dashboards, while the PBX is busy.

For --seconds (60) against the web tier of `make serve` (`python -m swanproject.webtier`:
gunicorn for HTTP, daphne for /ws/) on PostgreSQL + Redis:
- the helpdesk, an open-loop schedule spread evenly: per agent userStatus every 5 s, blf-users
  (the whole company) every 10 s and user-resume every 30 s: 200 + 100 + 33 requests/s. Each
  request's latency counts from when it was due, so a slow server cannot hide its backlog;
- 20 supervisor dashboard websockets (API key) of the company;
- `manage.py pbx_listen` applying the events of a simulated PBX (the simulator in its own
  process, a call centre of the same directory on a real-time clock) at about 200 events/s,
  among them do-not-disturb changes of back-office users (in no queue, so nothing else changes
  their status) whose AMI event → websocket message latency is measured, as benchmarks/listener.py
  does.
It prints REST latency per endpoint, AMI event → websocket latency, events applied per second
and the CPU each component used (from /proc/<pid>/stat: gunicorn workers, daphne, listener,
simulator, load generator, and the PostgreSQL backends of the benchmark database). Loopback
only; every process it starts is stopped, SIGKILL if need be.

Run: .venv/bin/python benchmarks/realistic_load.py [--seconds 60] [--agents 1000]
         [--call-rate 320] [--probes 10] [--workers N]
Environment: BENCH_SERVER_URL, BENCH_DATABASE (created and migrated by _setup.py),
BENCH_REDIS_URL (default redis://127.0.0.1:6379/13; that Redis database is flushed).
Needs `websockets` (the test extras).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ["REDIS_URL"] = REDIS_URL
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "swan-benchmark-only")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from _setup import ROOT, cpu_of, cpu_pressure, setup, stat_fields  # noqa: E402

HOST = "127.0.0.1"
COMPANY = "bench"
EXTENSION_BASE = 1000
QUEUES = 20
BACK_OFFICE = 50  # agents in no queue: their status changes only by the DND probes
DEPARTMENTS = ("Ventas", "Soporte", "Postventa", "Citas", "Administración")
ENTRIES_TODAY = 20_000  # and a CDR row for each answered one
SUPERVISORS = 20
AMI_SECRET = "bench-realistic"
SEED = 12
# (path kind, seconds between two requests of one agent)
SCHEDULE = (("userStatus", 5.0), ("blf-users", 10.0), ("user-resume", 30.0))
SLOW_START_SECONDS = 5.0  # polling before the measured window: workers warm their caches
TIMELINE_SECONDS = 10.0


# -- the directory and today's history ---------------------------------------------------------


def build(agents: int) -> str:
    """One company of `agents` users with a terminal each, QUEUES queues, today's entries; an
    all-companies API key. Returns the raw key."""
    from django.db import connection

    from pbx.directory.loading import directory_load
    from pbx.history import selectors as history
    from pbx.models import ApiKey, Company, PbxUser, Queue
    from pbx.models.history import CdrRecord, QueueEntry

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pbx_company, pbx_devicestate, pbx_queuememberstate, pbx_queuecallerstate, "
            "pbx_livechannel, pbx_userpresence, pbx_listenerlease, pbx_apikey, "
            "pbx_queueentry, pbx_queuelogline, pbx_queuelogblocktimes, pbx_cdrrecord, pbx_livechange, "
            "pbx_liveversion "
            "CASCADE"
        )
    queues = [f"q{n:02d}" for n in range(QUEUES)]
    users = []
    for n in range(agents):
        in_queues = n < agents - BACK_OFFICE
        users.append(
            {
                "extension": str(EXTENSION_BASE + n),
                "name": f"Agente {n:04d}",
                "mobile": f"+3460{n:07d}",
                "department": DEPARTMENTS[n % len(DEPARTMENTS)],
                "queues": [queues[n % QUEUES], queues[(n + 7) % QUEUES]] if in_queues else [],
                "terminals": [
                    {
                        "mac": f"00:15:65:01:{n // 256:02x}:{n % 256:02x}",
                        "interface": f"PJSIP/{EXTENSION_BASE + n}",
                    }
                ],
            }
        )
    directory_load(
        {
            "companies": [
                {
                    "slug": COMPANY,
                    "name": "Bench Call Centre",
                    "departments": list(DEPARTMENTS),
                    "queues": [{"name": name} for name in queues],
                    "users": users,
                }
            ]
        }
    )
    company = Company.objects.get(slug=COMPANY)
    user_ids = list(PbxUser.objects.filter(company=company).values_list("pk", flat=True))
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    day_start, _ = history.day_bounds(company.time_zone, now)
    span = max(60, int((now - day_start).total_seconds()) - 60)
    queue_ids = dict(Queue.objects.values_list("name", "pk"))
    rows = []
    for n in range(ENTRIES_TODAY):
        name = queues[n % QUEUES]
        answered = rng.random() < 0.85
        rows.append(
            QueueEntry(
                callid=f"h{n}.1",
                queue_name=name,
                queue_id=queue_ids[name],
                company=company,
                entered_at=day_start + timedelta(seconds=rng.randrange(span)),
                outcome="answered" if answered else "abandoned",
                wait_seconds=rng.randrange(60),
                talk_seconds=rng.randrange(400) if answered else 0,
                agent_user_id=rng.choice(user_ids) if answered else None,
            )
        )
    QueueEntry.objects.bulk_create(rows, batch_size=5000)
    extensions = dict(PbxUser.objects.filter(company=company).values_list("pk", "extension"))
    cdrs = []
    for n, entry in enumerate(rows):
        if entry.agent_user_id is None:
            continue
        extension = extensions[entry.agent_user_id]
        cdrs.append(
            CdrRecord(
                calldate=entry.entered_at,
                answer=entry.entered_at + timedelta(seconds=entry.wait_seconds),
                end=entry.entered_at + timedelta(seconds=entry.wait_seconds + entry.talk_seconds),
                clid=f'"" <6{n:08d}>',
                src=f"6{n:08d}",
                dst=extension,
                dcontext="from-queue",
                channel=f"PJSIP/trunk-{n:08x}",
                dstchannel=f"PJSIP/{extension}-{n:08x}",
                channel_device="PJSIP/trunk",
                dstchannel_device=f"PJSIP/{extension}",
                lastapp="Queue",
                duration=entry.wait_seconds + entry.talk_seconds,
                billsec=entry.talk_seconds,
                disposition="ANSWERED",
                uniqueid=entry.callid,
                linkedid=entry.callid,
                company=company,
                digest=uuid.UUID(int=n),
            )
        )
    CdrRecord.objects.bulk_create(cdrs, batch_size=5000)
    key = ApiKey(name="realistic-load", all_companies=True)
    raw = key.set_new_key()
    key.save()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()
    return raw


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# -- the simulator (its own process: `--role simulator`) ---------------------------------------


def simulator_main(args) -> None:
    """A real-time call centre of the directory; DND probes for --seconds after SIGUSR1."""
    setup()
    from pbx.models import PbxUser
    from pbx.simulator import Behaviour, CallCentre, SimulatedPbx
    from pbx.simulator.from_directory import config_from_directory

    config = config_from_directory()
    behaviour = Behaviour(call_rate=args.call_rate, pauses_per_agent_hour=2.0)
    centre = CallCentre(config, behaviour=behaviour, seed=SEED, start_time=time.time() - 900)
    for _ in range(180):  # 15 simulated minutes first: calls in progress, as at any moment
        centre.step(5.0)
        centre.drain_events()
    probes = sorted(
        PbxUser.objects.filter(queues__isnull=True).values_list("extension", "pk"),
        key=lambda row: int(row[0]),
    )
    sim = SimulatedPbx(centre, username="swan", secret=AMI_SECRET, speed=0)
    counted = {"events": 0, "counting": False}
    drain = centre.drain_events

    def drain_counted():
        events = drain()
        if counted["counting"]:
            counted["events"] += len(events)
        return events

    centre.drain_events = drain_counted
    sim.start()
    Path(args.port_file).write_text(str(sim.port))
    go = {"at": None}
    signal.signal(signal.SIGUSR1, lambda *_: go.update(at=time.monotonic()))
    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    sent: list[tuple[int, bool, float]] = []
    n = 0
    last = time.monotonic()
    tick = 0.02
    while not stopping["now"]:
        now = time.monotonic()
        started = go["at"]
        with sim.lock:
            if started is not None and now - started < args.seconds:
                counted["counting"] = True
                while n < (now - started) * args.probes:
                    extension, pk = probes[n % len(probes)]
                    on = (n // len(probes)) % 2 == 0
                    centre.set_custom_state(f"Custom:DND{extension}", "BUSY" if on else "NOT_INUSE")
                    sent.append((pk, on, time.monotonic()))
                    n += 1
            elif started is not None and counted["counting"]:
                counted["counting"] = False
                Path(args.result_file).write_text(
                    json.dumps({"sent": sent, "events": counted["events"]})
                )
            sim.step(now - last)
        last = now
        time.sleep(max(0.0, tick - (time.monotonic() - now)))
    sim.stop()


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWAN_", "AMI_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="swanproject.settings",
        DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=REDIS_URL,
        DEBUG="false",
        SECRET_KEY="realistic-load-" + os.urandom(16).hex(),
        ALLOWED_HOSTS=HOST,
        SECURE_SSL_REDIRECT="false",
        SERVE_STATIC="false",
        LOG_LEVEL="WARNING",
    )
    return env


class Child:
    """A process started here; always stopped (SIGTERM to its group, then SIGKILL)."""

    def __init__(self, label: str, argv: list[str], env: dict[str, str], log: Path):
        self.label = label
        self.log = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.label} exited with {self.process.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 25) -> str:
        self._log.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()


def wait_port(port: int, child: Child, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{child.label}: nothing on port {port} after {timeout:.0f} s")


def wait_listener(child: Child, timeout: float = 60) -> None:
    from django.db import connection

    from pbx.models import ListenerLease

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        if ListenerLease.objects.filter(connected=True).exclude(holder="").exists():
            connection.close()
            return
        time.sleep(0.2)
    raise RuntimeError(f"the listener did not connect within {timeout:.0f} s:\n{child.tail()}")


# -- CPU -----------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process."""
    fields = stat_fields(f"/proc/{pid}/stat")
    return (int(fields[1]), cpu_of(fields)) if fields else None


def _processes() -> dict[int, tuple[int, float, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = (stat[0], stat[1], cmdline)
    return found


def cpu_by_component(roots: dict[str, tuple[int, bool]], database: str) -> dict[str, float]:
    """CPU seconds so far of each component: a root, and with `True` every process below it."""
    processes = _processes()
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _cpu, _cmd) in processes.items():
        children[ppid].append(pid)

    def tree(pid: int) -> list[int]:
        out, todo = [], [pid]
        while todo:
            current = todo.pop()
            if current in processes:
                out.append(current)
                todo.extend(children[current])
        return out

    totals: dict[str, float] = defaultdict(float)
    for label, (root, below) in roots.items():
        for pid in tree(root) if below else [root]:
            _ppid, cpu, cmd = processes[pid]
            if label == "web tier":
                if "gunicorn" in cmd:
                    role = "gunicorn master" if children[pid] else "gunicorn workers"
                elif "daphne" in cmd:
                    role = "daphne"
                else:
                    role = "web tier supervisor"
                totals[role] += cpu
            else:
                totals[label] += cpu
    for _pid, (_ppid, cpu, cmd) in processes.items():
        if cmd.startswith("postgres:") and f" {database} " in f"{cmd} ":
            totals["PostgreSQL backends (this database)"] += cpu
    return dict(totals)


# -- websocket clients (a child process) --------------------------------------------------------


def websockets_main(url: str, count: int, ready, stop, results) -> None:
    import websockets

    async def client(index: int, connected: asyncio.Event, arrivals: list) -> None:
        async with websockets.connect(
            url, max_size=None, open_timeout=60, ping_interval=None
        ) as ws:
            first = json.loads(await ws.recv())
            if first.get("type") != "snapshot":
                raise RuntimeError(f"client {index}: expected a snapshot, got {first.get('type')}")
            connected.set()
            while True:
                raw = await ws.recv()
                at = time.monotonic()
                message = json.loads(raw)
                if message.get("type") == "user.status":
                    payload = message["payload"]
                    arrivals.append((payload["id"], payload["status"] == "busy", at))

    async def main() -> None:
        arrivals: list[list] = [[] for _ in range(count)]
        events = [asyncio.Event() for _ in range(count)]
        tasks = [asyncio.create_task(client(i, events[i], arrivals[i])) for i in range(count)]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 90)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise failed[0].exception()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(arrivals)

    try:
        asyncio.run(main())
    except BaseException as exc:
        results.put(repr(exc))


def match(sent, arrivals) -> tuple[list[float], int]:
    """Each probe (user, DND on) matches, per client, the first message of that user in that
    state arriving after it was sent: when the dashboard first shows it. (Matching "the next
    message not yet matched" instead let one missing message, a change and its undoing in one
    batch, shift every later probe of that user by a cycle.)"""
    latencies: list[float] = []
    lost = 0
    for messages in arrivals:
        by_user: dict[int, list] = defaultdict(list)
        for user_id, busy, at in messages:
            by_user[user_id].append((busy, at))
        for user_id, on, sent_at in sent:
            shown = next(
                (at for busy, at in by_user[user_id] if busy == on and at >= sent_at), None
            )
            if shown is None:
                lost += 1
            else:
                latencies.append(shown - sent_at)
    return latencies, lost


# -- the helpdesk: open-loop HTTP ---------------------------------------------------------------


def schedule(agents: int, seconds: float, start: float) -> list[tuple[float, str, str]]:
    """(due time, kind, path) of every request, each agent's spread evenly over its period."""
    from urllib.parse import urlencode

    plan = []
    groups_of = {}
    for n in range(agents):
        extension = str(EXTENSION_BASE + n)
        if n < agents - BACK_OFFICE:
            queues = [f"q{n % QUEUES:02d}", f"q{(n + 7) % QUEUES:02d}"]
            groups_of[extension] = urlencode([("queues[mine][]", q) for q in queues])
        else:
            groups_of[extension] = ""
    for kind, period in SCHEDULE:
        for n in range(agents):
            extension = str(EXTENSION_BASE + n)
            offset = period * n / agents
            if kind == "userStatus":
                path = f"/userStatus/{extension}"
            elif kind == "blf-users":
                path = f"/blf-users/{COMPANY}"
            else:
                query = urlencode(
                    {"company": COMPANY, "department": DEPARTMENTS[n % len(DEPARTMENTS)]}
                )
                if groups_of[extension]:
                    query += "&" + groups_of[extension]
                path = f"/user-resume/{extension}?{query}"
            due = offset
            while due < seconds:
                plan.append((start + due, kind, path))
                due += period
    plan.sort()
    return plan


async def fetch(port: int, path: str, key: str) -> tuple[int, bool]:
    """One GET on a new connection (gunicorn's sync workers close after each answer)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
            f"Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await (reader.readexactly(length) if length is not None else reader.read())
        return status, body.startswith(b'{"error":false')
    finally:
        writer.close()


async def helpdesk(port: int, key: str, plan, measured_from: float, concurrency: int):
    """Runs the plan; returns {kind: [(latency from due time, ok)]} of the measured window."""
    results: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    limit = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    tasks = []

    async def one(due: float, kind: str, path: str) -> None:
        async with limit:
            try:
                status, ok = await asyncio.wait_for(fetch(port, path, key), 30)
                ok = ok and status == 200
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
        if due >= measured_from:
            results[kind].append((time.monotonic() - due, ok, due - measured_from))

    for due, kind, path in plan:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(due, kind, path)))
    await asyncio.gather(*tasks)
    return results


# -- report --------------------------------------------------------------------------------------


def quantiles(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else ordered * 99
    return (
        f"p50 {q[49] * 1000:6.1f} ms  p99 {q[98] * 1000:6.1f} ms  max {ordered[-1] * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["orchestrator", "simulator"], default="orchestrator")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--call-rate", type=float, default=320.0, help="calls per minute")
    parser.add_argument("--probes", type=float, default=10.0, help="DND probes per second")
    parser.add_argument("--workers", type=int, default=None, help="SWAN_HTTP_WORKERS")
    parser.add_argument("--concurrency", type=int, default=256, help="requests in flight, max")
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.seconds = max(5.0, min(args.seconds, 300.0))
    if args.role == "simulator":
        simulator_main(args)
        return

    setup()
    flush_redis()
    key = build(args.agents)
    database = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    workdir = Path(tempfile.mkdtemp(prefix="swan-realistic-"))
    http_port, ws_port = free_port(), free_port()
    env = base_env()
    tier_env = dict(env, SWAN_HOST=HOST, SWAN_HTTP_PORT=str(http_port), SWAN_WS_PORT=str(ws_port))
    if args.workers:
        tier_env["SWAN_HTTP_WORKERS"] = str(args.workers)
    port_file, result_file = workdir / "ami-port", workdir / "probes.json"
    children: list[Child] = []
    clients = None
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    try:
        tier = Child(
            "web tier",
            [sys.executable, "-m", "swanproject.webtier"],
            tier_env,
            workdir / "webtier.log",
        )
        children.append(tier)
        simulator = Child(
            "simulator",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--role",
                "simulator",
                "--seconds",
                str(args.seconds),
                "--call-rate",
                str(args.call_rate),
                "--probes",
                str(args.probes),
                "--port-file",
                str(port_file),
                "--result-file",
                str(result_file),
            ],
            dict(env, BENCH_DATABASE=database),
            workdir / "simulator.log",
        )
        children.append(simulator)
        wait_port(http_port, tier)
        wait_port(ws_port, tier)
        deadline = time.monotonic() + 120
        while not port_file.exists() and time.monotonic() < deadline:
            simulator.check()
            time.sleep(0.2)
        ami_port = int(port_file.read_text())
        listener = Child(
            "listener",
            [sys.executable, "manage.py", "pbx_listen"],
            dict(
                env,
                AMI_HOST=HOST,
                AMI_PORT=str(ami_port),
                AMI_USERNAME="swan",
                AMI_SECRET=AMI_SECRET,
            ),
            workdir / "listener.log",
        )
        children.append(listener)
        wait_listener(listener)
        url = f"ws://{HOST}:{ws_port}/ws/dashboard/{COMPANY}/?key={key}"
        clients = context.Process(
            target=websockets_main, args=(url, SUPERVISORS, ready, stop, results), daemon=True
        )
        clients.start()
        if not ready.wait(120):
            raise RuntimeError("the dashboard websockets did not all connect within 120 s")

        from django.db import connection

        from pbx.models import ListenerLease

        start = time.monotonic() + 0.5
        measured_from = start + SLOW_START_SECONDS
        plan = schedule(args.agents, SLOW_START_SECONDS + args.seconds, start)
        roots = {
            "web tier": (tier.pid, True),
            "listener": (listener.pid, True),
            "simulator": (simulator.pid, True),
            # this process alone: every other component is its child
            "load generator (helpdesk, this process)": (os.getpid(), False),
            "load generator (websockets)": (clients.pid, True),
        }

        async def run():
            loop = asyncio.get_running_loop()
            marks = {}

            def mark_start():
                os.kill(simulator.pid, signal.SIGUSR1)
                marks["cpu"] = cpu_by_component(roots, database)
                marks["events"] = ListenerLease.objects.values_list(
                    "events_processed", flat=True
                ).first()
                marks["at"] = time.monotonic()

            # On a thread: the ORM refuses to run on the event loop's.
            loop.call_at(
                loop.time() + (measured_from - time.monotonic()),
                lambda: loop.run_in_executor(None, mark_start),
            )
            answers = await helpdesk(http_port, key, plan, measured_from, args.concurrency)
            return answers, marks

        answers, marks = asyncio.run(run())
        elapsed = time.monotonic() - marks["at"]
        cpu_end = cpu_by_component(roots, database)
        events_end = ListenerLease.objects.values_list("events_processed", flat=True).first()
        connection.close()
        deadline = time.monotonic() + 30
        while not result_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # the last probes' messages
        stop.set()
        arrivals = results.get(timeout=60)
        if isinstance(arrivals, str):
            raise RuntimeError(f"websocket clients failed: {arrivals}")
        probes = json.loads(result_file.read_text())
    finally:
        stop.set()
        if clients is not None:
            clients.join(10)
            if clients.is_alive():
                clients.kill()
        for child in reversed(children):
            child.stop()
        flush_redis()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nRealistic load, {args.seconds:.0f} s measured after {SLOW_START_SECONDS:.0f} s: "
        f"{args.agents} agents, {SUPERVISORS} dashboards, PostgreSQL {database}, {REDIS_URL}; "
        f"{os.cpu_count()} CPUs, load average {load}; {cpu_pressure()}"
    )
    print("REST (open loop, latency from when each request was due):")
    everything, errors = [], 0
    for kind, period in SCHEDULE:
        rows = answers.get(kind, [])
        latencies = [latency for latency, _ok, _at in rows]
        failed = sum(1 for _latency, ok, _at in rows if not ok)
        everything += latencies
        errors += failed
        print(
            f"  {kind:12} every {period:4.0f} s/agent  {len(rows) / args.seconds:6.1f} req/s  "
            f"errors {failed:4}  {quantiles(latencies)}"
        )
    print(
        f"  {'all':12} {'':17} {len(everything) / args.seconds:6.1f} req/s  errors {errors:4}  "
        f"{quantiles(everything)}"
    )
    print(f"  over time (all requests, by when they were due, {TIMELINE_SECONDS:.0f} s windows):")
    windows: dict[int, list[float]] = defaultdict(list)
    for rows in answers.values():
        for latency, _ok, at in rows:
            windows[int(at // TIMELINE_SECONDS)].append(latency)
    for window in sorted(windows):
        print(
            f"    {window * TIMELINE_SECONDS:4.0f}-{(window + 1) * TIMELINE_SECONDS:3.0f} s "
            f"{quantiles(windows[window])}"
        )
    latencies, lost = match([tuple(s) for s in probes["sent"]], arrivals)
    applied = (events_end or 0) - (marks["events"] or 0)
    print(
        f"AMI events: simulator sent {probes['events'] / args.seconds:.0f}/s, listener applied "
        f"{applied / elapsed:.0f}/s; {len(probes['sent'])} DND probes x {SUPERVISORS} "
        f"dashboards: {len(latencies)} messages matched, {lost} lost"
    )
    print(f"  AMI event → websocket message: {quantiles(latencies)}")
    print(f"CPU over the measured {elapsed:.0f} s (seconds, and share of one core):")
    for name in sorted(cpu_end, key=lambda n: -(cpu_end[n] - marks["cpu"].get(n, 0.0))):
        used = cpu_end[name] - marks["cpu"].get(name, 0.0)
        print(f"  {name:42} {used:7.1f} s  {used * 100 / elapsed:5.0f} %")


if __name__ == "__main__":
    main()
