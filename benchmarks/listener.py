"""The PBX listener under load, on PostgreSQL + channels-redis.

1. Throughput: the simulator at full speed (an hour of a busy call centre in one burst) against
   the real Listener; events applied per second with the dashboard publisher, and with a null one.
2. Latency: AMI event → websocket message, p50/p99/max over 500 API-key clients of a daphne
   subprocess, with the listener in this process publishing through Redis.

Run: .venv/bin/python benchmarks/listener.py [--part throughput|latency|all] [--call-rate 30]
         [--clients 500] [--rate 25] [--duration 20]
Environment: BENCH_SERVER_URL, BENCH_DATABASE (default swan_bench_listener, created and migrated
by _setup.py), BENCH_REDIS_URL (default redis://127.0.0.1:6379/11; that Redis database is
flushed). Needs `websockets` for part 2. Talks to 127.0.0.1 only, stops by itself (about 2 min).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ["REDIS_URL"] = REDIS_URL
# Its own database by default: other benchmarks truncate swan_bench's tables while they run.
os.environ.setdefault("BENCH_DATABASE", "swan_bench_listener")
# The listener runs as in production: no per-query debug bookkeeping, no info chatter.
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "swan-benchmark-only")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from _setup import ROOT, cpu_of, setup, stat_fields  # noqa: E402

USERS = 100
QUEUES = 10
SEED = 11
# Part 1: a busy call centre (1,800 calls an hour for 100 agents) with frequent pauses.
BUSY = dict(call_rate=30.0, pauses_per_agent_hour=12.0)
BURST_SECONDS = 3600.0  # simulated time stepped in one go
STEP_SECONDS = 5.0  # the burst is sent in slices of this much simulated time
THROUGHPUT_TIMEOUT = 240.0
# Part 2
CLIENTS = 500
RATE = 25.0  # device state changes per second
DURATION = 20.0
SETTLE = 3.0  # seconds to wait for late messages after the last event
START_TIME = 1_800_000_000.0  # the simulated clock's epoch: fixed, so both runs are identical


# -- the directory ----------------------------------------------------------------------------


def build_directory() -> None:
    """One company, USERS users with one terminal each, QUEUES queues; live state emptied."""
    from django.db import connection

    from pbx.directory.loading import directory_load

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pbx_company, pbx_devicestate, pbx_queuememberstate, pbx_queuecallerstate, "
            "pbx_livechannel, pbx_userpresence, pbx_listenerlease, pbx_apikey CASCADE"
        )
    queues = [f"q{n:02d}" for n in range(QUEUES)]
    users = [
        {
            "extension": str(200 + n),
            "name": f"Agent {200 + n}",
            # every agent answers two queues: 20 members a queue
            "queues": [queues[n % QUEUES], queues[(n + 3) % QUEUES]],
            "terminals": [
                {
                    "mac": f"00:15:65:00:{n // 256:02x}:{n % 256:02x}",
                    "interface": f"PJSIP/{200 + n}",
                }
            ],
        }
        for n in range(USERS)
    ]
    directory_load(
        {
            "companies": [
                {
                    "slug": "bench",
                    "name": "Bench",
                    "queues": [{"name": name} for name in queues],
                    "users": users,
                }
            ]
        }
    )


def reset_live_state() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pbx_devicestate, pbx_queuememberstate, pbx_queuecallerstate, "
            "pbx_livechannel, pbx_userpresence, pbx_listenerlease"
        )


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# -- the listener on a thread ------------------------------------------------------------------


class NullPublisher:
    def changes(self, changes) -> None:
        pass

    def resynced(self, pbx, company_ids) -> None:
        pass

    def connection(self, pbx: str, connected: bool) -> None:
        pass


class Counter:
    """Wraps the listeners' BatchCombiner.apply and the publisher: events applied, time in each."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = 0
        self.batches = 0
        self.apply_seconds = 0.0
        self.publish_seconds = 0.0
        self.last_at = 0.0
        self.counting = False
        self.done = threading.Event()
        self.target = None

    def reset(self, target: int | None) -> None:
        with self.lock:
            self.events = self.batches = 0
            self.apply_seconds = self.publish_seconds = 0.0
            self.target = target
            self.counting = True
            self.done.clear()

    def wrap_apply(self, apply):
        counter = self

        def apply_events(combiner, state, events):
            started = time.monotonic()
            changes = apply(combiner, state, events)
            finished = time.monotonic()
            with counter.lock:
                if counter.counting:
                    counter.events += len(events)
                    counter.batches += 1
                    counter.apply_seconds += finished - started
                    counter.last_at = finished
                    if counter.target is not None and counter.events >= counter.target:
                        counter.done.set()
            return changes

        return apply_events

    def wrap_publisher(self, publisher):
        counter = self
        inner = publisher.changes

        def changes(changes):
            started = time.monotonic()
            inner(changes)
            with counter.lock:
                if counter.counting:
                    counter.publish_seconds += time.monotonic() - started

        publisher.changes = changes
        return publisher


