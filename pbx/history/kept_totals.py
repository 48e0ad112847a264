"""Today's figures of the queue entries, kept by a process between reads until the history changes.

The listener republishes its queues' figures twice a second for every PBX. Today's entries change
only when ingest derives new ones, and that names their queues in a live change
(pbx/live/version.py): so the aggregate (`entry_totals`, tens of milliseconds over a day's
entries of a busy centre, on the queue updates' thread, pbx/live/queue_updates.py) is read again
only after such a change, a directory change, at the turn of a queue's day, when the changes
since the last look may have been pruned, or for a queue not read before. A change of any
queue's history drops every kept figure (the next update reads each group once more): simpler
than following the names; `ingest_queue_log --follow` derives at most once a poll (a second).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from datetime import datetime

from pbx.history.selectors import K, QueueTotals, day_bounds, entry_totals
from pbx.live.version import history_changed_since
from pbx.models import Queue

# Figures kept at most: past days' keys are dropped with the rest when there are more.
KEPT_AT_MOST = 10_000


class KeptEntryTotals:
    """entry_totals, answered from what was read since the last change of the queue history."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._version: int | None = None
            self._figures: dict[tuple, QueueTotals] = {}

    def totals(self, queues: Mapping[K, Queue], now: datetime) -> dict[K, QueueTotals]:
        """As entry_totals(queues, now); each queue's figures are a copy of its own."""
        with self._lock:
            # The version is read before the figures: a change committed in between is newer
            # than it, and drops these figures at the next call.
            version, changed = history_changed_since(self._version)
            if changed or len(self._figures) > KEPT_AT_MOST:
                self._figures.clear()
            self._version = version
            keys = {key: _figures_key(queue, now) for key, queue in queues.items()}
            missing = {
                key: queue for key, queue in queues.items() if keys[key] not in self._figures
            }
            if missing:
                for key, figures in entry_totals(missing, now).items():
                    self._figures[keys[key]] = figures
            return {key: dataclasses.replace(self._figures[keys[key]]) for key in queues}


def _figures_key(queue: Queue, now: datetime) -> tuple:
    """What a queue's figures depend on: its entries (PBX and name), its company's day, and
    its service level (ring OK)."""
    start, _end = day_bounds(queue.company.time_zone, now)
    return (queue.pbx, queue.name, start, queue.service_level_seconds)


kept_entry_totals = KeptEntryTotals()
