"""Queue figures republished beside the listeners, on a thread of their own.

A busy PBX changes its queues in nearly every batch; each queue group's update reads the members,
the callers and today's figures and sends them all (a 1,000-agent centre: ~2,000 members, 200 KB).
Done on the listener's thread it held back the events that came meanwhile by 20 to 90 ms every
half second. The listeners hand the queues a batch changed to this process's one `QueueUpdates`
and go on; it publishes each publisher's queues at most every `every` seconds, and what was
handed in meanwhile with the next update, so nothing is left out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from django.db import connection

from pbx.live.state_tables import LiveChanges

logger = logging.getLogger("swan.listener")


class Publisher(Protocol):
    """What the updates are published to: the listener's publisher (pbx/live/listener.py)."""

    def changes(self, changes: LiveChanges) -> None: ...


RETRY_MAX_SECONDS = 30.0  # a failing publisher's updates back off up to this


@dataclass(eq=False)
class _Pending:
    every: float
    queue_ids: set[int] = field(default_factory=set)
    publishing: set[int] = field(default_factory=set)
    next_at: float = 0.0  # no update of this publisher before then
    failures: int = 0  # updates failed in a row


class QueueUpdates:
    """The queues changed per publisher, published from one thread, each publisher's at most
    every `every` seconds."""

    def __init__(self, name: str = "queue-updates") -> None:
        self._name = name
        self._changed = threading.Condition()  # guards what follows
        self._pending: dict[Publisher, _Pending] = {}
        self._thread: threading.Thread | None = None

    def changed(self, publisher: Publisher, queue_ids: Iterable[int], *, every: float) -> None:
        """These queues' figures are to be published to `publisher` soon."""
        ids = set(queue_ids)
        if not ids:
            return
        with self._changed:
            pending = self._pending.setdefault(publisher, _Pending(every))
            pending.every = every
            pending.queue_ids |= ids
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def pending(self, publisher: Publisher) -> set[int]:
        """The queues handed in for `publisher` and not published yet (being published counts)."""
        with self._changed:
            pending = self._pending.get(publisher)
            return pending.queue_ids | pending.publishing if pending is not None else set()

    def idle(self, timeout: float) -> bool:
        """Waits until nothing is pending or being published; whether it came to that."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while any(p.queue_ids or p.publishing for p in self._pending.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    def _loop(self) -> None:
        while True:
            with self._changed:
                due = self._take_due()
                while not due:
                    wait = self._wait_seconds()
                    if wait is None:
                        # Nothing to publish until a listener hands queues in, maybe for long:
                        # the thread's database connection is not kept meanwhile. A busy PBX
                        # hands some in during every update, so it keeps it.
                        _close_connection(unusable_only=False)
                    self._changed.wait(wait)
                    due = self._take_due()
            for publisher, pending in due:
                self._publish(publisher, pending)

    def _take_due(self) -> list[tuple[Publisher, _Pending]]:
        now = time.monotonic()
        due = []
        for publisher, pending in list(self._pending.items()):
            if now < pending.next_at:
                continue
            if not pending.queue_ids:  # nothing since its last update, which is long enough ago
                del self._pending[publisher]
                continue
            due.append((publisher, pending))
            pending.publishing, pending.queue_ids = pending.queue_ids, set()
            pending.next_at = now + pending.every
        return due

    def _wait_seconds(self) -> float | None:
        waiting = [p.next_at for p in self._pending.values() if p.queue_ids]
        return max(0.0, min(waiting) - time.monotonic()) if waiting else None

    def _publish(self, publisher: Publisher, pending: _Pending) -> None:
        error: BaseException | None = RuntimeError("interrupted")
        try:
            publisher.changes(LiveChanges(queue_ids=set(pending.publishing)))
            error = None
        except Exception as exc:
            error = exc
            _close_connection(unusable_only=True)
        finally:
            with self._changed:
                if error is None:
                    pending.failures = 0
                else:  # these queues go again with the next update, later each time
                    pending.failures += 1
                    pending.queue_ids |= pending.publishing
                    delay = min(pending.every * 2**pending.failures, RETRY_MAX_SECONDS)
                    pending.next_at = max(pending.next_at, time.monotonic() + delay)
                failures, queues = pending.failures, len(pending.publishing)
                pending.publishing = set()
                self._changed.notify_all()
        if error is None:
            return
        # The listener goes on. The first failure in a row is logged with its traceback, the
        # next ones in a line each (Redis away for minutes must not flood the log).
        if failures == 1:
            logger.error("queue figures not published queues=%d", queues, exc_info=error)
        else:
            logger.warning(
                "queue figures still not published queues=%d failures=%d error=%s",
                queues,
                failures,
                error,
            )


def _close_connection(*, unusable_only: bool) -> None:
    """This thread's database connection closed (or only if it is broken); never raises: the
    thread must go on publishing."""
    try:
        if unusable_only:
            connection.close_if_unusable_or_obsolete()
        else:
            connection.close()
    except Exception:
        logger.warning("queue updates could not close their database connection", exc_info=True)


queue_updates = QueueUpdates()
