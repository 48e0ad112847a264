"""Numbered changes of what the web workers' read caches hold (pbx/live_cache.py).

Every writer of the live tables, the directory or the queue history calls `live_changed` inside
its transaction, as its last statement: it bumps the one LiveVersion row and records what the
change touched as a LiveChange row of that number. The row lock orders writers by commit, so a
reader that sees version N sees every change up to N committed; a reader that is behind fetches
the LiveChange rows it missed and drops only what they name.

The writers (docs/api.md, "Read caches"): the listener (`LiveState.apply_events` and
`apply_snapshot`), userStatus POST (`services._save_presence`), terminal registration and
user-unregister, ingest (`ingest.entries.rederive`), `load_directory`, and every save or delete
of a directory model (admin, shell, fixtures: `pbx.signals`). The listener's lease is read on
every request, never cached, so it is no writer here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from pbx.models import ListenerLease, LiveChange, LiveVersion

# LiveChange rows kept; a reader further behind than this starts again from the database.
KEEP_CHANGES = 2000
PRUNE_EVERY = 500
_DEVICE_EVENTS = frozenset({"devicestatechange"})
_QUEUE_EVENTS = frozenset(
    {
        "queuememberadded",
        "queuememberstatus",
        "queuememberpause",
        "queuememberpaused",
        "queuememberremoved",
        "queuecallerjoin",
        "join",
        "queuecallerleave",
        "queuecallerabandon",
        "leave",
    }
)


@dataclass
class Changed:
    """What one change touched: users (ids), devices (names), queues (names, live members and
    callers) and history (queue names whose queue entries changed)."""

    users: set[int] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    history: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.users or self.devices or self.queues or self.history)

    def merge(self, other: Changed) -> None:
        self.users |= other.users
        self.devices |= other.devices
        self.queues |= other.queues
        self.history |= other.history

    def dumps(self) -> str:
        return json.dumps(
            {
                "users": sorted(self.users),
                "devices": sorted(self.devices),
                "queues": sorted(self.queues),
                "history": sorted(self.history),
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> Changed:
        data = json.loads(text)
        return cls(
            users=set(data["users"]),
            devices=set(data["devices"]),
            queues=set(data["queues"]),
            history=set(data["history"]),
        )


def live_changed(
    *,
    users: Iterable[int] = (),
    devices: Iterable[str] = (),
    queues: Iterable[str] = (),
    history: Iterable[str] = (),
    everything: bool = False,
) -> int | None:
    """Numbers a change; call it inside the writer's transaction, after its writes.

    `everything` (the directory changed) makes every read cache start again. Returns the new
    version, or None when nothing was named.
    """
    changed = Changed(set(users), set(devices), set(queues), set(history))
    if not changed and not everything:
        return None
    with transaction.atomic(savepoint=False):
        version = _bump(everything=everything)
        if changed:
            LiveChange.objects.create(version=version, changed=changed.dumps())
        if version % PRUNE_EVERY == 0:
            LiveChange.objects.filter(version__lte=version - KEEP_CHANGES).delete()
    return version


def announce(changed: Changed) -> int | None:
    """live_changed for what `changed_by_events` found."""
    return live_changed(
        users=changed.users,
        devices=changed.devices,
        queues=changed.queues,
        history=changed.history,
    )


def _bump(*, everything: bool) -> int:
    fields = {"version": F("version") + 1}
    if everything:
        fields["reset"] = F("version") + 1
    for _attempt in range(3):
        if LiveVersion.objects.filter(pk=1).update(**fields):
            return LiveVersion.objects.values_list("version", flat=True).get(pk=1)
        try:  # a new or flushed database: the row is created by its first writer
            with transaction.atomic():
                LiveVersion.objects.create(pk=1, version=1, reset=1)
            return 1
        except IntegrityError:
            continue  # created by another writer this instant: bump that one
    raise RuntimeError("the live version row could not be written")


def changed_by_events(events: Iterable[Mapping[str, str]], user_ids: Iterable[int]) -> Changed:
    """What a batch of AMI events touched: the listener's users, and the devices and queues the
    events name. A device or queue the listener's directory does not know yet (added in the
    admin a moment ago) maps to nobody there, but the read caches map it themselves."""
    changed = Changed(users=set(user_ids))
    for event in events:
        name = (event.get("Event") or "").lower()
        if name in _DEVICE_EVENTS and event.get("Device"):
            changed.devices.add(event["Device"])
        elif name in _QUEUE_EVENTS and event.get("Queue"):
            changed.queues.add(event["Queue"])
    return changed


@dataclass(frozen=True)
class Probe:
    """One request's look at the shared state: the latest change and whether the PBX link is
    live (an active listener holds its lease and is connected)."""

    version: int
    reset: int
    link_live: bool


_PROBE_SQL = None


def _probe_sql() -> str:
    global _PROBE_SQL
    if _PROBE_SQL is None:
        version = connection.ops.quote_name(LiveVersion._meta.db_table)
        lease = connection.ops.quote_name(ListenerLease._meta.db_table)
        # One round trip for both; the version row may be absent (new or flushed database).
        _PROBE_SQL = (
            f"SELECT v.version, v.reset, EXISTS (SELECT 1 FROM {lease} l WHERE l.connected "
            f"AND l.expires_at > %s AND l.holder <> '') FROM (SELECT 1 AS one) AS o "
            f"LEFT JOIN {version} v ON v.id = 1"
        )
    return _PROBE_SQL


def probe() -> Probe:
    """The live version and the PBX link's state, in one query.

    With CONN_HEALTH_CHECKS (the web tier's persistent connections) Django would first send
    `SELECT 1` to check a reused connection: this query is that check instead. If the
    connection turns out broken, it is closed and the probe runs once more on a new one.
    """
    check = (
        connection.connection is not None
        and connection.health_check_enabled
        and not connection.health_check_done
        and not connection.in_atomic_block
    )
    if check:
        connection.health_check_done = True
    try:
        return _probe()
    except (OperationalError, InterfaceError):
        if not check:
            raise
        connection.close()
        return _probe()


def _probe() -> Probe:
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_probe_sql(), [now])
        version, reset, live = cursor.fetchone()
    return Probe(version=version or 0, reset=reset or 0, link_live=bool(live))


def changes_between(after: int, upto: int) -> list[Changed] | None:
    """The changes numbered after..upto, in order; None if any is no longer kept."""
    rows = list(
        LiveChange.objects.filter(version__gt=after, version__lte=upto)
        .order_by("version")
        .values_list("changed", flat=True)
    )
    if len(rows) != upto - after:
        return None
    return [Changed.loads(text) for text in rows]
