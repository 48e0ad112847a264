"""Dashboard fixtures: a fresh cache and channel layer, Redis everywhere, a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from django.core.cache import cache

from tests.dashboard.browser import REDIS_URL, ROOT, database_url, free_port, redis_reachable


@pytest.fixture(autouse=True)
def fresh_cache_and_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_everywhere(settings):
    """The test publishes from this process; Redis carries it to the server's websockets."""
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "swanproject.channel_layer.ResilientRedisChannelLayer",
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
