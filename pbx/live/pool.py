"""One process, many PBXes: a listener thread per PBX, each with its own lease, AMI session and
backoff, so one PBX going down leaves the others live.

Without a fixed list the pool serves `served_pbx_keys()` and looks again every `refresh_seconds`:
a PBX added in the admin gets its listener, one deleted loses it. A listener thread that dies
(its database gone at the wrong moment) is started again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import close_old_connections, connection

from pbx.directory.pbxes import served_pbx_keys
from pbx.live.listener import Listener

logger = logging.getLogger("swan.listener")


@dataclass
class _Running:
    listener: Listener
    stop: threading.Event
    thread: threading.Thread


class ListenerPool:
    def __init__(
        self,
        *,
        make_listener: Callable[[str], Listener],
        pbx_names: Sequence[str] | None = None,
        refresh_seconds: float = 30.0,
    ):
        self.make_listener = make_listener
        self.pbx_names = list(pbx_names) if pbx_names else None
        self.refresh_seconds = refresh_seconds
        self.running: dict[str, _Running] = {}

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.refresh()
                except Exception:
                    logger.exception("listener pool could not read the PBXes; retrying")
                stop.wait(self.refresh_seconds)
        finally:
            for name in list(self.running):
                self._stop(name)
            connection.close()

    def refresh(self) -> None:
        """Starts a listener for each PBX wanted and not running, stops those no longer wanted."""
        close_old_connections()
        wanted = self.pbx_names or served_pbx_keys()
        for name in wanted:
            running = self.running.get(name)
            if running is not None and not running.thread.is_alive():
                logger.error("listener thread died pbx=%s: starting it again", name)
                del self.running[name]
            if name not in self.running:
                self._start(name)
        for name in [n for n in self.running if n not in wanted]:
            logger.info("listener pool stops serving pbx=%s (no longer defined)", name)
            self._stop(name)

    def _start(self, name: str) -> None:
        listener = self.make_listener(name)
        stop = threading.Event()
        thread = threading.Thread(
            target=_serve, args=(listener, stop), name=f"listener-{name}", daemon=True
        )
        self.running[name] = _Running(listener, stop, thread)
        logger.info("listener pool serves pbx=%s", name)
        thread.start()

    def _stop(self, name: str) -> None:
        running = self.running.pop(name)
        running.stop.set()
        running.thread.join(timeout=30)


def _serve(listener: Listener, stop: threading.Event) -> None:
    try:
        listener.run(stop)
    except Exception:
        logger.exception("listener thread failed pbx=%s", listener.pbx)
    finally:
        connection.close()  # this thread's own connection