class RunningListener:
    def __init__(self, port: int, publisher, name: str):
        from pbx.gateway.ami import AmiGateway
        from pbx.live.listener import Listener, ListenerSettings
        from pbx.models import DEFAULT_PBX

        # The bench company is on the default PBX: `name` names the run (its lease holder).
        self.listener = Listener(
            gateway_factory=lambda: AmiGateway("127.0.0.1", port, "swan", "bench", timeout=5.0),
            publisher=publisher,
            settings=ListenerSettings(name=DEFAULT_PBX),
            holder=f"bench-{name}",
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"listener-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from django.db import connection

        try:
            self.listener.run(self.stop)
        finally:
            connection.close()

    def wait_active(self, timeout: float = 30.0) -> None:
        if not self.listener.active.wait(timeout):
            raise RuntimeError("the listener did not become active")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def simulator(behaviour, config):
    from pbx.simulator import CallCentre, SimulatedPbx

    centre = CallCentre(config, behaviour=behaviour, seed=SEED, start_time=START_TIME)
    sim = SimulatedPbx(centre, username="swan", secret="bench", speed=0)
    sim.start()
    return sim


# -- part 1: throughput ------------------------------------------------------------------------


def emitted_offline(behaviour, config) -> tuple[int, dict[str, int]]:
    """Runs an identical call centre (same config, seed, clock, steps) and counts its events."""
    from pbx.simulator import CallCentre

    centre = CallCentre(config, behaviour=behaviour, seed=SEED, start_time=START_TIME)
    kinds: dict[str, int] = defaultdict(int)
    stepped = 0.0
    while stepped < BURST_SECONDS:
        centre.step(STEP_SECONDS)
        stepped += STEP_SECONDS
        for event in centre.drain_events():
            kinds[event.get("Event") or ""] += 1
    return sum(kinds.values()), dict(kinds)


def throughput_run(label: str, publisher, behaviour, config, expected: int, counter: Counter):
    reset_live_state()
    sim = simulator(behaviour, config)
    running = RunningListener(sim.port, counter.wrap_publisher(publisher), name=f"bench-{label}")
    try:
        running.wait_active()
        time.sleep(0.5)  # the snapshot's own publishing settles
        counter.reset(expected)
        started = time.monotonic()
        stepped = 0.0
        while stepped < BURST_SECONDS:
            sim.step(STEP_SECONDS)
            stepped += STEP_SECONDS
        sent = time.monotonic() - started
        finished = counter.done.wait(THROUGHPUT_TIMEOUT)
        with counter.lock:
            counter.counting = False
            events, batches = counter.events, counter.batches
            applying, publishing = counter.apply_seconds, counter.publish_seconds
            elapsed = (counter.last_at or time.monotonic()) - started
    finally:
        running.close()
        sim.stop()
    rate = events / elapsed if elapsed > 0 else 0.0
    status = "" if finished else f"  TIMED OUT after {THROUGHPUT_TIMEOUT:.0f} s"
    print(
        f"  {label:<22} {events:>7,} of {expected:,} events in {elapsed:6.2f} s = "
        f"{rate:7,.0f} events/s  ({batches} batches, avg {events / max(batches, 1):.0f}; "
        f"apply_events {applying:.2f} s, publish {publishing:.2f} s; "
        f"simulator sent all in {sent:.2f} s){status}"
    )
    return rate


def part_throughput() -> None:
    from dashboard.publisher import DashboardPublisher
    from pbx.live.combining import BatchCombiner
    from pbx.simulator import Behaviour
    from pbx.simulator.from_directory import config_from_directory

    config = config_from_directory()
    behaviour = Behaviour(**BUSY)
    expected, kinds = emitted_offline(behaviour, config)
    top = ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:8])
    print(
        f"\n1. Listener throughput: {USERS} agents, {QUEUES} queues, call_rate "
        f"{behaviour.call_rate:g}/min, {behaviour.pauses_per_agent_hour:g} pauses/agent-hour, "
        f"{BURST_SECONDS / 3600:g} h simulated in one burst"
    )
    print(f"  emitted (offline twin): {expected:,} events; {top}")
    counter = Counter()
    original = BatchCombiner.apply
    BatchCombiner.apply = counter.wrap_apply(original)
    try:
        throughput_run(
            "dashboard publisher", DashboardPublisher(), behaviour, config, expected, counter
        )
        throughput_run("null publisher", NullPublisher(), behaviour, config, expected, counter)
    finally:
        BatchCombiner.apply = original


