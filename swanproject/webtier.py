"""The production web tier (`make serve`): gunicorn for HTTP, daphne for the websockets.

Measured on a 2-core box (benchmarks/README.md): a bare Django view does ~5,000 req/s under
gunicorn's sync workers and ~340 under daphne, which runs every sync view of a process on one
thread. So plain HTTP goes to gunicorn, with one persistent, health-checked database connection
per worker process, and only `/ws/` goes to daphne. The TLS proxy in front routes the two
(deploy/nginx-swan.conf); without one, set SWAN_WEBSOCKET_PORT so pages find the websockets.

Run: `python -m swanproject.webtier` (what `make serve` and deploy/systemd/swan-web.service run).
Environment (besides SWAN's own settings):
  SWAN_HOST          address both servers bind           127.0.0.1
  SWAN_HTTP_PORT     gunicorn's port                     8000
  SWAN_HTTP_WORKERS  gunicorn sync worker processes      2 per CPU core
  SWAN_HTTP_TIMEOUT  seconds before a stuck worker is recycled   30
  SWAN_WS_PORT       the first daphne port               8001
  SWAN_WS_WORKERS    daphne processes, on SWAN_WS_PORT, SWAN_WS_PORT+1, …   1
This process starts the servers, passes SIGTERM/SIGINT on, and exits (non-zero) as soon as one
of them dies, so that systemd restarts the whole tier.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger("swan.webtier")

STOP_SECONDS = 10.0  # every SWAN process stops within 10 s of SIGTERM (docs/deployment.md)
# Workers are processes that each keep one connection: 5 minutes, checked before reuse.
HTTP_CONN_MAX_AGE = "300"


class ConfigError(ValueError):
    """A web tier variable that cannot be used; the message names it."""


@dataclass(frozen=True)
class WebTier:
    host: str
    http_port: int
    http_workers: int
    http_timeout: int
    ws_port: int
    ws_workers: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WebTier:
        cores = os.cpu_count() or 1
        tier = cls(
            host=environ.get("SWAN_HOST", "127.0.0.1"),
            http_port=_int(environ, "SWAN_HTTP_PORT", 8000),
            http_workers=_int(environ, "SWAN_HTTP_WORKERS", 2 * cores),
            http_timeout=_int(environ, "SWAN_HTTP_TIMEOUT", 30),
            ws_port=_int(environ, "SWAN_WS_PORT", 8001),
            ws_workers=_int(environ, "SWAN_WS_WORKERS", 1),
        )
        for name, port in (("SWAN_HTTP_PORT", tier.http_port), ("SWAN_WS_PORT", tier.ws_port)):
            if not 0 < port < 65536:
                raise ConfigError(f"{name}={port} is not a TCP port")
        if tier.http_port in tier.ws_ports:
            raise ConfigError(
                f"SWAN_HTTP_PORT={tier.http_port} is one of the websocket ports {tier.ws_ports}"
            )
        if tier.ws_ports[-1] > 65535:
            raise ConfigError("SWAN_WS_PORT + SWAN_WS_WORKERS runs past port 65535")
        return tier

    @property
    def ws_ports(self) -> list[int]:
        return [self.ws_port + n for n in range(self.ws_workers)]

    def gunicorn_argv(self, python: str = sys.executable) -> list[str]:
        return [
            python,
            "-m",
            "gunicorn",
            "--bind",
            f"{self.host}:{self.http_port}",
            "--workers",
            str(self.http_workers),
            "--worker-class",
            "sync",
            "--timeout",
            str(self.http_timeout),
            "--graceful-timeout",
            str(int(STOP_SECONDS) - 2),
            "--keep-alive",
            "5",
            # Django is imported once and the workers fork from it: faster starts, shared memory.
            "--preload",
            "--no-control-socket",
            "swanproject.wsgi:application",
        ]

    def daphne_argv(self, port: int, python: str = sys.executable) -> list[str]:
        return [
            python,
            "-m",
            "daphne",
            "--bind",
            self.host,
            "--port",
            str(port),
            "--proxy-headers",
            "--application-close-timeout",
            "5",
            "swanproject.asgi:application",
        ]

    def http_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        env = dict(environ)
        env.setdefault("DATABASE_CONN_MAX_AGE", HTTP_CONN_MAX_AGE)
        return env


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be 1 or more")
    return value


class ProcessSupervisor:
    """The servers as child processes: started together, stopped together."""

    def __init__(self, commands: list[tuple[str, list[str], dict[str, str]]]):
        self.commands = commands
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self) -> None:
        for name, argv, env in self.commands:
            self.children[name] = subprocess.Popen(argv, env=env)
            logger.info("web tier started server=%s pid=%s", name, self.children[name].pid)

    def wait(self) -> int:
        """Until a signal or a child's death; returns the exit status for the tier."""
        while not self.stopping:
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    logger.error("web tier server exited server=%s code=%s: stopping", name, code)
                    self.stop()
                    return code or 1
            time.sleep(0.2)
        return 0

    def stop(self, *_signal) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for name, child in self.children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("web tier server killed server=%s: no exit after SIGTERM", name)
                child.kill()
                child.wait()


def main(environ: Mapping[str, str] = os.environ) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        tier = WebTier.from_env(environ)
    except ConfigError as exc:
        logger.error("web tier not started: %s", exc)
        return 2
    commands = [("http", tier.gunicorn_argv(), tier.http_env(environ))]
    commands += [(f"ws:{port}", tier.daphne_argv(port), dict(environ)) for port in tier.ws_ports]
    supervisor = ProcessSupervisor(commands)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    logger.info(
        "web tier http=%s:%s workers=%s websockets=%s",
        tier.host,
        tier.http_port,
        tier.http_workers,
        ",".join(str(p) for p in tier.ws_ports),
    )
    supervisor.start()
    return supervisor.wait()


if __name__ == "__main__":
    sys.exit(main())
