"""Dashboard fixtures: supervisors, session cookies and websocket connections."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client

from swanproject.asgi import application
from tests.dashboard.browser import REDIS_URL, ROOT, database_url, free_port, redis_reachable

ORIGIN = b"http://testserver"


@pytest.fixture(autouse=True)
def fresh_cache_and_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    cache.clear()
    yield
    cache.clear()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(
    path: str,
    *,
    user=None,
    origin: bytes | None = ORIGIN,
    host: bytes = b"testserver",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[WebsocketCommunicator, bool, int | None]:
    """Connects; returns (communicator, accepted, close code). Callers always disconnect."""
    all_headers = [(b"host", host), *(headers or [])]
    if origin is not None:
        all_headers.append((b"origin", origin))
    if user is not None:
        all_headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    communicator = WebsocketCommunicator(application, path, headers=all_headers)
    accepted, code = await communicator.connect(timeout=5)
    return communicator, accepted, code


@pytest.fixture
def redis_everywhere(settings):
    """The test publishes from this process; Redis carries it to the server's websockets."""
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def server_env() -> dict[str, str]:
    """More environment for the test server; a test module overrides it (e.g. AMI_PORT)."""
    return {}


@pytest.fixture
def server(transactional_db, redis_everywhere, tmp_path, server_env):
    port = free_port()
    env = {
        **os.environ,
        **server_env,
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "swanproject.settings",
        "DEBUG": "true",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SERVE_STATIC": "true",
    }
    log = (tmp_path / "daphne.log").open("w")
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
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(150):
            if process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("daphne did not start in 15 s")
        if process.poll() is not None:
            pytest.fail("daphne exited: " + (tmp_path / "daphne.log").read_text()[-2000:])
        yield f"http://127.0.0.1:{port}"
    finally:
        # daphne may ignore SIGTERM for long (tooling gotcha 7): this test's own server is killed.
        process.kill()
        process.wait(timeout=10)
        log.close()
