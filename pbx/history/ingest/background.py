"""Deriving on a second database connection while the next batches of lines are stored.

Storing lines and deriving entries from them are independent once the lines are committed: on
PostgreSQL a bulk read runs both side by side, on two server processes. Each derivation is still
its own transaction with its `derived_lines` mark (derive.py): a crash leaves nothing half done.
"""

from __future__ import annotations

import threading

from django.db import connection

from pbx.directory.agent_matching import AgentDirectory
from pbx.history.ingest import derive

# A bulk read derives the agents' spans once for this many lines at most: every stretch would
# derive again the same agents' spans, and a span pass holds their lines since then in memory.
SPANS_EVERY = 1_000_000


class BackgroundDeriver:
    """Derives every pending stretch of the PBX's lines whenever it is poked, on its own thread.

    The agents' spans are derived once for many stretches (`SPANS_EVERY`), and when it finishes.
    """

    def __init__(self, directory: AgentDirectory, *, pbx: str) -> None:
        self.entries = 0
        self._directory = directory
        self._pbx = pbx
        self._wake = threading.Event()
        self._finishing = False
        self._error: BaseException | None = None
        self._spans_pending = 0  # lines derived since the last span pass
        self._thread = threading.Thread(target=self._loop, name="queue_log-derive", daemon=True)
        self._thread.start()

    @staticmethod
    def usable() -> bool:
        """Only outside a transaction (a test's): the second connection must see the lines."""
        return connection.vendor == "postgresql" and not connection.in_atomic_block

    def poke(self) -> None:
        """New lines were committed. Raises what went wrong in the thread, if anything did."""
        if self._error is not None:
            raise self._error
        self._wake.set()

    def finish(self, *, raising: bool = True) -> int:
        """Derives what is still pending, stops the thread; returns the entries it derived.

        `raising=False` when the ingest is failing already: its error is the one to see.
        """
        self._finishing = True
        self._wake.set()
        self._thread.join()
        if self._error is not None and raising:
            raise self._error
        return self.entries

    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                finishing = self._finishing
                for logfile in derive.pending_files(self._pbx):
                    before = logfile.derived_lines
                    self.entries += derive.derive_pending(
                        logfile, directory=self._directory, spans=False
                    )
                    self._spans_pending += logfile.derived_lines - before
                if finishing or self._spans_pending >= SPANS_EVERY:
                    derive.derive_pending_spans(self._pbx)
                    self._spans_pending = 0
                if finishing:
                    return
        except BaseException as exc:  # handed to the ingest thread by poke() or finish()
            self._error = exc
        finally:
            connection.close()  # this thread's own connection
