"""Bar charts drawn as inline SVG by the templates: the geometry is worked out here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEIGHT = 160  # drawing units of the plot area; the SVG scales to its box
TOP = 8
BOTTOM = 22
SLOT = 26
BAR = 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    value: int


@dataclass(frozen=True)
class Slot:
    label: str
    x: float
    text_x: float
    bars: tuple[Bar, ...]
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    baseline: int
    slots: tuple[Slot, ...]
    ticks: tuple[tuple[float, int], ...]


def bar_chart(
    labels: Sequence[str], series: Sequence[Sequence[int]], titles: Sequence[str]
) -> Chart:
    """Side-by-side bars, one per series, in a slot per label; `titles` are the slots' tooltips."""
    peak = max((value for values in series for value in values), default=0) or 1
    baseline = TOP + HEIGHT
    slots = []
    for index, label in enumerate(labels):
        left = index * SLOT + (SLOT - BAR * len(series)) / 2
        bars = []
        for n, values in enumerate(series):
            height = values[index] * HEIGHT / peak
            bars.append(Bar(left + n * BAR, baseline - height, height, values[index]))
        slots.append(Slot(label, index * SLOT, index * SLOT + SLOT / 2, tuple(bars), titles[index]))
    ticks = tuple((baseline - value * HEIGHT / peak, value) for value in _ticks(peak))
    return Chart(len(labels) * SLOT, baseline + BOTTOM, baseline, tuple(slots), ticks)


def _ticks(peak: int) -> list[int]:
    """Up to four round values from 0 to the peak, for the grid lines."""
    step = 1
    while peak / step > 4:
        for factor in (2, 5 / 2, 2):
            step = int(step * factor)
            if peak / step <= 4:
                break
    return list(range(0, peak + 1, step))
