"""Many PBXes behind one SWAN: one `pbx_listen` serving 20 simulated PBXes (issue 15, item 7).

The directory (PostgreSQL + Redis): --pbxes (20) PBX rows, one company on each with --agents
(100) queue agents (two of its five queues each, a terminal each) and BACK_OFFICE (10) back-office
users in no queue, whose do-not-disturb lamp the probes switch (nothing else changes their status,
as in benchmarks/realistic_load.py). Every process runs on loopback, in the ports from --port-base
(18700: daphne; +10…: the simulated PBXes). Two phases, each with fresh processes:

1. The ceiling: the same companies, the same 1,000 events/s and the same probes, all on ONE PBX
   (every company moved to pbx-00, one simulated PBX with 20 times the calls and probes), served
   by `manage.py pbx_listen --pbx pbx-00`: one listener thread. It is the per-event path with
   nothing of "many PBXes" in it (one AMI session, one thread, batches as big as the load makes
   them), so the difference to phase 2 is what splitting the same work over 20 PBXes costs.
2. 20 PBXes: company k on pbx-k, 20 simulated Asterisks, `manage.py pbx_listen` (no --pbx: every
   PBX defined; one listener thread each, in one process).

In each phase the simulators (one process of their own, so the listener's CPU is its own) run
their call centres on a real-time clock, ~40 call events/s per PBX (--call-rate calls a minute,
PAUSES pauses an agent-hour, short calls) plus --probes (10) DND changes/s per PBX; daphne serves
--clients (1) API-key websocket per company, in a process of their own. For --seconds (60; the
ceiling --ceiling-seconds, 30) it counts AMI events sent (by the simulators) and applied (the
leases' events_processed), dashboard messages published (the companies' seq counters in Redis) and
delivered (distinct seqs each socket got), matches each probe to its `user.status` message
(benchmarks/listener.py's rule) for AMI event → websocket latency overall and per PBX, and takes
the CPU of every process from /proc. The listener's threads are attributed to their PBX: the
listener runs with a sitecustomize (on PYTHONPATH, this benchmark's only) that records each
thread's native id, name and creating thread, so that pyst2's two threads of a session count for
the listener thread that opened it; the shared publisher loop and the main thread are apart.
pbx_listen gets --reconcile-seconds 3600: a reconcile drops the events queued before its
snapshot, and the count would call them lost.

Run: BENCH_SERVER_URL=postgres://postgres@127.0.0.1:5432/postgres BENCH_DATABASE=scale \
       BENCH_REDIS_URL=redis://127.0.0.1:6379/6 \
       flock /work/wt/bench.lock .venv/bin/python benchmarks/many_pbxes.py [--seconds 60]
         [--ceiling-seconds 30] [--phase both|ceiling|many] [--pbxes 20] [--agents 100]
         [--call-rate 60] [--probes 10] [--clients 1] [--port-base 18700]
That Redis database is flushed; the PostgreSQL database is created and migrated by _setup.py.
Needs `websockets` (the test extras). Every process it starts is stopped, SIGKILL if need be.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
REDIS_URL = os.environ["BENCH_REDIS_URL"]

from _setup import cpu_of, cpu_pressure, setup, stat_fields  # noqa: E402
from realistic_load import Child, base_env, wait_port  # noqa: E402

HOST = "127.0.0.1"
QUEUES = 5  # per company; each agent answers two of them
BACK_OFFICE = 10  # per company: users in no queue, the probes' targets
PAUSES = 4.0  # per agent-hour
TALK_SECONDS = (20.0, 90.0)
SEED = 15
TICK = 0.02  # the simulators' clock step
SETTLE_SECONDS = 30.0
QUIET_SECONDS = 2.0  # after the traffic: for the listener to apply what is queued

# Loaded by the listener's interpreter (PYTHONPATH) only: each thread's native id, name and
# creator, appended to BENCH_THREAD_MAP when it starts. No effect on what the threads do.
THREAD_MAP_SITECUSTOMIZE = """
import os
import threading

