"""Where sync code's channel-layer sends run: a long-lived event loop when given, else asgiref's.

`async_to_sync` from a plain thread starts an event loop (and a thread) per call, and
channels-redis keeps its connections per event loop: every send from the listener opened a new
Redis connection. A publisher that sends all the time runs a `LoopThread` and sends inside
`sending_on(its loop)`: one loop, one set of connections, for the life of the process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from asgiref.sync import async_to_sync

_local = threading.local()


@contextmanager
def sending_on(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Within it, this thread's `group_send` calls run on `loop` (running on another thread)."""
    previous = getattr(_local, "loop", None)
    _local.loop = loop
    try:
        yield
    finally:
        _local.loop = previous


def group_send(layer, group: str, message: dict) -> None:
    """The layer's group_send, from sync code; returns once it is done."""
    loop = getattr(_local, "loop", None)
    if loop is None:
        async_to_sync(layer.group_send)(group, message)
        return
    asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result()


class LoopThread:
    """An event loop running on a daemon thread of its own, started when first asked for."""

    def __init__(self, name: str):
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name=self.name, daemon=True
                )
                self._thread.start()
            return self._loop