# -- part 2: latency ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DAPHNE_LOG = os.environ.get("BENCH_DAPHNE_LOG", "/tmp/swan-bench-daphne.log")


def start_daphne(port: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=REDIS_URL,
        DEBUG="true",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    env.pop("SECRET_KEY", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "swanproject.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: nobody reads a pipe while clients run, and a full one blocks daphne.
        stderr=open(DAPHNE_LOG, "wb"),  # noqa: SIM115 (the child holds it; closed at exit)
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(DAPHNE_LOG, errors="replace") as log:
                raise RuntimeError(f"daphne exited: {log.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    stop_daphne(process)
    raise RuntimeError("daphne did not start listening within 30 s")


def stop_daphne(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # daphne may ignore SIGTERM under load
        process.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0 elsewhere."""
    fields = stat_fields(f"/proc/{pid}/stat")
    return cpu_of(fields) if fields else 0.0


def clients_main(url: str, count: int, ready, stop, results) -> None:
    """In a child process: `count` websocket clients; sends back [(user id, dnd, arrival)] each."""
    import websockets

    async def client(index: int, connected: asyncio.Event, arrivals: list) -> None:
        async with websockets.connect(
            url, max_size=None, open_timeout=30, ping_interval=None
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
                    arrivals.append(
                        (payload["id"], payload["status"] == "busy", at, message["seq"])
                    )

    async def main() -> None:
        arrivals: list[list] = [[] for _ in range(count)]
        events = [asyncio.Event() for _ in range(count)]
        tasks = []
        for index in range(count):
            tasks.append(asyncio.create_task(client(index, events[index], arrivals[index])))
            await asyncio.sleep(0.005)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
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


def part_latency() -> None:
    from dashboard.publisher import DashboardPublisher
    from pbx.models import ApiKey, PbxUser
    from pbx.simulator import QUIET
    from pbx.simulator.from_directory import config_from_directory

    reset_live_state()
    flush_redis()
    key = ApiKey(name="bench-listener", all_companies=True)
    raw_key = key.set_new_key()
    key.save()
    extensions = dict(PbxUser.objects.values_list("extension", "pk"))
    config = config_from_directory()
    port = free_port()
    print(
        f"\n2. AMI event → websocket message: {CLIENTS} API-key clients of daphne over "
        f"channels-redis, {RATE:g} DND changes/s for {DURATION:g} s"
    )
    daphne = start_daphne(port)
    sim = simulator(QUIET, config)
    published: list[tuple[float, float, frozenset[int]]] = []  # (started, done, user ids)
    publisher = DashboardPublisher()
    inner = publisher.changes

    def changes(changes) -> None:
        began = time.monotonic()
        inner(changes)
        published.append((began, time.monotonic(), frozenset(changes.user_ids)))

    publisher.changes = changes
    running = RunningListener(sim.port, publisher, name="bench-latency")
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    clients = None
    try:
        running.wait_active()
        url = f"ws://127.0.0.1:{port}/ws/dashboard/bench/?key={raw_key}"
        clients = context.Process(
            target=clients_main, args=(url, CLIENTS, ready, stop, results), daemon=True
        )
        clients.start()
        cpu_pids = {"daphne": daphne.pid, "clients": clients.pid, "listener+bench": os.getpid()}
        if not ready.wait(90):
            raise RuntimeError("the websocket clients did not all connect within 90 s")
        time.sleep(0.5)
        sent: list[tuple[int, bool, float]] = []  # (user id, dnd on, sent at)
        cpu_before = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
        wall_before = time.monotonic()
        ordered = sorted(extensions)
        total = int(RATE * DURATION)
        started = time.monotonic()
        for n in range(total):
            at = started + n / RATE
            pause = at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            extension = ordered[n % len(ordered)]
            on = (n // len(ordered)) % 2 == 0
            with sim.lock:
                sim.centre.set_custom_state(f"Custom:DND{extension}", "BUSY" if on else "NOT_INUSE")
                sent.append((extensions[extension], on, time.monotonic()))
                sim.step(0)
        time.sleep(SETTLE)
        wall = time.monotonic() - wall_before
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in cpu_pids.items()}
        stop.set()
        arrivals = results.get(timeout=30)
        if isinstance(arrivals, str):
            raise RuntimeError(f"websocket clients failed: {arrivals}")
    finally:
        stop.set()
        if clients is not None:
            clients.join(10)
            if clients.is_alive():
                clients.kill()
        running.close()
        sim.stop()
        stop_daphne(daphne)
    latencies, lost = match(sent, arrivals)
    print(
        f"  {len(sent)} events x {CLIENTS} clients = {len(sent) * CLIENTS:,} expected messages, "
        f"{len(latencies):,} matched, {lost:,} lost"
    )
    print(f"  AMI event → websocket message: {summary(latencies)}")
    delivered = max(len(latencies), 1)
    print(
        "  CPU over the "
        + f"{wall:.1f} s: "
        + ", ".join(
            f"{name} {seconds:.2f} s ({seconds / wall * 100:.0f}% of a core, "
            f"{seconds / delivered * 1e6:.0f} µs per message delivered)"
            for name, seconds in cpu.items()
        )
    )
    # Where the time goes: in this process (queued, applied, published), then past Redis.
    applied, publishing = [], []
    for user_id, _on, sent_at in sent:
        found = next(
            (p for p in published if p[0] >= sent_at and user_id in p[2]),
            None,
        )
        if found is not None:
            applied.append(found[0] - sent_at)
            publishing.append(found[1] - found[0])
    by_seq: dict[int, list[float]] = defaultdict(list)
    for messages in arrivals:
        for _user, _dnd, at, seq in messages:
            by_seq[seq].append(at)
    fanout = [max(times) - min(times) for times in by_seq.values()]
    print(
        f"    AMI event → publish starts (AMI read, queue, batch wait, apply): {summary(applied)}"
    )
    print(
        f"    publish (rows, seq, buffer, group_send):                       {summary(publishing)}"
    )
    print(
        f"    first → last of the {CLIENTS} clients to get one message:         {summary(fanout)}"
    )


def summary(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else ordered * 99
    return f"p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"


def match(sent, arrivals) -> tuple[list[float], int]:
    """Each event (user, dnd) matches, per client, the first later message of that user and state."""
    latencies: list[float] = []
    lost = 0
    for messages in arrivals:
        by_user: dict[int, list] = defaultdict(list)
        for user_id, dnd, at, _seq in messages:
            by_user[user_id].append((dnd, at))
        cursor: dict[int, int] = defaultdict(int)
        for user_id, on, sent_at in sent:
            queue = by_user[user_id]
            i = cursor[user_id]
            while i < len(queue) and queue[i][0] != on:
                i += 1
            if i < len(queue):
                latencies.append(queue[i][1] - sent_at)
                cursor[user_id] = i + 1
            else:
                lost += 1
    return latencies, lost


def main() -> None:
    global CLIENTS, RATE, DURATION
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["throughput", "latency", "all"], default="all")
    parser.add_argument("--call-rate", type=float, default=BUSY["call_rate"], help="per minute")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--rate", type=float, default=RATE, help="status changes per second")
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds")
    args = parser.parse_args()
    BUSY["call_rate"], CLIENTS, RATE, DURATION = (
        args.call_rate,
        args.clients,
        args.rate,
        args.duration,
    )
    setup()
    flush_redis()
    build_directory()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"PostgreSQL database {os.environ['DATABASE_URL'].rsplit('/', 1)[1]}, {REDIS_URL}; "
        f"{os.cpu_count()} CPUs, load average {load} (figures move with the machine's load)"
    )
    try:
        if args.part in ("throughput", "all"):
            part_throughput()
        if args.part in ("latency", "all"):
            part_latency()
    finally:
        flush_redis()


if __name__ == "__main__":
    main()