_path = os.environ.get("BENCH_THREAD_MAP")
if _path:
    _init = threading.Thread.__init__
    _inner = threading.Thread._bootstrap_inner

    def __init__(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self._bench_creator = threading.current_thread().name

    def _bootstrap_inner(self):
        try:
            with open(_path, "a") as out:
                out.write(f"{threading.get_native_id()}\\t{self.name}\\t{self._bench_creator}\\n")
        except (OSError, AttributeError):
            pass
        _inner(self)

    threading.Thread.__init__ = __init__
    threading.Thread._bootstrap_inner = _bootstrap_inner

# --profile: every BENCH_PROFILE_INTERVAL seconds, the Python stack of every thread whose name
# starts with "listener" (wall time, waits included), counted; written as collapsed stacks at exit.
_profile = os.environ.get("BENCH_PROFILE")
if _profile:
    import atexit
    import collections
    import sys
    import time

    _counts = collections.Counter()
    _interval = float(os.environ.get("BENCH_PROFILE_INTERVAL", "0.01"))

    _stopped = threading.Event()

    def _sample():
        while not _stopped.wait(_interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if not names.get(ident, "").startswith("listener"):
                    continue
                stack = []
                while frame is not None:
                    code = frame.f_code
                    where = "/".join(code.co_filename.rsplit("/", 2)[-2:])
                    stack.append(f"{where}:{code.co_name}")
                    frame = frame.f_back
                _counts[(names.get(ident, "?"), ";".join(reversed(stack)))] += 1

    def _dump():
        _stopped.set()
        time.sleep(3 * _interval)
        with open(_profile, "w") as out:
            for (name, stack), n in list(_counts.items()):
                out.write(f"{name}\\t{stack}\\t{n}\\n")

    atexit.register(_dump)
    threading.Thread(target=_sample, name="bench-sampler", daemon=True).start()

# --profile cpu: each listener-<pbx> thread under cProfile with its own CPU clock (thread_time),
# its stats written to BENCH_CPROFILE/<thread name>.prof when it ends.
_cprofile = os.environ.get("BENCH_CPROFILE")
if _cprofile:
    import cProfile
    import time

    _run = threading.Thread.run

    def run(self):
        if not self.name.startswith("listener-") or self.name == "listener-publisher":
            return _run(self)
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            _run(self)
        finally:
            profile.disable()
            profile.dump_stats(os.path.join(_cprofile, self.name + ".prof"))

    threading.Thread.run = run
"""


def pbx_name(k: int) -> str:
    return f"pbx-{k:02d}"


def company_slug(k: int) -> str:
    return f"co-{k:02d}"


def secret_env(k: int) -> str:
    return f"SWAN_PBX_BENCH_{k:02d}_SECRET"


def secret_of(name: str) -> str:
    return f"bench-{name}"


def sim_port(base: int, k: int) -> int:
    return base + 10 + k


# -- the directory ------------------------------------------------------------------------------


def build(pbxes: int, agents: int, port_base: int) -> str:
    """`pbxes` PBX rows and as many companies (agents + BACK_OFFICE users with a terminal each,
    QUEUES queues); an all-companies API key, whose raw key it returns. Extensions and queue
    names differ across companies, so that the ceiling can put them all on one PBX."""
    from django.db import connection

    from pbx.directory.loading import directory_load
    from pbx.models import ApiKey, Pbx

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pbx_company, pbx_pbx, pbx_devicestate, pbx_queuememberstate, "
            "pbx_queuecallerstate, pbx_livechannel, pbx_userpresence, pbx_listenerlease, "
            "pbx_apikey, pbx_livechange, pbx_liveversion CASCADE"
        )
    companies = []
    for k in range(pbxes):
        queues = [f"c{k:02d}-q{n}" for n in range(QUEUES)]
        users = []
        for n in range(agents + BACK_OFFICE):
            extension = str(10000 + k * 500 + n)
            in_queues = n < agents
            users.append(
                {
                    "extension": extension,
                    "name": f"Agent {k:02d}-{n:03d}" if in_queues else f"Office {k:02d}-{n:03d}",
                    "queues": [queues[n % QUEUES], queues[(n + 2) % QUEUES]] if in_queues else [],
                    "terminals": [
                        {"mac": f"00:15:65:03:{k:02x}:{n:02x}", "interface": f"PJSIP/{extension}"}
                    ],
                }
            )
        companies.append(
            {
                "slug": company_slug(k),
                "name": f"Company {k:02d}",
                "queues": [{"name": name} for name in queues],
                "users": users,
            }
        )
    directory_load({"companies": companies})
    for k in range(pbxes):
        Pbx.objects.create(
            name=pbx_name(k),
            host=HOST,
            port=sim_port(port_base, k),
            username="swan",
            secret_env=secret_env(k),
        )
    key = ApiKey(name="many-pbxes", all_companies=True)
    raw = key.set_new_key()
    key.save()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return raw


def served(layout: str, pbxes: int) -> list[str]:
    """The PBXes simulated and listened to: "one" and "single", pbx-00; "many", all."""
    return [pbx_name(k) for k in range(pbxes)] if layout == "many" else [pbx_name(0)]


def place_companies(pbxes: int, *, layout: str) -> dict[int, str]:
    """Every company on pbx-00 (layout "one"), or company k on pbx-k; live state emptied.
    Returns {company id: PBX name}."""
    from django.db import connection

    from pbx.models import Company, Pbx

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pbx_devicestate, pbx_queuememberstate, pbx_queuecallerstate, "
            "pbx_livechannel, pbx_userpresence, pbx_listenerlease"
        )
    rows = {row.name: row for row in Pbx.objects.all()}
    placed = {}
    for k in range(pbxes):
        company = Company.objects.get(slug=company_slug(k))
        company.pbx = rows[pbx_name(0 if layout == "one" else k)]
        company.save()  # its queues follow (Company.save)
        placed[company.pk] = company.pbx_key
    connection.close()
    return placed


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# -- the simulators (their own process: `--role simulator`) -------------------------------------


class _Sim:
    def __init__(self, name: str, sim, probes: list[tuple[str, int]], rate: float):
        self.name = name
        self.sim = sim
        self.probes = probes  # (DND device, user id), in the order they are switched
        self.rate = rate
        self.sent: list[tuple[int, bool, float]] = []  # (user id, DND on, wall-clock time)
        self.events = 0
        self.counting = False
        self.n = 0
        drain = sim.centre.drain_events

        def drain_counted():
            events = drain()
            if self.counting:
                self.events += len(events)
            return events

        sim.centre.drain_events = drain_counted


def simulator_main(args) -> None:
    """The phase's simulated PBXes on loopback; traffic for --seconds after SIGUSR1."""
    setup()
    from pbx.models import PbxUser
    from pbx.simulator import Behaviour, CallCentre, SimulatedPbx

    names = served(args.layout, args.pbxes)
    scale = args.pbxes if args.layout == "one" else 1
    behaviour = Behaviour(
        call_rate=args.call_rate * scale,
        pauses_per_agent_hour=PAUSES,
        talk_seconds=TALK_SECONDS,
    )
    sims: list[_Sim] = []
    for index, name in enumerate(names):
        centre = CallCentre.from_directory(
            pbx=name, behaviour=behaviour, seed=SEED + index, start_time=time.time() - 900
        )
        for _ in range(180):  # 15 simulated minutes first: calls in progress, as at any moment
            centre.step(5.0)
            centre.drain_events()
        office = PbxUser.objects.filter(company__pbx=name, queues__isnull=True).values_list(
            "extension", "pk", "company__slug"
        )
        # Round robin over the companies, so that each gets --probes a second.
        ordered = sorted(office, key=lambda row: (int(row[0]) % 500, row[2]))
        probes = [(f"Custom:DND{extension}", pk) for extension, pk, _slug in ordered]
        k = int(name.rsplit("-", 1)[1])
        sim = SimulatedPbx(
            centre,
            host=HOST,
            port=sim_port(args.port_base, k),
            username="swan",
            secret=secret_of(name),
            speed=0,
        )
        sim.start()
        sims.append(_Sim(name, sim, probes, args.probes * scale))
    Path(args.port_file).write_text(json.dumps([s.name for s in sims]))
    go: dict[str, float | None] = {"at": None}
    signal.signal(signal.SIGUSR1, lambda *_: go.update(at=time.monotonic()))
    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    ticks: list[float] = []
    done = False
    last = time.monotonic()
    while not stopping["now"]:
        now = time.monotonic()
        started = go["at"]
        if started is not None and not done and now - started < args.seconds:
            for entry in sims:
                with entry.sim.lock:
                    entry.counting = True
                    centre = entry.sim.centre
                    while entry.n < (now - started) * entry.rate:
                        device, pk = entry.probes[entry.n % len(entry.probes)]
                        on = (entry.n // len(entry.probes)) % 2 == 0
                        centre.set_custom_state(device, "BUSY" if on else "NOT_INUSE")
                        entry.sent.append((pk, on, time.time()))
                        entry.n += 1
                    entry.sim.step(now - last)
            ticks.append(time.monotonic() - now)
        elif started is not None and not done:
            for entry in sims:
                with entry.sim.lock:
                    entry.counting = False
            done = True
            Path(args.result_file).write_text(
                json.dumps(
                    {
                        "seconds": now - started,
                        "sent": {s.name: s.sent for s in sims},
                        "events": {s.name: s.events for s in sims},
                        "ticks": ticks,
                    }
                )
            )
        last = now
        time.sleep(max(0.0, TICK - (time.monotonic() - now)))
    for entry in sims:
        entry.sim.stop()


# -- /proc ---------------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    fields = stat_fields(f"/proc/{pid}/stat")
    return cpu_of(fields) if fields else 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every process below it."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(entry / "stat")):
            parents[int(fields[1])].append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu(current)
        todo.extend(parents.get(current, ()))
    return total


def postgres_cpu(database: str) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres:") and f" {database} " in f"{cmd} ":
            total += process_cpu(int(entry.name))
    return total


def thread_cpu(pid: int) -> dict[int, float]:
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        if fields := stat_fields(task / "stat"):
            found[int(task.name)] = cpu_of(fields)
    return found


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak), in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


def thread_owners(map_file: Path, pid: int, pbx_names: set[str]) -> dict[int, str]:
    """Native thread id → the PBX whose listener thread started it ("<pbx> ami": pyst2's two
    threads of its session) or that it is ("<pbx>": the listener thread, which applies and
    publishes), "publisher" (the shared send loop) or "main" (the pool)."""
    names: dict[int, str] = {pid: "MainThread"}
    creators: dict[str, str] = {}
    for line in map_file.read_text().splitlines():
        tid, name, creator = line.split("\t")
        names[int(tid)] = name
        creators[name] = creator

    def owner(name: str) -> str:
        seen = set()
        suffix = ""
        while name and name not in seen:
            if name.startswith("listener-") and name[len("listener-") :] in pbx_names:
                return name[len("listener-") :] + suffix
            if name == "listener-publisher":
                return "publisher"
            if name == "MainThread":
                return "main"
            seen.add(name)
            name = creators.get(name, "")
            suffix = " ami"
        return "other"

    return {tid: owner(name) for tid, name in names.items()}


# -- websocket clients (a child process) ---------------------------------------------------------


def clients_main(targets: list[tuple[int, str]], ready, stop, results) -> None:
    """One websocket per (company id, url); sends back per socket (company id, messages), each
    message (seq, type, arrival wall time, sent_at text, user id, busy)."""
    import websockets

    async def client(url: str, connected: asyncio.Event, out: list) -> None:
        async with websockets.connect(
            url, max_size=None, open_timeout=60, ping_interval=None
        ) as ws:
            first = json.loads(await ws.recv())
            if first.get("type") != "snapshot":
                raise RuntimeError(f"expected a snapshot, got {first.get('type')}")
            connected.set()
            while True:
                raw = await ws.recv()
                at = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                payload = message.get("payload") or {}
                user, busy = 0, False
                if kind == "user.status":
                    user, busy = payload["id"], payload["status"] == "busy"
                out.append((message.get("seq", 0), kind, at, message.get("sent_at"), user, busy))

    async def main() -> None:
        received: list[list] = [[] for _ in targets]
        events = [asyncio.Event() for _ in targets]
        tasks = []
        for index, (_company, url) in enumerate(targets):
            tasks.append(asyncio.create_task(client(url, events[index], received[index])))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 90)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put([(company, received[i]) for i, (company, _url) in enumerate(targets)])

    try:
        asyncio.run(main())
    except BaseException as exc:
        results.put(repr(exc))


# -- one phase -----------------------------------------------------------------------------------


def wait_for(check, child: Child, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not within {timeout:.0f} s:\n{child.tail()}")


def leases(names: list[str]) -> dict[str, tuple[bool, bool, int]]:
    """PBX → (connected, resynced, events processed)."""
    from django.db import connection

    from pbx.models import ListenerLease

    rows = ListenerLease.objects.filter(name__in=names).exclude(holder="")
    found = {
        row.name: (row.connected, row.last_resync_at is not None, row.events_processed)
        for row in rows
    }
    connection.close()
    return found


def seqs(company_ids: list[int]) -> dict[int, int]:
    from dashboard.broadcast import latest_seqs

    return latest_seqs(company_ids)


class Quiet:
    """Whether no dashboard message was published for QUIET_SECONDS."""

    def __init__(self, company_ids: list[int]):
        self.company_ids = company_ids
        self.last = seqs(company_ids)
        self.since = time.monotonic()

    def settled(self) -> bool:
        now = seqs(self.company_ids)
        if now != self.last:
            self.last, self.since = now, time.monotonic()
        return time.monotonic() - self.since >= QUIET_SECONDS


def free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise SystemExit(f"port {port} is taken ({exc}): choose another --port-base") from None


PHASES = {"single": "single", "ceiling": "one", "many": "many"}  # phase → layout


def run_phase(args, *, label: str, seconds: float, raw_key: str, workdir: Path) -> dict:
    layout = PHASES[label]
    placed = place_companies(args.pbxes, layout=layout)
    flush_redis()
    names = served(layout, args.pbxes)
    companies = sorted(company for company, pbx in placed.items() if pbx in names)
    for port in [args.port_base] + [sim_port(args.port_base, k) for k in range(len(names))]:
        free(port)
    database = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    env = base_env()
    env["REDIS_URL"] = REDIS_URL
    port_file, result_file = workdir / f"{label}-ready", workdir / f"{label}-result.json"
    thread_map = workdir / f"{label}-threads.tsv"
    profile = workdir / f"{label}-profile.tsv"
    cprofile = workdir / f"{label}-cprofile"
    sitedir = workdir / "site"
    sitedir.mkdir(exist_ok=True)
    (sitedir / "sitecustomize.py").write_text(THREAD_MAP_SITECUSTOMIZE)
    children: list[Child] = []
    clients = None
    listener: Child | None = None
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    try:
        daphne = Child(
            "daphne",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                HOST,
                "-p",
                str(args.port_base),
                "swanproject.asgi:application",
            ],
            env,
            workdir / f"{label}-daphne.log",
        )
        children.append(daphne)
        simulator = Child(
            "simulator",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--role",
                "simulator",
                "--layout",
                layout,
                "--pbxes",
                str(args.pbxes),
                "--seconds",
                str(seconds),
                "--call-rate",
                str(args.call_rate),
                "--probes",
                str(args.probes),
                "--port-base",
                str(args.port_base),
                "--port-file",
                str(port_file),
                "--result-file",
                str(result_file),
            ],
            dict(env, BENCH_DATABASE=database, BENCH_REDIS_URL=REDIS_URL),
            workdir / f"{label}-simulator.log",
        )
        children.append(simulator)
        wait_port(args.port_base, daphne)
        wait_for(port_file.exists, simulator, "the simulators listening", timeout=180)
        secrets = {secret_env(k): secret_of(pbx_name(k)) for k in range(args.pbxes)}
        profiling = {}
        if args.profile == "wall":
            profiling["BENCH_PROFILE"] = str(profile)
        elif args.profile == "cpu":
            cprofile.mkdir(exist_ok=True)
            profiling["BENCH_CPROFILE"] = str(cprofile)
        command = [sys.executable, "manage.py", "pbx_listen", "--reconcile-seconds", "3600"]
        command += shlex.split(args.listen_args)
        if layout != "many":
            command += ["--pbx", pbx_name(0)]
        listener = Child(
            "listener",
            command,
            dict(
                env,
                **secrets,
                PYTHONPATH=str(sitedir),
                BENCH_THREAD_MAP=str(thread_map),
                **profiling,
            ),
            workdir / f"{label}-listener.log",
        )
        children.append(listener)

        def synced() -> bool:
            found = leases(names)
            return len(found) == len(names) and all(c and r for c, r, _n in found.values())

        wait_for(synced, listener, f"{len(names)} listeners connected and resynced")
        company_ids = sorted(placed)
        quiet = Quiet(company_ids)
        # The resyncs' rows and snapshots published (nothing else is: the clocks stand still)
        wait_for(quiet.settled, listener, "the listeners' first publishing done", timeout=180)
        targets = [
            (company, f"ws://{HOST}:{args.port_base}/ws/dashboard/{slug}/?key={raw_key}")
            for company, slug in company_slugs().items()
            if company in companies
            for _n in range(args.clients)
        ]
        clients = context.Process(
            target=clients_main, args=(targets, ready, stop, results), daemon=True
        )
        clients.start()
        if not ready.wait(120):
            raise RuntimeError("the websockets did not all connect within 120 s")
        quiet = Quiet(company_ids)
        wait_for(quiet.settled, listener, "the websockets' snapshots done", timeout=60)
        pids = {
            "listener": listener.pid,
            "simulator": simulator.pid,
            "daphne": daphne.pid,
            "websocket clients": clients.pid,
        }
        before = {
            "cpu": {name: tree_cpu(pid) for name, pid in pids.items()},
            "postgres": postgres_cpu(database),
            "threads": thread_cpu(listener.pid),
            "memory": memory(listener.pid),
            "leases": leases(names),
            "seqs": seqs(company_ids),
            "load": os.getloadavg(),
            "pressure": cpu_pressure(),
        }
        started = time.monotonic()
        os.kill(simulator.pid, signal.SIGUSR1)
        rss: list[float] = []
        while time.monotonic() - started < seconds:
            time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - started))))
            listener.check()
            rss.append(memory(listener.pid)["VmRSS"])
        wall = time.monotonic() - started
        after = {
            "cpu": {name: tree_cpu(pid) for name, pid in pids.items()},
            "postgres": postgres_cpu(database),
            "threads": thread_cpu(listener.pid),
            "memory": memory(listener.pid),
            "load": os.getloadavg(),
            "pressure": cpu_pressure(),
        }
        wait_for(result_file.exists, simulator, "the simulators' counts", timeout=30)
        produced = json.loads(result_file.read_text())
        sent_events = produced["events"]
        settle_from = time.monotonic()

        def caught_up() -> bool:
            now = leases(names)
            return all(
                now[name][2] - before["leases"][name][2] >= sent_events[name] for name in names
            )

        with contextlib.suppress(RuntimeError):  # what is not applied is counted as lost
            wait_for(caught_up, listener, "every event applied", timeout=SETTLE_SECONDS)
        caught_up_after = time.monotonic() - settle_from
        time.sleep(3.0)  # the last batches' messages
        end_leases = leases(names)
        end_seqs = seqs(company_ids)
        time.sleep(2.0)  # what was published before reading the counters, delivered
        stop.set()
        received = results.get(timeout=120)
        if isinstance(received, str):
            raise RuntimeError(f"websocket clients failed: {received}")
        owners = thread_owners(thread_map, listener.pid, set(names))
    finally:
        stop.set()
        if clients is not None:
            clients.join(10)
            if clients.is_alive():
                clients.kill()
        if args.profile == "cpu" and listener is not None and listener.process.poll() is None:
            # each listener thread writes its profile once its batch is done: give it time
            os.killpg(listener.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                listener.process.wait(180)
        for child in reversed(children):
            child.stop()
    return {
        "label": label,
        "names": names,
        "placed": placed,
        "companies": companies,
        "seconds": wall,
        "before": before,
        "after": after,
        "rss": rss,
        "produced": produced,
        "applied": {n: end_leases[n][2] - before["leases"][n][2] for n in names},
        "caught_up_after": caught_up_after,
        "published": {c: end_seqs[c] - before["seqs"][c] for c in company_ids},
        "seq_range": {c: (before["seqs"][c], end_seqs[c]) for c in company_ids},
        "received": received,
        "owners": owners,
        "profile": {"wall": profile, "cpu": cprofile}.get(args.profile or ""),
    }


def company_slugs() -> dict[int, str]:
    from django.db import connection

    from pbx.models import Company

    found = dict(Company.objects.order_by("slug").values_list("pk", "slug"))
    connection.close()
    return found


# -- figures -------------------------------------------------------------------------------------


def quantiles(samples: list[float]) -> tuple[float, float, float, float] | None:
    """p50, p95, p99, max in ms."""
    if not samples:
        return None
    ordered = sorted(samples)
    if len(ordered) == 1:
        value = ordered[0] * 1000
        return value, value, value, value
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000, q[98] * 1000, ordered[-1] * 1000


def show(q: tuple[float, float, float, float] | None) -> str:
    if q is None:
        return "no samples"
    return f"{q[0]:6.1f} / {q[1]:6.1f} / {q[2]:6.1f} / {q[3]:7.1f}"


def analyse(phase: dict) -> dict:
    """Probes matched, messages delivered, latencies, CPU: everything printed of one phase."""
    from django.db import connection

    from pbx.models import PbxUser

    probes_by_company: dict[int, list] = defaultdict(list)

    company_of = dict(PbxUser.objects.values_list("pk", "company_id"))
    connection.close()
    for _name, sent in phase["produced"]["sent"].items():
        for user, on, at in sent:
            probes_by_company[company_of[user]].append((user, on, at))
    latencies: dict[int, list[float]] = defaultdict(list)  # company → probe latencies
    first_probe = min((at for probes in probes_by_company.values() for *_, at in probes), default=0)
    by_window: dict[int, list[float]] = defaultdict(list)  # 10 s window of the probe → latencies
    to_publish: dict[int, list[float]] = defaultdict(list)
    lost_probes: dict[int, int] = defaultdict(int)
    delivery: list[float] = []  # publish → websocket, every message
    missing: dict[int, int] = defaultdict(int)
    delivered: dict[int, int] = defaultdict(int)
    for company, messages in phase["received"]:
        low, high = phase["seq_range"][company]
        seen = set()
        by_user: dict[int, list] = defaultdict(list)
        for seq, kind, at, sent_at, user, busy in messages:
            if low < seq <= high:
                seen.add(seq)
                if sent_at:
                    delivery.append(at - datetime.fromisoformat(sent_at).timestamp())
            if kind == "user.status":
                by_user[user].append((busy, at, sent_at))
        delivered[company] += len(seen)
        missing[company] += (high - low) - len(seen)
        # A probe is seen when its user's dashboard first shows its state after it was sent:
        # the first user.status of that user in that state arriving later. Not "the next message
        # not yet matched": one message missing (a batch that held a change and its undoing
        # publishes the end state only) then shifted every later probe of the user by a cycle.
        for user, on, sent_at in probes_by_company[company]:
            match = next(
                (
                    message
                    for message in by_user[user]
                    if message[0] == on and message[1] >= sent_at
                ),
                None,
            )
            if match is None:
                lost_probes[company] += 1
                continue
            latencies[company].append(match[1] - sent_at)
            by_window[int((sent_at - first_probe) // 10)].append(match[1] - sent_at)
            if match[2]:
                to_publish[company].append(datetime.fromisoformat(match[2]).timestamp() - sent_at)
    seconds = phase["seconds"]
    cpu = {
        name: phase["after"]["cpu"][name] - phase["before"]["cpu"][name]
        for name in phase["after"]["cpu"]
    }
    cpu["PostgreSQL backends"] = phase["after"]["postgres"] - phase["before"]["postgres"]
    threads_before, threads_after = phase["before"]["threads"], phase["after"]["threads"]
    by_owner: dict[str, float] = defaultdict(float)
    for tid, used in threads_after.items():
        delta = used - threads_before.get(tid, 0.0)
        by_owner[phase["owners"].get(tid, "other")] += delta
    return {
        "latencies": latencies,
        "by_window": dict(sorted(by_window.items())),
        "to_publish": to_publish,
        "lost_probes": lost_probes,
        "probes": {c: len(p) for c, p in probes_by_company.items()},
        "delivery": delivery,
        "delivered": delivered,
        "missing": missing,
        "cpu": cpu,
        "threads": dict(by_owner),
        "seconds": seconds,
    }


def _pct(seconds: float, wall: float) -> str:
    return f"{seconds:.1f} ({seconds / wall * 100:.0f} %)"


def column(phase: dict, a: dict) -> list[tuple[str, str]]:
    """(row name, this phase's figure) of the side-by-side table."""
    wall = a["seconds"]
    pbxes = len(phase["names"])
    sent = sum(phase["produced"]["events"].values())
    applied = sum(phase["applied"].values())
    published = sum(phase["published"].values())
    latencies = [x for v in a["latencies"].values() for x in v]
    pressure = re.findall(r"[0-9.]+", phase["after"]["pressure"])
    mem = phase["after"]["memory"]
    caught_up = (
        f"{phase['caught_up_after']:.1f} s" if sent == applied else f"not in {SETTLE_SECONDS:.0f} s"
    )
    pbx_threads = sum(v for k, v in a["threads"].items() if k in phase["names"])
    ami_threads = sum(v for k, v in a["threads"].items() if k.endswith(" ami"))
    rows = [
        ("measured seconds", f"{wall:.0f}"),
        (
            "load average at start -> end (1 min)",
            f"{phase['before']['load'][0]:.1f} -> {phase['after']['load'][0]:.1f}",
        ),
        ("CPU pressure at end (tasks waited, 1 min)", f"{pressure[0]} %" if pressure else "?"),
        ("AMI events sent /s", f"{sent / wall:,.0f}"),
        ("AMI events sent", f"{sent:,}"),
        ("  applied by the listener", f"{applied:,}"),
        (
            f"  not applied {SETTLE_SECONDS:.0f} s after the traffic stopped (a)",
            f"{sent - applied:,}",
        ),
        ("  all applied, after the traffic stopped", caught_up),
        ("dashboard messages published", f"{published:,}"),
        ("  per company /s", f"{published / wall / len(phase['companies']):,.1f}"),
        ("  delivered to the websockets (distinct)", f"{sum(a['delivered'].values()):,}"),
        ("  lost (published - delivered)", f"{sum(a['missing'].values()):,}"),
        ("DND probes sent", f"{sum(a['probes'].values()):,}"),
        (
            "  matched / not seen (b)",
            f"{len(latencies):,} / {sum(a['lost_probes'].values()):,}",
        ),
        ("latency ms, p50 / p95 / p99 / max", ""),
        ("  AMI event -> websocket (probes)", show(quantiles(latencies))),
        (
            "    AMI event -> publish",
            show(quantiles([x for v in a["to_publish"].values() for x in v])),
        ),
        ("  publish -> websocket (every message)", show(quantiles(a["delivery"]))),
        ("CPU seconds (share of one core)", ""),
    ]
    for name in ("listener", "simulator", "daphne", "websocket clients", "PostgreSQL backends"):
        rows.append((f"  {name}", _pct(a["cpu"][name], wall)))
    rows += [
        (
            "  listener per PBX (total / PBXes)",
            f"{a['cpu']['listener'] / pbxes / wall * 100:.1f} %",
        ),
        ("  listener per event applied", f"{a['cpu']['listener'] / max(applied, 1) * 1e6:.0f} us"),
        ("  the PBXes' listener threads (sum)", f"{pbx_threads / wall * 100:.0f} %"),
        ("    per PBX (mean)", f"{pbx_threads / pbxes / wall * 100:.1f} %"),
        ("  their AMI sessions' threads (pyst2, sum)", f"{ami_threads / wall * 100:.0f} %"),
        ("    per PBX (mean)", f"{ami_threads / pbxes / wall * 100:.1f} %"),
    ]
    for owner in ("publisher", "main", "other"):
        rows.append(
            (f"  listener thread(s): {owner}", f"{a['threads'].get(owner, 0.0) / wall * 100:.1f} %")
        )
    rows += [
        ("listener RSS MB at end (peak)", f"{mem['VmRSS']:.0f} ({mem['VmHWM']:.0f})"),
        ("  per PBX (RSS / PBXes)", f"{mem['VmRSS'] / pbxes:.1f}"),
    ]
    return rows


def per_pbx(phase: dict, a: dict) -> None:
    print(
        f"\n  per PBX ({len(phase['names'])}-PBX phase): AMI events sent/s, applied, not applied (a) | "
        "messages published, lost | probes lost | probe latency ms p50 / p95 / p99 / max | "
        "CPU of its listener thread + its AMI session's two"
    )
    company_of_pbx = {name: c for c, name in phase["placed"].items()}
    wall = a["seconds"]
    for name in phase["names"]:
        company = company_of_pbx[name]
        events = phase["produced"]["events"][name]
        applied = phase["applied"][name]
        print(
            f"    {name} {events / wall:5.1f}/s {applied:>7,} {events - applied:>3} | "
            f"{phase['published'][company]:>6,} {a['missing'][company]:>3} | "
            f"{a['lost_probes'][company]:>3} | {show(quantiles(a['latencies'][company]))} | "
            f"{a['threads'].get(name, 0.0) / wall * 100:4.1f} % + "
            f"{a['threads'].get(name + ' ami', 0.0) / wall * 100:4.1f} %"
        )


# Where a listener-<pbx> thread's wall time went (first match wins, on its sampled stacks).
WALL_CATEGORIES = (
    ("waiting for the next event", ":_drain"),
    ("resync (a fresh snapshot)", "listener.py:_resync"),
    ("apply: announce (version row, status rows)", "state_tables.py:_announced"),
    ("apply: the events' writes", "state_tables.py:_apply_batch"),
    ("apply: other", "state_tables.py:apply_events"),
    ("lease.record (events counted)", "lease.py:record"),
    ("publish_queues: queue groups read", "dashboard/selectors.py:queue_groups_for"),
    ("publish: numbered and buffered (Redis)", "broadcast.py:_number_and_store"),
    ("publish: group_send (via the send loop)", "sender.py:group_send"),
    ("publish: other", "broadcast.py:publish;"),
    ("publish: waiting for the publish lock", "=broadcast.py:publish"),  # "=": the leaf
    ("publish_users: rows", "broadcast.py:publish_users"),
)


def print_wall_profile(phase: dict, path: Path) -> None:
    names = set(phase["names"])
    spent: dict[str, int] = defaultdict(int)
    others: dict[str, int] = defaultdict(int)
    total = 0
    for line in path.read_text().splitlines():
        thread, stack, count = line.split("\t")
        n = int(count)
        if thread[len("listener-") :] not in names:
            others[thread] += n
            continue
        total += n
        for label, key in WALL_CATEGORIES:
            if stack.endswith(key[1:]) if key.startswith("=") else key in stack:
                spent[label] += n
                break
        else:
            spent["other: " + stack.rsplit(";", 1)[-1]] += n
    print(
        f"\n  wall-time profile of the {phase['label']} phase: {total:,} samples of the PBXes' "
        "listener threads (every 10 ms, each thread):"
    )
    for label, n in sorted(spent.items(), key=lambda kv: -kv[1])[:16]:
        print(f"    {n / max(total, 1) * 100:5.1f} %  {label}")
    print(
        "  samples of the other listener threads: "
        + ", ".join(f"{k} {v:,}" for k, v in others.items())
    )


def print_cpu_profile(phase: dict, path: Path, top: int = 30) -> None:
    import pstats

    files = sorted(str(f) for f in path.glob("*.prof"))
    if not files:
        print(f"\n  no CPU profile of the {phase['label']} phase (no listener thread wrote one)")
        return
    stats = pstats.Stats(*files)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in entries.values())
    print(
        f"\n  CPU profile of the {phase['label']} phase ({len(files)} listener threads under "
        f"cProfile, thread CPU clock; {total:.1f} s profiled, cProfile's own cost included):"
    )

    def where(key: tuple) -> str:
        filename, _line, func = key
        return f"{'/'.join(filename.rsplit('/', 2)[-2:])}:{func}"

    print("    own time (tottime), top:")
    for key, (_cc, calls, tt, _ct, _callers) in sorted(entries.items(), key=lambda kv: -kv[1][2])[
        :top
    ]:
        print(f"      {tt / total * 100:5.1f} %  {calls:>9,} calls  {where(key)}")
    print("    with what they call (cumtime), SWAN's functions:")
    swan = [
        (key, value)
        for key, value in entries.items()
        if any(f"/{part}/" in key[0] for part in ("pbx", "dashboard", "swanproject"))
        and ".venv" not in key[0]
    ]
    for key, (_cc, calls, _tt, ct, _callers) in sorted(swan, key=lambda kv: -kv[1][3])[:top]:
        print(f"      {ct / total * 100:5.1f} %  {calls:>9,} calls  {where(key)}")


def print_profile(phase: dict) -> None:
    path = phase["profile"]
    if path.suffix == ".tsv":
        if path.exists():
            print_wall_profile(phase, path)
        else:
            print(
                f"\n  no wall-time profile of the {phase['label']} phase (the listener wrote none)"
            )
    else:
        print_cpu_profile(phase, path)


TITLES = {
    "single": "1 PBX of 1, 50 ev/s",
    "ceiling": "ceiling: 1 PBX, {n} cos",
    "many": "{n} PBXes",
}


def report(phases: list[dict]) -> None:
    analysed = [analyse(phase) for phase in phases]
    columns = [column(phase, a) for phase, a in zip(phases, analysed, strict=True)]
    titles = [TITLES[p["label"]].format(n=len(p["placed"])) for p in phases]
    print()
    print(f"  {'':50}" + "".join(f"{t:>28}" for t in titles))
    for index, (name, _value) in enumerate(columns[0]):
        print(f"  {name:50}" + "".join(f"{c[index][1]:>28}" for c in columns))
    for phase, a in zip(phases, analysed, strict=True):
        windows = ", ".join(
            f"{10 * w}-{10 * w + 10} s {statistics.median(v) * 1000:.0f} / "
            f"{sorted(v)[int(0.99 * (len(v) - 1))] * 1000:.0f}"
            for w, v in a["by_window"].items()
        )
        print(f"  {phase['label']}: probe latency ms p50 / p99 by when it was sent: {windows}")
    by_label = {p["label"]: p for p in phases}
    if "many" in by_label and len(by_label) > 1:
        many = by_label["many"]
        one = by_label.get("single") or by_label["ceiling"]
        extra = (many["after"]["memory"]["VmRSS"] - one["after"]["memory"]["VmRSS"]) / max(
            len(many["names"]) - 1, 1
        )
        print(
            f"  each PBX beyond the first: {extra:+.1f} MB of RSS "
            f"((RSS - the {one['label']} phase's) / (PBXes - 1))"
        )
    print(
        f"  (a) events the listener had not applied {SETTLE_SECONDS:.0f} s after the simulators "
        "stopped: a backlog (its queue is unbounded), counted as lost here"
    )
    print(
        "  (b) a probe is matched, on each socket, to the first later user.status of its user in "
        "its state (when the dashboard first shows it); not seen: no such message came (messages "
        "themselves: see 'lost')"
    )
    for phase, a in zip(phases, analysed, strict=True):
        if phase["label"] == "many":
            per_pbx(phase, a)
    phase, a = phases[-1], analysed[-1]
    q = quantiles([x for v in a["latencies"].values() for x in v])
    verdict = (
        "no samples" if q is None else f"{'met' if q[2] <= 100 else 'NOT met'} ({q[2]:.0f} ms)"
    )
    lost = (
        sum(phase["produced"]["events"].values())
        - sum(phase["applied"].values())
        + sum(a["missing"].values())
        + sum(a["lost_probes"].values())
    )
    print(f"\n  target (item 7), {titles[-1]}: event -> websocket p99 <= 100 ms: {verdict}")
    print(
        f"  target: no lost events or messages: {'met' if lost == 0 else 'NOT met'} ({lost} lost)"
    )
    for phase in phases:
        if phase["profile"] is not None:
            print_profile(phase)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["orchestrator", "simulator"], default="orchestrator")
    parser.add_argument(
        "--phase",
        choices=["both", "all", "single", "ceiling", "many"],
        default="both",
        help="both: ceiling, then many; all: single first",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="the 20-PBX phase")
    parser.add_argument(
        "--ceiling-seconds", type=float, default=30.0, help="the ceiling (and single) phase"
    )
    parser.add_argument("--pbxes", type=int, default=20)
    parser.add_argument("--agents", type=int, default=100, help="queue agents per PBX")
    parser.add_argument("--call-rate", type=float, default=60.0, help="calls a minute per PBX")
    parser.add_argument("--probes", type=float, default=10.0, help="DND changes/s per PBX")
    parser.add_argument("--clients", type=int, default=1, help="websockets per company")
    parser.add_argument("--port-base", type=int, default=18700)
    parser.add_argument(
        "--listen-args", default="", help='more pbx_listen arguments, e.g. "--batch-wait 0.1"'
    )
    parser.add_argument(
        "--profile",
        choices=["wall", "cpu"],
        help="wall: sample the listener threads' stacks every 10 ms; cpu: cProfile each listener "
        "thread on its CPU clock. Either slows the listener: figures of a profiled run are not "
        "the benchmark's",
    )
    parser.add_argument("--layout", choices=list(PHASES.values()), help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.seconds = max(5.0, min(args.seconds, 600.0))
    args.ceiling_seconds = max(5.0, min(args.ceiling_seconds, 600.0))
    if not 1 <= args.pbxes <= 80:
        raise SystemExit("--pbxes: 1 to 80 (their ports follow --port-base + 10)")
    if args.role == "simulator":
        simulator_main(args)
        return

    setup()
    flush_redis()
    raw_key = build(args.pbxes, args.agents, args.port_base)
    workdir = Path(tempfile.mkdtemp(prefix="swan-many-pbxes-"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Many PBXes, one listener process: {args.pbxes} PBXes x {args.agents} agents "
        f"(+{BACK_OFFICE} back-office users), {args.call_rate:g} calls/min and {args.probes:g} "
        f"DND probes/s per PBX, {args.clients} websocket(s) per company; PostgreSQL "
        f"{os.environ['DATABASE_URL'].rsplit('/', 1)[1]}, {REDIS_URL}; {os.cpu_count()} CPUs, "
        f"load average {load}; {cpu_pressure()}; logs in {workdir}"
        + (f"; pbx_listen {args.listen_args}" if args.listen_args else "")
    )
    wanted = {"both": ["ceiling", "many"], "all": ["single", "ceiling", "many"]}.get(
        args.phase, [args.phase]
    )
    phases = []
    try:
        for label in wanted:
            seconds = args.seconds if label == "many" else args.ceiling_seconds
            phases.append(
                run_phase(args, label=label, seconds=seconds, raw_key=raw_key, workdir=workdir)
            )
    finally:
        flush_redis()
    report(phases)


if __name__ == "__main__":
    main()
