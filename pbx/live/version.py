"""Numbered changes of what the web workers' read caches hold (pbx/api/read_cache.py).

Every writer of the live tables, the directory or the queue history calls `live_changed` inside
its transaction, as its last statement: it bumps the one LiveVersion row and records what the
change touched as a LiveChange row of that number. The row lock orders writers by commit, so a
reader that sees version N sees every change up to N committed; a reader that is behind fetches
the LiveChange rows it missed and drops only what they name.

The writers (docs/api.md, "Read caches"): the listener (`LiveState.apply_events` and
`apply_snapshot`), userStatus POST (`services._save_presence`), terminal registration and
user-unregister, ingest (`ingest.entries.rederive`), `load_directory`, and every save or delete
of a directory model (admin, shell, fixtures: `pbx.live.directory_changes`). The listener's lease is read on
every request, never cached, so it is no writer here.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connection,
    transaction,
)
from django.db.models import F
from django.utils import timezone

from pbx.gateway.events import (
    CallerJoined,
    CallerLeft,
    DeviceStateChanged,
    MemberChanged,
    MemberRemoved,
    PbxEvent,
)
from pbx.live.presence import PresenceRow, presence_rows_of
from pbx.models import ListenerLease, LiveChange, LiveVersion
from pbx.plain_sql import insert_rows

# LiveChange rows kept; a reader further behind than this starts again from the database.
KEEP_CHANGES = 2000
PRUNE_EVERY = 500
# Users whose new status a change stores at most; the caches read the others themselves.
ROWS_AT_MOST = 200
# Users whose new status the listener reads in its transaction at most (to publish them); one
# transaction may hold the batches of many PBXes (state_tables.apply_together).
ROWS_READ_AT_MOST = 2000


@dataclass
class Changed:
    """What one change touched: users (ids), devices (names), queues (names, live members and
    callers) and history (queue names whose queue entries changed); `rows`, the new status of
    some of the users, read by the writer so that the read caches need not read it again."""

    users: set[int] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    history: set[str] = field(default_factory=set)
    rows: dict[int, PresenceRow] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.users or self.devices or self.queues or self.history)

    def dumps(self) -> str:
        return json.dumps(
            {
                "users": sorted(self.users),
                "devices": sorted(self.devices),
                "queues": sorted(self.queues),
                "history": sorted(self.history),
                "rows": [_row_fields(self.rows[user]) for user in sorted(self.rows)[:ROWS_AT_MOST]],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> Changed:
        data = json.loads(text)
        rows = [_row_of(fields) for fields in data.get("rows", ())]
        return cls(
            users=set(data["users"]),
            devices=set(data["devices"]),
            queues=set(data["queues"]),
            history=set(data["history"]),
            rows={row.user_id: row for row in rows},
        )


def _row_fields(row: PresenceRow) -> list:
    since = row.since.isoformat() if row.since is not None else None
    return [row.user_id, row.company_id, row.extension, row.name, row.mobile, row.status,
            row.description, row.reason, since]  # fmt: skip


def _row_of(fields: list) -> PresenceRow:
    user_id, company_id, extension, name, mobile, status, description, reason, since = fields
    return PresenceRow(
        user_id=user_id,
        company_id=company_id,
        extension=extension,
        name=name,
        mobile=mobile,
        status=status,
        description=description,
        reason=reason,
        since=datetime.fromisoformat(since) if since else None,
    )


def live_changed(
    *,
    users: Iterable[int] = (),
    devices: Iterable[str] = (),
    queues: Iterable[str] = (),
    history: Iterable[str] = (),
    everything: bool = False,
    with_rows: bool = False,
) -> int | None:
    """Numbers a change; call it inside the writer's transaction, after its writes.

    `everything` (the directory changed) makes every read cache start again. `with_rows`
    (the listener) also stores the users' new status, read here once instead of by every web
    worker: read after the version row is locked, it is at least as new as every change
    numbered before. Returns the new version, or None when nothing was named.
    """
    changed = Changed(set(users), set(devices), set(queues), set(history))
    return _number(changed, everything=everything, with_rows=with_rows)


def directory_reset() -> int:
    """The number of the latest change that invalidated everything (a directory change, or a
    snapshot that corrected the live rows); 0 before the first."""
    return LiveVersion.objects.filter(pk=1).values_list("reset", flat=True).first() or 0


def announce(changed: Changed) -> int | None:
    """live_changed for what `changed_by_events` found, with the users' new status: read once
    here, and left in `changed.rows` for the listener to publish too."""
    return _number(changed, everything=False, with_rows=True)


def _number(changed: Changed, *, everything: bool, with_rows: bool) -> int | None:
    if not changed and not everything:
        return None
    with transaction.atomic(savepoint=False):
        version = _bump(everything=everything)
        if with_rows and 0 < len(changed.users) <= ROWS_READ_AT_MOST:
            changed.rows = {row.user_id: row for row in presence_rows_of(changed.users)}
        if changed:
            insert_rows(LiveChange, [LiveChange(version=version, changed=changed.dumps())])
        if version % PRUNE_EVERY == 0:
            LiveChange.objects.filter(version__lte=version - KEEP_CHANGES).delete()
    return version


def _bump(*, everything: bool) -> int:
    for _attempt in range(3):
        version = _increment(everything=everything)
        if version is not None:
            return version
        # A new or flushed database: the row is created by its first writer. Not a savepoint
        # and a caught IntegrityError: inside the listener's pipelined write that aborts the
        # pipeline, and the whole write would be retried.
        table = connection.ops.quote_name(LiveVersion._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (id, version, reset) VALUES (1, 1, 1) "
                "ON CONFLICT (id) DO NOTHING"
            )
            if cursor.rowcount == 1:
                return 1
        # created by another writer this instant: bump that one
    raise RuntimeError("the live version row could not be written")


def _increment(*, everything: bool) -> int | None:
    """The row's next version, None when there is no row; one statement where the database
    can return rows from an UPDATE (PostgreSQL, SQLite 3.35+)."""
    if not connection.features.can_return_rows_from_bulk_insert:
        fields = {"version": F("version") + 1}
        if everything:
            fields["reset"] = F("version") + 1
        if not LiveVersion.objects.filter(pk=1).update(**fields):
            return None
        return LiveVersion.objects.values_list("version", flat=True).get(pk=1)
    table = connection.ops.quote_name(LiveVersion._meta.db_table)
    reset = ", reset = version + 1" if everything else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET version = version + 1{reset} WHERE id = 1 RETURNING version"
        )
        row = cursor.fetchone()
    return row[0] if row else None


_QUEUE_EVENTS = (MemberChanged, MemberRemoved, CallerJoined, CallerLeft)


def changed_by_events(events: Iterable[PbxEvent], user_ids: Iterable[int]) -> Changed:
    """What a batch of PBX events touched: the listener's users, and the devices and queues the
    events name. A device or queue the listener's directory does not know yet (added in the
    admin a moment ago) maps to nobody there, but the read caches map it themselves."""
    changed = Changed(users=set(user_ids))
    for event in events:
        if isinstance(event, DeviceStateChanged) and event.device:
            changed.devices.add(event.device)
        elif isinstance(event, _QUEUE_EVENTS) and event.queue:
            changed.queues.add(event.queue)
    return changed


@dataclass(frozen=True)
class Probe:
    """One request's look at the shared state: the latest change, and the PBXes whose link is
    live (an active listener holds the PBX's lease and is connected)."""

    version: int
    reset: int
    live_pbxes: frozenset[str] = frozenset()

    def link_live(self, pbxes: Iterable[str]) -> bool:
        """Whether every one of these PBXes is live: an answer about them is current."""
        return self.live_pbxes.issuperset(pbxes)


_PREPARED_NAME = "swan_live_probe"
# PostgreSQL connections (psycopg's) on which the probe is a prepared statement: planning the
# query cost several times more than running it. A prepared statement lives as long as its
# session, whatever becomes of the transaction it was prepared in.
_prepared: weakref.WeakSet = weakref.WeakSet()


def _probe_sql(placeholders: tuple[str, str, str] = ("%s", "%s", "%s")) -> str:
    version = connection.ops.quote_name(LiveVersion._meta.db_table)
    change = connection.ops.quote_name(LiveChange._meta.db_table)
    lease = connection.ops.quote_name(ListenerLease._meta.db_table)
    now, after, limit = placeholders
    # One statement, so one snapshot: the version, the PBXes whose link is live, and the
    # changes after the caller's version (never before the latest reset). The version row may
    # be absent (a new or flushed database).
    return (
        f"SELECT 0, v.version, v.reset, NULL "
        f"FROM (SELECT 1 AS one) AS o LEFT JOIN {version} v ON v.id = 1 "
        f"UNION ALL SELECT 1, NULL, NULL, l.name FROM {lease} l WHERE l.connected "
        f"AND l.expires_at > {now} AND l.holder <> '' "
        f"UNION ALL SELECT 2, d.version, NULL, d.changed FROM ("
        f"SELECT c.version, c.changed FROM {change} c WHERE c.version > {after} "
        f"AND c.version > COALESCE((SELECT r.reset FROM {version} r WHERE r.id = 1), 0) "
        f"ORDER BY c.version LIMIT {limit}) AS d ORDER BY 1, 2"
    )


def history_changed_since(after: int | None) -> tuple[int | None, bool]:
    """The latest version, and whether the queue history may have changed after `after`: a
    change naming history, a reset (the directory changed), or changes no longer kept to tell.

    For a process that keeps today's figures of queue entries between reads (the listener's
    queue updates): one indexed look at the changes since its last one, not the aggregate."""
    version_table = connection.ops.quote_name(LiveVersion._meta.db_table)
    change_table = connection.ops.quote_name(LiveChange._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT v.version, v.reset, EXISTS (SELECT 1 FROM {change_table} c "
            f"WHERE c.version > %s AND c.changed NOT LIKE %s) FROM {version_table} v WHERE v.id = 1",
            [after if after is not None else 2**62, f"%{_NO_HISTORY}%"],
        )
        row = cursor.fetchone()
    if row is None:  # a new or flushed database
        return None, True
    version, reset, named = row
    unsure = after is None or reset > after or version < after or after < version - KEEP_CHANGES
    return version, unsure or bool(named)


# How Changed.dumps writes a change that names no history.
_NO_HISTORY = '"history":[]'


def probe() -> Probe:
    """The live version and the PBX link's state, in one query."""
    return probe_with_changes(after=None, at_most=0)[0]


def probe_with_changes(*, after: int | None, at_most: int) -> tuple[Probe, list[Changed] | None]:
    """probe(), and in the same query up to `at_most` of the changes numbered after `after`;
    None instead of them when they cannot all be had (some no longer kept, or a reset since).

    With CONN_HEALTH_CHECKS (the web tier's persistent connections) Django would first send
    `SELECT 1` to check a reused connection: this query is that check instead. If the
    connection turns out broken, it is closed and the probe runs once more on a new one.
    """
    # Django's own flags for CONN_HEALTH_CHECKS (django.db.backends.base.base), not in the stubs.
    wrapper: Any = connection
    check = (
        wrapper.connection is not None
        and wrapper.health_check_enabled
        and not wrapper.health_check_done
        and not wrapper.in_atomic_block
    )
    if check:
        wrapper.health_check_done = True
    try:
        rows = _probe(after, at_most)
    except (OperationalError, InterfaceError):
        if not check:
            raise
        connection.close()
        rows = _probe(after, at_most)
    except ProgrammingError:
        if connection.in_atomic_block:
            raise
        rows = _probe(after, at_most)  # the prepared statement was lost: prepared again
    _kind, version, reset, _text = rows[0]
    live = frozenset(text for kind, _v, _r, text in rows if kind == 1)
    found = Probe(version=version or 0, reset=reset or 0, live_pbxes=live)
    if after is None or after < found.reset or after > found.version:
        return found, None
    changes = [Changed.loads(text) for kind, _v, _r, text in rows if kind == 2]
    return found, changes if len(changes) == found.version - after else None


def _probe(after: int | None, at_most: int) -> list[tuple]:
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [now, after if after is not None and at_most > 0 else 2**62, at_most]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(_probe_sql(), params)
            return cursor.fetchall()
        raw = connection.connection
        if raw not in _prepared:
            sql = _probe_sql(("$1::timestamptz", "$2::bigint", "$3::bigint"))
            cursor.execute(f"PREPARE {_PREPARED_NAME} AS {sql}")
            _prepared.add(raw)
        try:
            cursor.execute(f"EXECUTE {_PREPARED_NAME}(%s, %s, %s)", params)
        except ProgrammingError:
            _prepared.discard(raw)  # the session lost it (DEALLOCATE, a pooler's DISCARD ALL)
            raise
        return cursor.fetchall()
