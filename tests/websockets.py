"""Websocket connections to SWAN's ASGI application, for every test of a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from swanproject.asgi import application

ORIGIN = b"http://testserver"


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


@asynccontextmanager
async def websocket(
    path: str, **options
) -> AsyncIterator[tuple[WebsocketCommunicator, bool, int | None]]:
    """open_socket as `async with`: (communicator, accepted, close code), always disconnected."""
    communicator, accepted, code = await open_socket(path, **options)
    try:
        yield communicator, accepted, code
    finally:
        await communicator.disconnect()
