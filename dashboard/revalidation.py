"""Open dashboard sockets checked again, all of a process's in one go, every few seconds.

Each socket used to check its own grant every `DASHBOARD_REVALIDATE_SECONDS`: 500 sockets were
100 queries (and 100 new database connections) a second. Now one task per event loop checks the
distinct grants of every open socket together (`grant_refusals`) and closes the lapsed ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from weakref import WeakKeyDictionary

from django.conf import settings

from dashboard import access, dbpool
from dashboard.access import Grant

logger = logging.getLogger("swan.dashboard")

Close = Callable[[int], Awaitable[None]]


class Revalidator:
    """The open sockets of one event loop, their grants, and the task that checks them."""

    def __init__(self) -> None:
        self.sockets: dict[object, tuple[Grant, Close]] = {}
        self.task: asyncio.Task | None = None

    def add(self, socket: object, grant: Grant, close: Close) -> None:
        self.sockets[socket] = (grant, close)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, socket: object) -> None:
        self.sockets.pop(socket, None)
        # The last socket gone: stop checking (the task ends by itself if it is the caller).
        if not self.sockets and self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(settings.DASHBOARD_REVALIDATE_SECONDS)
            await self.check()

    async def check(self) -> None:
        """One check of every open socket; a failing check (database down) closes none."""
        sockets = dict(self.sockets)
        try:
            refusals = await dbpool.run(
                access.grant_refusals, [grant for grant, _close in sockets.values()]
            )
        except Exception as exc:
            logger.warning(
                "dashboard recheck failed sockets=%d error=%s", len(sockets), type(exc).__name__
            )
            return
        lapsed = [
            (socket, grant, close, refusals[grant])
            for socket, (grant, close) in sockets.items()
            if grant in refusals and socket in self.sockets  # still open
        ]
        for socket, grant, close, code in lapsed:
            logger.info("dashboard connection revoked company=%s code=%s", grant.company_id, code)
            self.discard(socket)
            await close(code)


_revalidators: WeakKeyDictionary[asyncio.AbstractEventLoop, Revalidator] = WeakKeyDictionary()


def revalidator() -> Revalidator:
    """The running event loop's revalidator."""
    loop = asyncio.get_running_loop()
    found = _revalidators.get(loop)
    if found is None:
        found = _revalidators[loop] = Revalidator()
    return found
