"""Lines a file repeats: the same text again in the same batch or within the lines just before it.

The cursor makes sure no line of a file is read twice; a line that is written twice is another
matter (a fixture's seven identical ENTERQUEUE lines, a reload logged in the same second by two
writers). Those count as already stored, as the digest of the line did before. Everything here
works on whole batches with set operations: no Python loop runs per line.
"""

from __future__ import annotations

from collections.abc import Iterable

WINDOW = 10_000  # lines of the same file a repeat is looked for in, before the current batch


class RepeatFilter:
    """The recent lines of one file, and which lines of a batch repeat one of them."""

    def __init__(self, window: Iterable[str] = (), size: int = WINDOW) -> None:
        self.size = size
        self._recent: list[str] = list(window)[-size:]
        self._seen: set[str] | dict[str, int] = set(self._recent)
        self._batch: tuple[list[str], dict[str, int]] | None = None

    def candidates(self, lines: list[str]) -> list[int]:
        """Indexes of lines equal to an earlier line of the batch or of the window, in order.

        Blank and malformed lines are candidates too: the caller keeps only the ones that are
        queue_log records (a blank line repeated is still a blank line).
        """
        # Each distinct line → the index it first appears at (zip from the end: the first wins).
        first = dict(zip(reversed(lines), range(len(lines) - 1, -1, -1), strict=True))
        self._batch = (lines, first)
        again = first.keys() & self._seen
        if len(first) == len(lines) and not again:
            return []
        repeated = set(range(len(lines))).difference(first.values())
        repeated.update(first[line] for line in again)
        return sorted(repeated)

    def seen(self, key: str) -> bool:
        return key in self._seen

    def remember(self, lines: list[str], extra: list[str] | None = None) -> None:
        """Adds a batch's lines (and the canonical text of lines read in Python) to the window."""
        batch, self._batch = self._batch, None
        if batch is not None and batch[0] is lines and not extra and len(lines) >= self.size:
            # The batch fills the window by itself: its lines, already counted, are the window.
            self._recent = lines[-self.size :]
            self._seen = batch[1]
            return
        self._recent.extend(lines)
        self._recent.extend(extra or ())
        if len(self._recent) > self.size:
            del self._recent[: len(self._recent) - self.size]
        self._seen = set(self._recent)
