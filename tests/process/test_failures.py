"""Real outages between daphne and its backends: a TCP proxy we can cut stands in for the wire.

The database down → 503 envelopes, no crash, and answers again without a restart once it is
back; Redis down → the API keeps answering while /healthz says what is missing.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.process.conftest import database_url, free_port, wait_until

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to a backend until `cut()`; `restore()` listens again."""

    def __init__(self, backend: tuple[str, int]):
        self.backend = backend
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuses new connections and drops every open one, as a dead server would."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.backend, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _get(host: str, path: str, key: str) -> requests.Response:
    return requests.get(f"http://{host}{path}", headers={"X-Api-Key": key}, timeout=15)


def _envelope(response: requests.Response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:200]
    body = json.loads(response.content)
    assert set(body) == {"error", "error-msg", "result"}
    return body


def test_database_down_gives_503_envelopes_and_recovers_without_restart(processes, call_centre):
    url = database_url()
    if url.startswith("sqlite"):
        pytest.skip("needs a database server to take down (run the suite on PostgreSQL)")
    parts = urlsplit(url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    server, host = processes.daphne(DATABASE_URL=_through(url, proxy.port))
    try:
        assert _get(host, "/blf-users/acme", call_centre.key).status_code == 200

        proxy.cut()
        down = _get(host, "/blf-users/acme", call_centre.key)
        assert down.status_code == 503, down.text[:300]
        assert _envelope(down)["error"] is True
        health = requests.get(f"http://{host}/healthz", timeout=15)
        assert health.status_code == 503
        assert health.json()["checks"]["database"]["ok"] is False
        assert server.alive()

        proxy.restore()
        assert wait_until(
            lambda: _get(host, "/blf-users/acme", call_centre.key).status_code == 200, 15
        ), server.tail()
        assert requests.get(f"http://{host}/healthz", timeout=15).status_code == 200
    finally:
        proxy.cut()


def test_redis_down_leaves_the_api_answering(processes, call_centre, redis_url):
    parts = urlsplit(redis_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    server, host = processes.daphne(REDIS_URL=_through(redis_url, proxy.port))
    try:
        assert _get(host, "/blf-users/acme", call_centre.key).status_code == 200
        proxy.cut()
        for _ in range(3):  # throttling (a Redis counter) is skipped, the answer still comes
            answer = _get(host, "/blf-users/acme", call_centre.key)
            assert answer.status_code == 200, answer.text[:300]
            assert len(_envelope(answer)["result"]) == 4
        health = requests.get(f"http://{host}/healthz", timeout=15)
        assert health.status_code == 503
        assert health.json()["failing"] == ["channel_layer"]
        assert server.alive()
    finally:
        proxy.cut()
