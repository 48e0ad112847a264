"""The PBX listener: snapshot, then events, into live state; reconnects and resyncs on its own.

One listener serves one PBX (`ListenerSettings.name`, the PBX's name): its own lease, AMI session,
backoff and live rows. `manage.py pbx_listen` runs one per PBX in one process (pbx/live/pool.py),
never from AppConfig.ready(). pyst2 calls back
on its own thread: events are queued there and applied here in batches, so a burst costs one
commit, not hundreds; the listeners of one process take turns to write, and whoever has the
turn writes the waiting batches of all of them in one transaction (pbx/live/combining.py).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.db import DatabaseError, close_old_connections
from django.db.models import F
from django.utils import timezone

from pbx.gateway import PbxError, PbxGateway
from pbx.gateway.events import PbxBooted
from pbx.live.combining import combiner
from pbx.live.lease import Lease
from pbx.live.queue_updates import queue_updates
from pbx.live.state_tables import LiveChanges, LiveState
from pbx.live.version import directory_reset
from pbx.models import DEFAULT_PBX

logger = logging.getLogger("swan.listener")


class Publisher(Protocol):
    """Where the listener announces changes (the dashboards, in production)."""

    def changes(self, changes: LiveChanges) -> None: ...

    def resynced(self, pbx: str, company_ids: set[int]) -> None:
        """After a fresh snapshot of `pbx`: the companies it changed, or none for all of its."""

    def connection(self, pbx: str, connected: bool) -> None: ...


@dataclass(frozen=True)
class ListenerSettings:
    name: str = DEFAULT_PBX  # the PBX served: its lease, its live rows
    lease_seconds: float = 20.0
    ping_seconds: float = 10.0
    reconcile_seconds: float = 300.0
    # how often the listener looks whether the directory changed (one tiny read), to match its
    # live rows to the users and queues the directory names now (LiveState.rematch)
    directory_check_seconds: float = 2.0
    batch_size: int = 500
    batch_wait: float = 0.0  # seconds to wait for more events after the first
    record_seconds: float = 1.0  # the lease's event count and time, written at most this often
    # queue figures republished at most this often (pbx/live/queue_updates.py; the listeners of
    # one publisher, pbx_listen's PBXes, share the updates): a busy PBX changes its queues in
    # nearly every batch, and a queue group's figures are four reads
    queue_update_seconds: float = 0.5
    backoff_first: float = 1.0
    backoff_max: float = 30.0


class SessionLost(Exception):
    """The AMI session ended: dropped, a ping unanswered, or the lease lost."""


class Listener:
    def __init__(
        self,
        *,
        gateway_factory: Callable[[], PbxGateway],
        publisher: Publisher,
        settings: ListenerSettings | None = None,
        holder: str | None = None,
    ):
        self.gateway_factory = gateway_factory
        self.publisher = publisher
        self.settings = settings or ListenerSettings()
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.pbx = self.settings.name
        self.lease = Lease(name=self.pbx, holder=self.holder, seconds=self.settings.lease_seconds)
        self.active = threading.Event()  # set while this listener holds the lease and is synced
        self.resyncs = 0
        self.pbx_uptime: float | None = None
        self._unrecorded = 0  # events applied since the lease last counted them
        self._last_event_at: datetime | None = None
        self._next_record = 0.0
        self._synced = False  # the current session connected and resynced
        self._directory_reset = 0  # LiveVersion.reset when the directory was last read

    # -- outer loop: lease, connect, back off ----------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff = self.settings.backoff_first
        was_standby = False
        while not stop.is_set():
            close_old_connections()
            try:
                acquired = self.lease.acquire()
            except DatabaseError as exc:
                logger.warning(
                    "listener cannot reach the database pbx=%s error=%s retry_in=%.1fs",
                    self.pbx,
                    exc,
                    backoff,
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.backoff_max)
                continue
            if not acquired:
                if not was_standby:
                    logger.info(
                        "listener standby: another listener is active pbx=%s holder=%s",
                        self.pbx,
                        self.holder,
                    )
                    was_standby = True
                stop.wait(self.settings.lease_seconds / 4)
                continue
            was_standby = False
            self._synced = False
            try:
                self._session(stop)
                backoff = self.settings.backoff_first
            except (PbxError, SessionLost) as exc:
                if self._synced:  # a session that worked: its drop is retried soon
                    backoff = self.settings.backoff_first
                logger.warning(
                    "listener lost the PBX pbx=%s error=%s retry_in=%.1fs",
                    self.pbx,
                    exc or type(exc).__name__,
                    backoff,
                )
                self._set_connected(False)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.backoff_max)
            except Exception:  # a bug of ours, not a drop: it keeps backing off
                logger.exception(
                    "listener failed; reconnecting pbx=%s retry_in=%.1fs", self.pbx, backoff
                )
                self._set_connected(False)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.backoff_max)
        self._set_connected(False)
        try:
            self.lease.release()
        except DatabaseError:
            logger.warning("listener could not release its lease pbx=%s", self.pbx)
        logger.info("listener stopped pbx=%s holder=%s", self.pbx, self.holder)

    # -- one AMI session ---------------------------------------------------------------------

    def _session(self, stop: threading.Event) -> None:
        inbox: queue.Queue = queue.Queue()
        lost = threading.Event()
        gateway = self.gateway_factory()
        self._directory_reset = directory_reset()  # read before the directory it names
        state = LiveState(pbx=self.pbx)
        try:
            gateway.live_events(inbox.put, on_disconnect=lost.set)  # connects and logs in
            logger.info("listener connected to the PBX pbx=%s holder=%s", self.pbx, self.holder)
            self._set_connected(True)
            self._resync(gateway, state, inbox, reason="connect")
            self._synced = True
            self.active.set()
            now = time.monotonic()
            next_ping = now + self.settings.ping_seconds
            next_lease = now + self.settings.lease_seconds / 4
            next_reconcile = now + self.settings.reconcile_seconds
            next_directory_check = now + self.settings.directory_check_seconds
            while not stop.is_set():
                batch = self._drain(inbox)
                if lost.is_set():
                    raise SessionLost("connection dropped")
                if batch:
                    self._apply(state, batch)
                self._record_events()
                if self._pbx_restarted(batch):
                    self._resync(gateway, state, inbox, reason="pbx restart")
                now = time.monotonic()
                if now >= next_reconcile:
                    self._directory_reset = directory_reset()
                    state.reload_directory()
                    self._resync(gateway, state, inbox, reason="reconcile")
                    next_reconcile = now + self.settings.reconcile_seconds
                elif now >= next_directory_check:
                    self._follow_directory(state)
                    next_directory_check = now + self.settings.directory_check_seconds
                if now >= next_lease:
                    if not self.lease.acquire():
                        raise SessionLost("lease taken by another listener")
                    next_lease = now + self.settings.lease_seconds / 4
                if now >= next_ping:
                    gateway.ping()
                    next_ping = now + self.settings.ping_seconds
        finally:
            self.active.clear()
            gateway.close()
            try:
                self._record_events(now=True)
            except DatabaseError:
                logger.warning("listener could not count its last events pbx=%s", self.pbx)

    def _pbx_restarted(self, batch: list) -> bool:
        """FullyBooted comes with every login; an uptime lower than the last one seen means
        Asterisk restarted, and whatever it had in memory (pauses, members) is gone."""
        restarted = False
        for event in batch:
            if not isinstance(event, PbxBooted) or event.uptime is None:
                continue
            uptime = event.uptime
            if self.pbx_uptime is not None and uptime < self.pbx_uptime:
                logger.warning(
                    "PBX restarted pbx=%s uptime=%.0fs previous=%.0fs: resync",
                    self.pbx,
                    uptime,
                    self.pbx_uptime,
                )
                restarted = True
            self.pbx_uptime = uptime
        return restarted

    def _drain(self, inbox: queue.Queue) -> list:
        """The first event, what follows within `batch_wait`, then whatever is already queued.

        Under load the queue fills while a batch is applied, so batches grow by themselves;
        waiting only delays a lone event (a status change) by the whole `batch_wait`."""
        batch = []
        try:
            batch.append(inbox.get(timeout=0.2))
            deadline = time.monotonic() + self.settings.batch_wait
            while len(batch) < self.settings.batch_size:
                remaining = deadline - time.monotonic()
                batch.append(inbox.get(timeout=remaining) if remaining > 0 else inbox.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _apply(self, state: LiveState, batch: list) -> None:
        """Applies the batch, with the other PBXes' of this process waiting meanwhile
        (pbx/live/combining.py), and publishes what it changed."""
        changes = combiner.apply(state, batch)
        self._unrecorded += len(batch)
        self._last_event_at = timezone.now()
        # Users at once; queues with the next queue update, on the queue updates' thread.
        queue_updates.changed(
            self.publisher, changes.queue_ids, every=self.settings.queue_update_seconds
        )
        changes.queue_ids = set()
        if changes:
            self.publisher.changes(changes)

    def _follow_directory(self, state: LiveState) -> None:
        """Once the directory changed (the admin, load_directory): it is read again and the
        live rows matched to it, so that an agent added or moved in SWAN shows its status within
        seconds, not at the next reconcile, nor never for a member that stays in its queue."""
        try:
            reset = directory_reset()
            if reset == self._directory_reset:
                return
            state.reload_directory()
            changes = state.rematch()
        except DatabaseError as exc:  # not the PBX's fault: the session goes on, tried again
            logger.warning(
                "listener could not match its live rows to the directory pbx=%s error=%s",
                self.pbx,
                exc,
            )
            return
        self._directory_reset = reset
        if changes.corrected:
            logger.info(
                "listener matched its live rows to the changed directory pbx=%s rows=%d",
                self.pbx,
                changes.corrected,
            )
        queue_updates.changed(
            self.publisher, changes.queue_ids, every=self.settings.queue_update_seconds
        )
        changes.queue_ids = set()
        if changes:
            self.publisher.changes(changes)

    def _record_events(self, *, now: bool = False) -> None:
        """The lease's count and time of events, at most every `record_seconds`: one more
        UPDATE and commit per batch was a good part of a small batch's cost."""
        if not self._unrecorded or (not now and time.monotonic() < self._next_record):
            return
        self.lease.record(
            last_event_at=self._last_event_at,
            events_processed=F("events_processed") + self._unrecorded,
        )
        self._unrecorded = 0
        self._next_record = time.monotonic() + self.settings.record_seconds

    def _resync(self, gateway: PbxGateway, state: LiveState, inbox: queue.Queue, *, reason: str):
        """A fresh snapshot replaces live state. Events queued before it are older than the
        snapshot and dropped; later ones apply on top of it."""
        while True:
            try:
                inbox.get_nowait()
            except queue.Empty:
                break
        started = time.monotonic()
        snapshot = gateway.snapshot()
        changes = state.apply_snapshot(snapshot)
        self.resyncs += 1
        self.lease.record(last_resync_at=timezone.now())
        logger.info(
            "listener resync pbx=%s reason=%s corrected=%d devices=%d members=%d callers=%d "
            "channels=%d took=%.3fs",
            self.pbx,
            reason,
            changes.corrected,
            len(snapshot.device_states),
            len(snapshot.queue_members),
            len(snapshot.queue_callers),
            len(snapshot.channels),
            time.monotonic() - started,
        )
        # Queues go with the queue updates, as a batch's do: published from here, they could be
        # overtaken by an update read before this snapshot and still on its way. After a fresh
        # snapshot (not a reconcile) every queue of the PBX goes again, after the snapshot.
        queue_ids = set(changes.queue_ids)
        if reason != "reconcile":
            queue_ids |= {queue_id for queue_id, _company_id in state.directory.queues.values()}
        changes.queue_ids = set()
        if changes:
            self.publisher.changes(changes)
        if reason != "reconcile":
            self.publisher.resynced(self.pbx, changes.company_ids)
        queue_updates.changed(self.publisher, queue_ids, every=self.settings.queue_update_seconds)

    def _set_connected(self, connected: bool) -> None:
        try:
            self.lease.record(connected=connected, connection_changed_at=timezone.now())
            self.publisher.connection(self.pbx, connected)
        except Exception:
            logger.exception(
                "could not record the PBX connection state pbx=%s connected=%s",
                self.pbx,
                connected,
            )
