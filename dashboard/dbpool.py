"""The websocket consumers' sync work (ORM, cache) on a few threads with lasting DB connections.

asgiref runs every thread-sensitive `sync_to_async` call of a daphne process on one thread, and
channels closes the connection around each call (CONN_MAX_AGE=0): 200 dashboards connecting at
once queued a fresh PostgreSQL connection and a snapshot each behind one another, past daphne's
handshake timeout. Here `DASHBOARD_DB_THREADS` threads work in parallel, each keeping its
connection for `DASHBOARD_DB_CONN_MAX_AGE` seconds, so a process never holds more than that many
connections however many sockets connect at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar
from weakref import WeakKeyDictionary

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_workers = 0
_opened = threading.local()  # per thread: {alias: (id of the driver connection, opened at)}


def _pool() -> ThreadPoolExecutor:
    global _executor, _workers
    with _lock:
        if _executor is None:
            _workers = max(1, settings.DASHBOARD_DB_THREADS)
            _executor = ThreadPoolExecutor(max_workers=_workers, thread_name_prefix="dashboard-db")
        return _executor


def _tidy() -> None:
    """Closes this thread's connections that broke or outlived their age; keeps the others."""
    max_age = settings.DASHBOARD_DB_CONN_MAX_AGE
    opened = _opened.__dict__
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        born = opened.get(conn.alias)
        if born is None or born[0] != id(conn.connection):
            born = opened[conn.alias] = (id(conn.connection), now)
        broken = conn.errors_occurred and not conn.is_usable()
        if broken or now - born[1] >= max_age:
            conn.close()
            opened.pop(conn.alias, None)
        else:
            conn.errors_occurred = False


def _call(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return func(*args, **kwargs)
    finally:
        _tidy()


async def run(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`func(*args, **kwargs)` on one of the pool's threads, awaited."""
    return await sync_to_async(_call, thread_sensitive=False, executor=_pool())(
        func, *args, **kwargs
    )


# Per event loop: a task belongs to the loop that made it (tests run one loop each).
_in_flight: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, asyncio.Task]] = (
    WeakKeyDictionary()
)


async def run_shared(key: Hashable, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """As `run`, but the callers asking with the same `key` while it runs share its answer.

    For reads only: 200 sockets presenting one API key at once make one lookup, not 200.
    """
    loop = asyncio.get_running_loop()
    calls = _in_flight.setdefault(loop, {})
    task = calls.get(key)
    if task is None:
        task = calls[key] = loop.create_task(run(func, *args, **kwargs))
        task.add_done_callback(lambda done: _finished(calls, key, done))
    # One caller going away (its client left) must not cancel the others' answer.
    return await asyncio.shield(task)


def _finished(calls: dict[Hashable, asyncio.Task], key: Hashable, task: asyncio.Task) -> None:
    if calls.get(key) is task:
        del calls[key]
    if not task.cancelled():
        task.exception()  # retrieved: every waiter may have gone (no "never retrieved" noise)


def _close_own() -> None:
    for conn in connections.all(initialized_only=True):
        conn.close()
    _opened.__dict__.clear()


def close_connections() -> None:
    """Closes every pool thread's connections (tests do, before the test database goes)."""
    with _lock:
        executor, workers = _executor, _workers
    if executor is None:
        return
    barrier = threading.Barrier(workers)

    def close_then_wait() -> None:
        _close_own()
        # Holding each thread until all have run makes every thread take exactly one task.
        barrier.wait(timeout=10)

    for future in [executor.submit(close_then_wait) for _ in range(workers)]:
        future.result(timeout=15)
