"""A thundering herd: every dashboard reconnecting at once after the web tier restarts.

N API-key clients follow a daphne subprocess while this process publishes a numbered message
every 1/RATE s. daphne is killed (SIGKILL, a crash or a deploy's hard stop) and started again on
the same port; the clients reconnect at once, retrying every 0.25 s, with `?since=<last seq>`.
Printed: time until every client is back (from the kill and from the new daphne listening),
refused attempts (an HTTP status instead of the handshake, a close code, a handshake timeout),
messages lost (published, neither received nor covered by a later snapshot), resumes against
snapshots, and the peak PostgreSQL and Redis connections during the run beside their limits.

Run: .venv/bin/python benchmarks/ws_herd.py [--clients 200] [--rate 20] [--rounds 1]
Environment: as benchmarks/listener.py (BENCH_SERVER_URL, BENCH_DATABASE, BENCH_REDIS_URL,
flushed). Talks to 127.0.0.1 only, stops by itself (about 1 min a round).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import threading
import time

import listener as bench  # sets the environment (Redis, database, DEBUG) before Django starts
from _setup import SERVER_URL

CLIENTS = 200
RATE = 20.0  # messages published per second, throughout
BEFORE = 3.0  # seconds of publishing before the kill
BACK_LIMIT = 60.0  # give up waiting for the herd after this
AFTER = 3.0  # seconds of publishing once every client is back
RETRY = 0.25  # the clients' reconnect interval


def herd_main(url: str, count: int, ready, all_back, kill_at, stop, results) -> None:
    """In a child process: `count` clients that reconnect with ?since=; sends back their logs."""
    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    async def client(log: dict, connected: asyncio.Event) -> None:
        while not stop.is_set():
            since = f"&since={log['last']}" if log["last"] else ""
            log["attempts"] += 1
            try:
                async with websockets.connect(
                    url + since, max_size=None, open_timeout=10, ping_interval=None
                ) as ws:
                    async for raw in ws:
                        message = json.loads(raw)
                        kind = message["type"]
                        if kind in ("snapshot", "resumed"):
                            if kill_at.value and not log["back"]:
                                log["back"] = time.monotonic()
                            log[kind + "s"] += 1
                            connected.set()
                        if kind == "snapshot":
                            log["covered"].append(message["seq"])
                            log["last"] = max(log["last"], message["seq"])
                        elif "seq" in message:
                            log["seqs"].append(message["seq"])
                            log["last"] = max(log["last"], message["seq"])
                        if kind == "resumed" and message.get("last") is not None:
                            log["last"] = max(log["last"], message["last"])
            except InvalidStatus as exc:
                log["refused"].append(f"HTTP {exc.response.status_code}")
            except InvalidHandshake as exc:  # daphne dropped the handshake (its connect timeout)
                log["refused"].append(type(exc).__name__)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                if code not in (1000, 1001, 1006):
                    log["refused"].append(f"close {code}")
            except TimeoutError:
                log["refused"].append("handshake timeout")
            except OSError:
                log["unreachable"] += 1  # daphne not listening (yet)
            await asyncio.sleep(RETRY)

    async def main() -> None:
        logs = [
            {
                "last": 0,
                "seqs": [],
                "covered": [],
                "snapshots": 0,
                "resumeds": 0,
                "back": 0.0,
                "attempts": 0,
                "refused": [],
                "unreachable": 0,
            }
            for _ in range(count)
        ]
        events = [asyncio.Event() for _ in range(count)]
        tasks = []
        for log, event in zip(logs, events, strict=True):
            tasks.append(asyncio.create_task(client(log, event)))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            if kill_at.value and all(log["back"] for log in logs):
                all_back.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(logs)

    try:
        asyncio.run(main())
    except BaseException as exc:
        results.put(repr(exc))


class Peaks(threading.Thread):
    """Samples PostgreSQL's and Redis's connection counts every 50 ms; keeps the peaks."""

    def __init__(self, database: str):
        super().__init__(daemon=True)
        import psycopg
        import redis

        server = SERVER_URL.replace("postgres://", "postgresql://", 1)
        self.pg = psycopg.connect(server, autocommit=True)
        self.redis = redis.Redis.from_url(bench.REDIS_URL)
        self.database = database
        self.postgres = self.postgres_all = self.redis_clients = 0
        self.max_connections = int(self.pg.execute("SHOW max_connections").fetchone()[0])
        self.max_clients = int(self.redis.config_get("maxclients")["maxclients"])
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            mine, every = self.pg.execute(
                "SELECT count(*) FILTER (WHERE datname = %s), count(*) FROM pg_stat_activity",
                [self.database],
            ).fetchone()
            self.postgres = max(self.postgres, mine)
            self.postgres_all = max(self.postgres_all, every)
            self.redis_clients = max(
                self.redis_clients, self.redis.info("clients")["connected_clients"]
            )

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join(5)
        self.pg.close()
        self.redis.close()


class Publisher(threading.Thread):
    """Publishes one numbered message every 1/RATE s; remembers every seq it handed out."""

    def __init__(self, company_id: int, rate: float):
        super().__init__(daemon=True)
        self.company_id = company_id
        self.interval = 1 / rate
        self.seqs: list[int] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from dashboard.broadcast import publish

        next_at = time.monotonic()
        try:
            while not self.stopped.is_set():
                self.seqs.append(publish(self.company_id, "calls.hourly", {"n": len(self.seqs)}))
                next_at += self.interval
                self.stopped.wait(max(0.0, next_at - time.monotonic()))
        finally:
            connection.close()


def one_round(raw_key: str, company_id: int, clients: int, rate: float) -> dict:
    port = bench.free_port()
    url = f"ws://127.0.0.1:{port}/ws/dashboard/bench/?key={raw_key}"
    peaks = Peaks(os.environ["DATABASE_URL"].rsplit("/", 1)[1])
    context = multiprocessing.get_context("spawn")
    ready, all_back, stop = context.Event(), context.Event(), context.Event()
    kill_at = context.Value("d", 0.0)
    results = context.Queue()
    daphne = bench.start_daphne(port)
    publisher = Publisher(company_id, rate)
    herd = context.Process(
        target=herd_main, args=(url, clients, ready, all_back, kill_at, stop, results), daemon=True
    )
    herd.start()
    try:
        if not ready.wait(180):
            raise RuntimeError(f"the {clients} clients did not all connect within 180 s")
        peaks.start()
        publisher.start()
        time.sleep(BEFORE)
        os.killpg(daphne.pid, signal.SIGKILL)
        daphne.wait(10)
        killed = time.monotonic()
        kill_at.value = killed
        daphne = bench.start_daphne(port)
        listening = time.monotonic()
        back = all_back.wait(BACK_LIMIT)
        time.sleep(AFTER)
        publisher.stopped.set()
        publisher.join(10)
        time.sleep(2.0)  # the last messages travel
        stop.set()
        logs = results.get(timeout=60)
        if isinstance(logs, str):
            raise RuntimeError(f"the clients failed: {logs}")
    finally:
        stop.set()
        publisher.stopped.set()
        peaks.stop()
        herd.join(10)
        if herd.is_alive():
            herd.kill()
        bench.stop_daphne(daphne)
    return summarise(logs, publisher.seqs, killed, listening, back, peaks)


def summarise(logs, published, killed, listening, back, peaks) -> dict:
    lost = 0
    for log in logs:
        received = set(log["seqs"])
        first = min(log["covered"]) if log["covered"] else 0
        covered = sorted(log["covered"])
        for seq in published:
            # A snapshot at S stands for every message up to S.
            if seq <= first or seq in received or any(seq <= s for s in covered if s > first):
                continue
            lost += 1
    backs = sorted(log["back"] for log in logs if log["back"])
    refused = [reason for log in logs for reason in log["refused"]]
    return {
        "clients": len(logs),
        "back": len(backs),
        "all_back": back,
        "from_kill": (backs[-1] - killed) if backs else None,
        "from_listening": (backs[-1] - listening) if backs else None,
        "median_from_listening": (backs[len(backs) // 2] - listening) if backs else None,
        "restart": listening - killed,
        "refused": refused,
        "unreachable": sum(log["unreachable"] for log in logs),
        "resumed": sum(log["resumeds"] for log in logs),
        "snapshots_after_kill": sum(log["snapshots"] for log in logs) - len(logs),
        "published": len(published),
        "lost": lost,
        "peaks": peaks,
    }


def report(result: dict) -> None:
    peaks = result["peaks"]
    reasons: dict[str, int] = {}
    for reason in result["refused"]:
        reasons[reason] = reasons.get(reason, 0) + 1
    print(
        f"  {result['back']}/{result['clients']} back; all back "
        f"{result['from_listening']:.2f} s after the new daphne listened "
        f"(median {result['median_from_listening']:.2f} s), {result['from_kill']:.2f} s after "
        f"the kill (restart took {result['restart']:.2f} s)"
        if result["from_kill"] is not None
        else f"  0/{result['clients']} back"
    )
    print(
        f"  refused attempts: {len(result['refused'])} {reasons or ''}; "
        f"attempts while nothing listened: {result['unreachable']}"
    )
    print(
        f"  {result['published']} messages published x {result['clients']} clients: "
        f"{result['lost']} lost; {result['resumed']} resumed with ?since=, "
        f"{result['snapshots_after_kill']} got a fresh snapshot instead"
    )
    print(
        f"  peak connections: PostgreSQL {peaks.postgres} to this database, "
        f"{peaks.postgres_all} in all (max_connections {peaks.max_connections}); "
        f"Redis {peaks.redis_clients} clients (maxclients {peaks.max_clients})"
    )
    if not result["all_back"]:
        print(f"  NOT ALL BACK within {BACK_LIMIT:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--rate", type=float, default=RATE, help="messages per second")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    bench.setup()
    bench.flush_redis()
    bench.build_directory()
    from pbx.models import ApiKey, Company

    key = ApiKey(name="bench-herd", all_companies=True)
    raw_key = key.set_new_key()
    key.save()
    company_id = Company.objects.get(slug="bench").pk
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Thundering herd: {args.clients} API-key clients of one daphne, {args.rate:g} messages/s "
        f"published throughout; daphne SIGKILLed and started again on its port; the clients "
        f"retry every {RETRY:g} s with ?since=. {os.cpu_count()} CPUs, load average {load}"
    )
    try:
        for n in range(1, args.rounds + 1):
            print(f"round {n}:")
            report(one_round(raw_key, company_id, args.clients, args.rate))
    finally:
        bench.flush_redis()


if __name__ == "__main__":
    main()
