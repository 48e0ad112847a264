"""The listeners of one process take turns to write, and whoever has the turn writes for all.

`pbx_listen` runs a listener thread per PBX. Each batch used to be a transaction of its own: its
round trips, its commit, and the version row that every writer locks. Twenty busy PBXes meant
twenty such transactions at once under one GIL, each thread waiting for the GIL again after
every round trip, and a PBX's events waited most of a second to be written.

Flat combining: a listener hands its batch in and waits for the turn. The thread that gets it
applies every batch handed in by then, in one transaction (`state_tables.apply_together`);
one whose batch was applied meanwhile finds it done and goes on. A listener alone applies its
own batch as before; under load, batches of several PBXes share one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pbx.gateway.events import PbxEvent
from pbx.live.state_tables import LiveChanges, LiveState, apply_together

ApplyTogether = Callable[[Sequence[tuple[LiveState, Iterable[PbxEvent]]]], list[LiveChanges]]


@dataclass(eq=False)
class _HandedIn:
    state: LiveState
    events: list
    done: bool = False
    changes: LiveChanges | None = None
    error: BaseException | None = None


class BatchCombiner:
    """Applies the batches handed in by several threads, as many together as are waiting."""

    def __init__(self, apply: ApplyTogether = apply_together) -> None:
        self._apply = apply
        self._changed = threading.Condition()  # guards what follows; notified when a write ends
        self._writing = False
        self._waiting: list[_HandedIn] = []
        self.transactions = 0  # applications so far (each one transaction), for the tests

    def apply(self, state: LiveState, events: list) -> LiveChanges:
        """Applies `events` to `state` (with whatever other batches are waiting) and returns
        what they changed; raises what the application raised."""
        mine = _HandedIn(state, events)
        batches: list[_HandedIn] = []
        with self._changed:
            self._waiting.append(mine)
            while self._writing and not mine.done:
                self._changed.wait()
            if not mine.done:  # the turn is ours: every batch waiting, ours among them
                self._writing = True
                batches, self._waiting = self._waiting, []
        if batches:
            self._apply_all(batches)
        if mine.error is not None:
            raise mine.error
        assert mine.changes is not None
        return mine.changes

    def _apply_all(self, batches: list[_HandedIn]) -> None:
        results: list[LiveChanges] | None = None
        error: BaseException = RuntimeError("the listeners' write was interrupted")
        try:
            results = self._apply([(handed.state, handed.events) for handed in batches])
            if len(results) != len(batches):  # never leave the turn taken (below) on a bad answer
                raise RuntimeError(f"{len(results)} results for {len(batches)} batches")
        except Exception as exc:  # every listener of these batches resyncs its PBX
            error = exc
            results = None
        finally:
            with self._changed:
                self.transactions += 1
                for index, handed in enumerate(batches):
                    if results is None:
                        handed.error = error
                    else:
                        handed.changes = results[index]
                    handed.done = True
                self._writing = False
                self._changed.notify_all()


combiner = BatchCombiner()  # the process's one: every listener thread shares it
