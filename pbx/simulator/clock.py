"""A discrete-event clock: callbacks run in simulated-time order, whatever the step sizes."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(order=True)
class Timer:
    when: float
    seq: int
    callback: Callable[..., Any] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False, default=())
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self, start: float):
        self.now = start
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(max(when, self.now), next(self._seq), callback, args)
        heapq.heappush(self._heap, timer)
        return timer

    def after(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.at(self.now + delay, callback, *args)

    def advance(self, seconds: float) -> None:
        """Runs every callback due within `seconds`, each at its own simulated time."""
        target = self.now + max(seconds, 0.0)
        while self._heap and self._heap[0].when <= target:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.now = timer.when
            timer.callback(*timer.args)
        self.now = target

    def pending(self) -> int:
        return sum(1 for timer in self._heap if not timer.cancelled)
