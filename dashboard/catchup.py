"""Sockets whose company moved on without them (a lost last message), caught up every few seconds.

The channel layer may drop a message (a channel at capacity, or expired); a socket notices the
hole when the next message comes and fills it from the buffer. If no next message comes, nothing
would: so one task per event loop reads the latest number of every watched company every
`CHECK_SECONDS` (one cache read), and a socket that is behind it and received nothing since the
previous look is nudged to fill the gap, in order with its other messages.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from weakref import WeakKeyDictionary

from dashboard import dbpool
from dashboard.broadcast import latest_seqs

logger = logging.getLogger("swan.dashboard")

CHECK_SECONDS = 5.0


class Socket(Protocol):
    last_seq: int

    @property
    def company_id(self) -> int: ...

    def nudge(self, seq: int) -> None: ...


class Catchup:
    """The open sockets of one event loop, each with the `last_seq` it had at the last look."""

    def __init__(self) -> None:
        self.sockets: dict[Socket, int] = {}
        self.task: asyncio.Task | None = None

    def add(self, socket: Socket) -> None:
        self.sockets[socket] = socket.last_seq
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, socket: Socket) -> None:
        self.sockets.pop(socket, None)
        if not self.sockets and self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(CHECK_SECONDS)
            await self.check()

    async def check(self) -> None:
        """One look: nudges every socket that is behind and got nothing since the last one."""
        sockets = dict(self.sockets)
        try:
            latest = await dbpool.run(latest_seqs, {s.company_id for s in sockets})
        except Exception as exc:  # Redis away: the next look decides
            logger.warning("dashboard catch-up check failed error=%s", type(exc).__name__)
            return
        for socket, seen in sockets.items():
            if socket not in self.sockets:
                continue  # closed meanwhile
            last = latest.get(socket.company_id, 0)
            if last > socket.last_seq and socket.last_seq == seen:
                socket.nudge(last)
            self.sockets[socket] = socket.last_seq


_catchups: WeakKeyDictionary[asyncio.AbstractEventLoop, Catchup] = WeakKeyDictionary()


def catchup() -> Catchup:
    """The running event loop's catch-up checker."""
    loop = asyncio.get_running_loop()
    found = _catchups.get(loop)
    if found is None:
        found = _catchups[loop] = Catchup()
    return found
