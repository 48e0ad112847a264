"""Real processes against the test database: daphne, pbx_listen, simulate_pbx, ingest followers.

Every process is started by the `processes` fixture, which kills whatever is still running at
teardown (SIGKILL, then wait), so a failing test never leaves a server behind. The tests are
transactional: the subprocesses only see committed rows.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
# A Redis database of its own (test_browser.py uses 9): the tests flush it.
REDIS_URL = os.environ.get("PROCESS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
STOP_LIMIT = 10.0  # seconds a process may take to exit after SIGTERM
START_LIMIT = 20.0


def pytest_configure(config):
    config.addinivalue_line("markers", "process: tests that run real server processes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_reachable(url: str = REDIS_URL) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def database_url() -> str:
    """The test database as a URL, for the subprocesses (never the development database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            pytest.skip("subprocesses need a file or server test database")
        return f"sqlite:///{name}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Process:
    """One subprocess, its output in a log file, and a bounded way to stop it."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.args = args
        self.log_path = log_path
        self.port: int | None = None
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} (pid {self.pid}) log tail ---\n{self.log()[-chars:]}"

    def wait_for_log(self, pattern: str, timeout: float = START_LIMIT) -> re.Match:
        regex = re.compile(pattern)

        def found():
            match = regex.search(self.log())
            if match is None and not self.alive():
                pytest.fail(f"{self.name} exited (rc={self.popen.returncode})\n{self.tail()}")
            return match

        match = wait_until(found, timeout)
        if match is None:
            pytest.fail(f"{self.name}: no {pattern!r} in the log within {timeout}s\n{self.tail()}")
        return match

    def wait_for_port(self, port: int | None = None, timeout: float = START_LIMIT) -> None:
        port = port or self.port

        def accepting() -> bool:
            if not self.alive():
                pytest.fail(f"{self.name} exited (rc={self.popen.returncode})\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return False

        if not wait_until(accepting, timeout):
            pytest.fail(f"{self.name} did not listen on {port} within {timeout}s\n{self.tail()}")

    def terminate(self, limit: float = STOP_LIMIT) -> float:
        """SIGTERM, then the seconds it took to exit; fails (after SIGKILL) past `limit`."""
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not exit within {limit}s of SIGTERM\n{self.tail()}")
        return time.monotonic() - started

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        self._log.close()


class Processes:
    """Starts the SWAN processes with the test database's environment."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path = tmp_path
        self.env = env
        self.started: list[Process] = []
        self._count = 0

    def start(self, name: str, args: list[str], **env: str) -> Process:
        self._count += 1
        log_path = self.tmp_path / f"{self._count:02d}-{name}.log"
        process = Process(name, args, {**self.env, **env}, log_path)
        self.started.append(process)
        return process

    def manage(self, name: str, *args: str, **env: str) -> Process:
        return self.start(name, [sys.executable, "manage.py", *args], **env)

    def daphne(self, name: str = "daphne", *, wait: bool = True, **env: str) -> tuple[Process, str]:
        """A daphne on a free port (accepting, unless `wait` is False); returns it and host:port."""
        port = free_port()
        process = self.start(
            name,
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
            **env,
        )
        process.port = port
        if wait:
            process.wait_for_port(port)
        return process, f"127.0.0.1:{port}"

    def simulator(
        self, name: str = "simulator", *args: str, wait: bool = True, **env: str
    ) -> tuple[Process, int]:
        """The simulated Asterisk on a free port, its history files in the test's directory."""
        port = free_port()
        process = self.manage(
            name,
            "simulate_pbx",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--queue-log",
            str(self.tmp_path / f"{name}-queue_log"),
            "--cdr",
            str(self.tmp_path / f"{name}-Master.csv"),
            *args,
            **env,
        )
        process.port = port
        if wait:
            process.wait_for_port(port)
        return process, port

    def listener(self, ami_port: int, *args: str, name: str = "listener", **env: str) -> Process:
        return self.manage(
            name, "pbx_listen", *args, AMI_HOST="127.0.0.1", AMI_PORT=str(ami_port), **env
        )

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()


@pytest.fixture
def redis_url() -> str:
    """A flushed Redis database of the tests' own; skips when Redis is not reachable."""
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set PROCESS_TEST_REDIS_URL)")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def processes(transactional_db, redis_url, tmp_path) -> Iterator[Processes]:
    """Subprocesses on the test database and the tests' Redis; all killed at teardown."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_TEST_NAME": str(connection.settings_dict["NAME"]),
        "DJANGO_SETTINGS_MODULE": "swanproject.settings",
        "REDIS_URL": redis_url,
        "DEBUG": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SERVE_STATIC": "true",
        "SWAN_THROTTLE_RATE": "1000000/min",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    manager = Processes(tmp_path, env)
    try:
        yield manager
    finally:
        manager.kill_all()


class Load:
    """Keeps `concurrency` requests in flight (each thread cycling through `urls`) until stopped."""

    def __init__(self, urls: list[str], headers: dict[str, str], concurrency: int = 20):
        import requests

        self.urls = urls
        self.headers = headers
        self.ok = 0
        self.errors = 0
        self.statuses: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._requests = requests
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{n}", daemon=True)
            for n in range(concurrency)
        ]

    def _run(self) -> None:
        session = self._requests.Session()
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                url = self.urls[n % len(self.urls)]
                response = session.get(url, headers=self.headers, timeout=(1, 15))
                ok = response.status_code == 200
                status = f"{url.rsplit('/', 1)[-1]}:{response.status_code}"
            except self._requests.RequestException as exc:
                ok = False
                status = type(exc).__name__
                time.sleep(0.05)
            with self._lock:
                self.statuses[status] += 1
                if ok:
                    self.ok += 1
                else:
                    self.errors += 1
        session.close()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(20)


@pytest.fixture
def call_centre(make_company, make_user, make_queue, make_api_key) -> SimpleNamespace:
    """One company with four agents in one queue, and an API key for it (committed rows)."""
    company = make_company(slug="acme", name="ACME")
    users = [make_user(company, extension) for extension in ("201", "202", "203", "204")]
    queue = make_queue(company, "q-sales", members=users)
    return SimpleNamespace(company=company, users=users, queue=queue, key=make_api_key(company))


def pause(ami_port: int, interface: str, reason: str) -> None:
    """A supervisor's QueuePause, sent straight to the simulated PBX (not through SWAN)."""
    from pbx.gateway.ami import AmiGateway

    gateway = AmiGateway("127.0.0.1", ami_port, "swan", "swan-simulator", timeout=5)
    try:
        gateway.queue_pause(interface=interface, paused=True, reason=reason)
    finally:
        gateway.close()
