"""Queue figures are published on a thread of their own, each publisher's at most every `every`."""

from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest
from django.db import connections

from pbx.live.queue_updates import QueueUpdates
from pbx.live.state_tables import LiveChanges
from tests import waiting


def wait_until(condition, *, message: str, timeout: float = 10.0) -> None:
    assert waiting.wait_until(condition, timeout), f"waited {timeout} s for {message}"


class Recording:
    def __init__(self, *, failures: int = 0, hold: threading.Event | None = None):
        self.updates: list[tuple[float, set[int]]] = []
        self.attempts: list[float] = []
        self.threads: set[str] = set()
        self._failures = failures
        self._hold = hold

    def changes(self, changes: LiveChanges) -> None:
        self.threads.add(threading.current_thread().name)
        self.attempts.append(time.monotonic())
        if self._hold is not None:
            self._hold.wait(10)
        if self._failures:
            self._failures -= 1
            raise ConnectionError("Redis is away")
        self.updates.append((time.monotonic(), set(changes.queue_ids)))


def test_queues_handed_in_are_coalesced_spaced_and_none_is_left_out():
    updates, publisher = QueueUpdates(), Recording()
    for queue_id in range(1, 21):  # twenty batches over about a second
        updates.changed(publisher, {queue_id}, every=0.3)
        time.sleep(0.05)
    wait_until(lambda: not updates.pending(publisher), message="the last queues published")
    published = set().union(*(ids for _at, ids in publisher.updates))
    assert published == set(range(1, 21))
    assert len(publisher.updates) < 20
    times = [at for at, _ids in publisher.updates]
    # Spaced (handed in every 0.05 s, published at most every 0.3 s); the margin is for a
    # thread scheduled late on a loaded machine.
    assert all(later - earlier >= 0.3 * 0.8 for earlier, later in itertools.pairwise(times))
    assert publisher.threads == {"queue-updates"}  # never the listener's thread


def test_nothing_handed_in_publishes_nothing():
    updates, publisher = QueueUpdates(), Recording()
    updates.changed(publisher, set(), every=0.1)
    assert updates.pending(publisher) == set()
    time.sleep(0.2)
    assert publisher.updates == []


def test_each_publisher_gets_its_own_queues():
    updates, first, second = QueueUpdates(), Recording(), Recording()
    updates.changed(first, {1, 2}, every=0.1)
    updates.changed(second, {3}, every=0.1)
    wait_until(
        lambda: not updates.pending(first) and not updates.pending(second),
        message="both published",
    )
    assert [ids for _at, ids in first.updates] == [{1, 2}]
    assert [ids for _at, ids in second.updates] == [{3}]


def test_queues_being_published_are_still_pending():
    hold = threading.Event()
    updates, publisher = QueueUpdates(), Recording(hold=hold)
    updates.changed(publisher, {7}, every=0.1)
    wait_until(lambda: publisher.threads, message="the update to start")
    assert updates.pending(publisher) == {7}
    hold.set()
    wait_until(lambda: not updates.pending(publisher), message="the update to end")
    assert [ids for _at, ids in publisher.updates] == [{7}]


def test_a_failed_update_is_logged_and_its_queues_go_with_the_next(caplog):
    hold = threading.Event()
    updates, publisher = QueueUpdates(), Recording(failures=1, hold=hold)
    with caplog.at_level(logging.ERROR, logger="swan.listener"):
        updates.changed(publisher, {1}, every=0.05)
        wait_until(lambda: publisher.attempts, message="the update to start")
        updates.changed(publisher, {2}, every=0.05)  # while the one that fails is on its way
        hold.set()
        wait_until(lambda: not updates.pending(publisher), message="the next update")
    assert [ids for _at, ids in publisher.updates] == [{1, 2}]
    assert "queue figures not published queues=1" in caplog.text
    assert "ConnectionError: Redis is away" in caplog.text


def test_updates_that_keep_failing_back_off_and_log_a_line_each(caplog):
    updates, publisher = QueueUpdates(), Recording(failures=3)
    with caplog.at_level(logging.WARNING, logger="swan.listener"):
        updates.changed(publisher, {1}, every=0.05)
        wait_until(lambda: publisher.updates, message="the update after three failures")
    assert [ids for _at, ids in publisher.updates] == [{1}]
    gaps = [later - earlier for earlier, later in itertools.pairwise(publisher.attempts)]
    # 0.1, 0.2 and 0.4 s after the first, second and third failure: every * 2 ** failures
    assert len(gaps) == 3
    assert all(gap >= wanted for gap, wanted in zip(gaps, (0.1, 0.2, 0.4), strict=True))
    assert caplog.text.count("Traceback") == 1  # the first failure only
    assert "queue figures still not published queues=1 failures=3 error=Redis is away" in (
        caplog.text
    )


def test_idle_waits_for_the_update_being_published():
    hold = threading.Event()
    updates, publisher = QueueUpdates(), Recording(hold=hold)
    assert updates.idle(timeout=0.1) is True  # nothing ever handed in
    updates.changed(publisher, {7}, every=0.1)
    wait_until(lambda: publisher.threads, message="the update to start")
    assert updates.idle(timeout=0.2) is False
    hold.set()
    assert updates.idle(timeout=5.0) is True
    assert [ids for _at, ids in publisher.updates] == [{7}]


@pytest.mark.django_db(transaction=True)
def test_the_thread_keeps_no_database_connection_while_nothing_is_pending():
    class Reading(Recording):
        def changes(self, changes: LiveChanges) -> None:
            self.database = connections["default"]  # this thread's own
            self.database.ensure_connection()
            super().changes(changes)

    updates, publisher = QueueUpdates(), Reading()
    updates.changed(publisher, {1}, every=0.1)
    wait_until(lambda: publisher.updates, message="the update")
    wait_until(lambda: publisher.database.connection is None, message="the connection closed")
