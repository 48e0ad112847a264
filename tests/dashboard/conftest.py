"""Dashboard fixtures: supervisors, session cookies and websocket connections."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client

from swanproject.asgi import application

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
