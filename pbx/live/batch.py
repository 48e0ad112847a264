"""One batch of PBX events, written as a few set-based statements (pbx/live/state_tables.py).

Applied event by event, a call's dozen events cost a dozen round trips each through the ORM:
at a thousand events a second that is most of a core. Here the batch is replayed in order over
the rows it names, read in one query per table, and what it leaves is written in one statement
per table and kind of write. The result equals applying the events one by one: every row ends
as the last event left it, and the users, queues and companies to republish are the same.

`apply_batches` does so for the batches of several PBXes at once (the listeners of one process
write together, pbx/live/combining.py): their rows read in one query per table, and written in
one statement per table and kind of write, for all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.db import connection

from pbx.directory.agent_matching import AgentDirectory, device_of
from pbx.directory.dnd import DND_DEVICE_PREFIX
from pbx.gateway.events import (
    CallerJoined,
    CallerLeft,
    ChannelChanged,
    ChannelCreated,
    ChannelHungUp,
    DeviceStateChanged,
    MemberChanged,
    MemberRemoved,
)
from pbx.models import DeviceState, LiveChannel, QueueCallerState, QueueMemberState, UserPresence
from pbx.plain_sql import (
    Select,
    column,
    delete_rows,
    insert_rows,
    marks,
    read_together,
    select_where_any,
    table,
)


class Changes(Protocol):
    """What a batch changed (state_tables.LiveChanges): whom to republish."""

    user_ids: set[int]


class LiveRows(Protocol):
    """What the batch uses of the live state (state_tables.LiveState, which imports this)."""

    pbx: str
    directory: AgentDirectory
    _member_devices: dict[str, set[int]] | None

    def _rows(self, model): ...

    def users_of_device(self, interface: str) -> set[int]: ...

    def _new_member(self, queue: str, interface: str, wanted: dict, now: datetime): ...

    def _note_member(self, row: QueueMemberState, changes) -> None: ...

    def _note_queue(self, queue_id: int | None, company_id: int | None, changes) -> None: ...


DND_ON_STATES = frozenset({"BUSY", "INUSE", "ONHOLD", "RINGING", "RINGINUSE"})
MEMBER_FIELDS = [
    "member_name",
    "state_interface",
    "paused",
    "paused_reason",
    "in_call",
    "status",
    "calls_taken",
    "changed_at",
    "confirmed_at",
]
CALLER_FIELDS = ["queue_id", "channel", "caller_id_num", "position", "entered_at", "confirmed_at"]
CHANNEL_FIELDS = [
    "linked_id",
    "channel",
    "interface",
    "state",
    "caller_id_num",
    "connected_line_num",
    "exten",
    "context",
    "started_at",
    "confirmed_at",
]


@dataclass
class _Rows:
    """One table's rows the batch names: as read, then as the events leave them."""

    found: dict = field(default_factory=dict)  # key → row as stored (and changed in memory)
    new: dict = field(default_factory=dict)  # key → row to insert
    dirty: set = field(default_factory=set)  # keys of found rows changed
    gone: set = field(default_factory=set)  # primary keys of stored rows to delete

    def current(self, key):
        return self.new.get(key) or self.found.get(key)

    def remove(self, key) -> bool:
        """Drops the row of `key`; whether there was one."""
        if self.new.pop(key, None) is not None:
            return True
        row = self.found.pop(key, None)
        if row is None:
            return False
        self.dirty.discard(key)
        self.gone.add(row.pk)
        return True


class EventBatch:
    """Replays events over the rows they name, then writes what changed (`write`)."""

    def __init__(
        self,
        state: LiveRows,
        now: datetime,
        changes: Changes,
        pause_before: dict[int, tuple[bool, str]],
    ):
        self.state = state
        self.now = now
        self.changes = changes
        # user → (paused, reason) as the member rows said before the batch; shared by the
        # one-event batches of a guarded application, so it stays "before the whole batch".
        self.pause_before = pause_before
        self._pause_users: set[int] = set()
        self.devices = _Rows()
        self.changed_devices: set[str] = set()
        self.members = _Rows()
        self.members_moved = False  # a member added, removed or re-pointed: rebuild the index
        self.callers = _Rows()
        self.channels = _Rows()
        self.channel_fields: set[str] = set()

    def apply(self, events: list) -> None:
        apply_batches([(self, events)])

    def replay(self, events: list) -> None:
        for event in events:
            handler = self.handlers.get(type(event))
            if handler is not None:  # else an event the live state does not use
                handler(self, event)

    # -- the events, in memory ----------------------------------------------------------------

    def _on_device_state(self, event: DeviceStateChanged) -> None:
        interface, state = event.device, event.state
        row = self.devices.current(interface)
        if row is None:
            self.devices.new[interface] = DeviceState(
                pbx=self.state.pbx,
                interface=interface,
                state=state,
                changed_at=self.now,
                confirmed_at=self.now,
            )
        elif row.state != state:
            row.state, row.changed_at, row.confirmed_at = state, self.now, self.now
            if interface not in self.devices.new:
                self.devices.dirty.add(interface)
        else:
            return
        self.changed_devices.add(interface)

    def _on_member(self, event: MemberChanged) -> None:
        queue, interface = event.queue, event.interface
        if not queue or not interface:
            return
        key = (queue, interface)
        wanted: dict[str, object] = {
            "member_name": event.member_name,
            "paused": event.paused,
            "paused_reason": event.paused_reason,
            "in_call": event.in_call,
        }
        # Older events (Asterisk 11's QueueMemberPaused) leave out what did not change.
        if event.state_interface is not None:
            wanted["state_interface"] = event.state_interface
        if event.status is not None:
            wanted["status"] = event.status
        row = self.members.current(key)
        if row is None:
            row = self.state._new_member(
                queue, interface, {"state_interface": "", "status": 0, **wanted}, self.now
            )
            row.calls_taken = event.calls_taken or 0
            self.members.new[key] = row
            self.members_moved = True
        else:
            if wanted.get("state_interface", row.state_interface) != row.state_interface:
                self.members_moved = True
            for name, value in wanted.items():
                setattr(row, name, value)
            if event.calls_taken is not None:
                row.calls_taken = event.calls_taken
            row.changed_at = row.confirmed_at = self.now
            if key not in self.members.new:
                self.members.dirty.add(key)
        self._note_pause(row.user_id)
        self.state._note_member(row, self.changes)

    def _on_member_removed(self, event: MemberRemoved) -> None:
        key = (event.queue, event.interface)
        row = self.members.current(key)
        if row is None:
            return
        self.state._note_member(row, self.changes)
        self._note_pause(row.user_id)
        self.members.remove(key)
        self.members_moved = True

    def _on_caller_join(self, event: CallerJoined) -> None:
        queue, unique_id = event.queue, event.unique_id
        if not queue or not unique_id:
            return
        queue_id, company_id = self.state.directory.queue(queue)
        key = (queue, unique_id)
        row = self.callers.current(key)
        if row is None:
            row = self.callers.new[key] = QueueCallerState(
                pbx=self.state.pbx, queue_name=queue, unique_id=unique_id
            )
        elif key not in self.callers.new:
            self.callers.dirty.add(key)
        row.queue_id = queue_id
        row.channel, row.caller_id_num = event.channel, event.caller_id_num
        row.position, row.entered_at, row.confirmed_at = event.position, self.now, self.now
        self._renumber_callers(queue, first=key)
        self.state._note_queue(queue_id, company_id, self.changes)

    def _on_caller_leave(self, event: CallerLeft) -> None:
        if self.callers.remove((event.queue, event.unique_id)):
            self._renumber_callers(event.queue)
            self.state._note_queue(*self.state.directory.queue(event.queue), self.changes)

    def _renumber_callers(self, queue: str, *, first: tuple[str, str] | None = None) -> None:
        """Numbers the queue's callers 1, 2, … in their order, as Asterisk does whenever one
        joins or leaves: the callers behind one who left move up, and one who joined ahead of
        others (a higher priority) moves them down. `first` is the caller who just joined: at
        its position it goes before the one already there. The batch read every caller of the
        queues its events name (`_read`), so the order is the whole queue's."""
        rows = [
            (key, row)
            for key, row in [*self.callers.found.items(), *self.callers.new.items()]
            if key[0] == queue
        ]
        rows.sort(key=lambda item: (item[1].position, item[0] != first))
        for position, (key, row) in enumerate(rows, start=1):
            if row.position != position:
                row.position = position
                if key not in self.callers.new:
                    self.callers.dirty.add(key)

    def _on_new_channel(self, event: ChannelCreated) -> None:
        unique_id, channel = event.unique_id, event.channel
        if not unique_id or not channel:
            return
        row = self.channels.current(unique_id)
        if row is None:
            row = self.channels.new[unique_id] = LiveChannel(
                pbx=self.state.pbx, unique_id=unique_id
            )
        elif unique_id not in self.channels.new:
            self.channels.dirty.add(unique_id)
            self.channel_fields.update(CHANNEL_FIELDS)
        row.linked_id, row.channel, row.interface = event.linked_id, channel, device_of(channel)
        row.state, row.caller_id_num = event.state, event.caller_id_num
        row.connected_line_num, row.exten, row.context = (
            event.connected_line_num,
            event.exten,
            event.context,
        )
        row.started_at = row.confirmed_at = self.now

    def _on_channel_state(self, event: ChannelChanged) -> None:
        row = self.channels.current(event.unique_id)
        if row is None:
            return
        fields: dict[str, object] = {"confirmed_at": self.now}
        if event.state:
            fields["state"] = event.state
        connected = event.connected_line_num
        if connected and connected != "<unknown>":
            fields["connected_line_num"] = connected
        for name, value in fields.items():
            setattr(row, name, value)
        if event.unique_id not in self.channels.new:
            self.channels.dirty.add(event.unique_id)
            self.channel_fields.update(fields)

    def _on_hangup(self, event: ChannelHungUp) -> None:
        self.channels.remove(event.unique_id)

    handlers: dict[type, Callable] = {
        DeviceStateChanged: _on_device_state,
        MemberChanged: _on_member,
        MemberRemoved: _on_member_removed,
        CallerJoined: _on_caller_join,
        CallerLeft: _on_caller_leave,
        ChannelCreated: _on_new_channel,
        ChannelChanged: _on_channel_state,
        ChannelHungUp: _on_hangup,
    }

    def _note_pause(self, user_id: int | None) -> None:
        if user_id is not None and user_id not in self.pause_before:
            self._pause_users.add(user_id)

    def _dnd_of_changed_devices(self, dnd: dict[int, bool]) -> None:
        """Names the users of the devices the batch changed, and sets in `dnd` the lamp of those
        of DND devices. Called once the members are written: a member added by this batch
        rings its device."""
        for interface in self.changed_devices:
            users = self.state.users_of_device(interface)
            self.changes.user_ids |= users
            if interface.lower().startswith(DND_DEVICE_PREFIX):
                enabled = self.devices.current(interface).state in DND_ON_STATES
                dnd.update(dict.fromkeys(users, enabled))


def apply_batches(batches: Sequence[tuple[EventBatch, list]]) -> None:
    """Replays each batch's events over its rows, then writes what they all leave. The batches
    are of different PBXes (one each): a row is told apart by its PBX."""
    by_pbx = {batch.state.pbx: batch for batch, _events in batches}
    if len(by_pbx) != len(batches):
        raise ValueError("two batches of one PBX cannot be applied together")
    _read(batches, by_pbx)
    for batch, events in batches:
        batch.replay(events)
    _write([batch for batch, _events in batches])


# -- the rows the batches name, one query per table -------------------------------------------


def _read(batches: Sequence[tuple[EventBatch, list]], by_pbx: dict[str, EventBatch]) -> None:
    """The stored rows the batches' events name, one statement per table (all sent at once),
    each PBX's rows by its own names."""
    devices: dict[str, set[str]] = defaultdict(set)
    members: dict[str, set[tuple[str, str]]] = defaultdict(set)
    caller_queues: dict[str, set[str]] = defaultdict(set)
    channels: dict[str, set[str]] = defaultdict(set)
    for batch, events in batches:
        pbx = batch.state.pbx
        for e in events:
            if isinstance(e, DeviceStateChanged):
                devices[pbx].add(e.device)
            elif isinstance(e, (MemberChanged, MemberRemoved)) and e.queue and e.interface:
                members[pbx].add((e.queue, e.interface))
            elif isinstance(e, (CallerJoined, CallerLeft)) and e.queue and e.unique_id:
                caller_queues[pbx].add(e.queue)
            elif isinstance(e, (ChannelCreated, ChannelChanged, ChannelHungUp)) and e.unique_id:
                channels[pbx].add(e.unique_id)
    members_per_pbx = [
        ({"pbx": pbx}, {"queue_name": {q for q, _i in keys}, "interface": {i for _q, i in keys}})
        for pbx, keys in members.items()
    ]
    # Every caller of these queues, not only those named: a join or a leave renumbers the rest.
    callers_per_pbx = [
        ({"pbx": pbx}, {"queue_name": names}) for pbx, names in caller_queues.items()
    ]
    # One round trip for the four tables (read_together), not one per table.
    device_rows, member_rows, caller_rows, channel_rows = read_together(
        [
            select_where_any(
                DeviceState,
                [({"pbx": pbx}, {"interface": names}) for pbx, names in devices.items()],
            ),
            select_where_any(QueueMemberState, members_per_pbx),
            select_where_any(QueueCallerState, callers_per_pbx),
            select_where_any(
                LiveChannel,
                [({"pbx": pbx}, {"unique_id": uids}) for pbx, uids in channels.items()],
            ),
        ]
    )
    for row in device_rows:
        if row.interface in devices[row.pbx]:
            by_pbx[row.pbx].devices.found[row.interface] = row
    for row in member_rows:
        if (row.queue_name, row.interface) in members[row.pbx]:
            by_pbx[row.pbx].members.found[(row.queue_name, row.interface)] = row
    for row in caller_rows:
        if row.queue_name in caller_queues[row.pbx]:
            by_pbx[row.pbx].callers.found[(row.queue_name, row.unique_id)] = row
    for row in channel_rows:
        if row.unique_id in channels[row.pbx]:
            by_pbx[row.pbx].channels.found[row.unique_id] = row


# -- the writes, one statement per table and kind for all the batches -------------------------


def _write(batches: list[EventBatch]) -> None:
    _read_pause_before(batches)  # still the rows before these batches: nothing is written yet
    _write_rows(QueueMemberState, [batch.members for batch in batches], MEMBER_FIELDS, None)
    for batch in batches:
        if batch.members_moved:
            batch.state._member_devices = None
    _write_rows(
        DeviceState,
        [batch.devices for batch in batches],
        ["state", "changed_at", "confirmed_at"],
        ["pbx", "interface"],
    )
    dnd: dict[int, bool] = {}
    for batch in batches:
        batch._dnd_of_changed_devices(dnd)
    if dnd:
        # One time for all: three statements per batch (each at its own time) were a quarter
        # of the listener's time with 20 PBXes. The batches of one write are ms apart.
        write_dnd(dnd, max(batch.now for batch in batches))
    _write_rows(
        QueueCallerState,
        [batch.callers for batch in batches],
        CALLER_FIELDS,
        ["pbx", "queue_name", "unique_id"],
    )
    _write_rows(
        LiveChannel,
        [batch.channels for batch in batches],
        CHANNEL_FIELDS,
        ["pbx", "unique_id"],
        changed=sorted(set().union(*(batch.channel_fields for batch in batches))),
    )


def _read_pause_before(batches: list[EventBatch]) -> None:
    users = set().union(*(batch._pause_users for batch in batches))
    if not users:
        return
    paused = paused_reasons(users)
    for batch in batches:
        batch.pause_before.update(
            {
                user_id: (user_id in paused, paused.get(user_id, ""))
                for user_id in batch._pause_users
            }
        )


def _write_rows(
    model,
    tables: list[_Rows],
    fields: list[str],
    upsert_on: list[str] | None,
    *,
    changed: list[str] | None = None,
) -> None:
    """Deletes, then inserts (upserts on `upsert_on`: a row the batch did not read, written
    meanwhile, is replaced as the event-by-event upsert did), then updates the `changed` (or
    all) `fields` of the stored rows the events changed: each in one statement for all these
    batches' rows of the table."""
    gone = [pk for rows in tables for pk in rows.gone]
    if gone:
        delete_rows(model, gone)
    new = [row for rows in tables for row in rows.new.values()]
    if new:
        insert_rows(model, new, conflict=upsert_on or (), update=fields)
    changed = fields if changed is None else changed
    dirty = [rows.found[key] for rows in tables for key in rows.dirty]
    if dirty and changed:
        update_rows(model, dirty, changed)


def update_rows(model, rows: list, fields: list[str]) -> None:
    """Writes these fields of these stored rows: one parametrised UPDATE by primary key, sent
    for all the rows at once (executemany: one pipeline on psycopg).

    Django's bulk_update builds a CASE per field over every row, as expressions the ORM copies
    and resolves one by one: it was a third of the listener's time."""
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    params = [
        [column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns]
        + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def paused_reasons(user_ids: Iterable[int]) -> dict[int, str]:
    """The users paused in any of their queues as the member rows say now, with the first
    reason named ("" if none is): one statement."""
    return read_together([select_paused_reasons(user_ids)])[0]


def select_paused_reasons(user_ids: Iterable[int]) -> Select:
    """paused_reasons' statement, to read with others (plain_sql.read_together)."""
    ids = sorted(user_ids)
    if not ids:
        return Select("", (), dict)
    sql = (
        f"SELECT {column(QueueMemberState, 'user')}, {column(QueueMemberState, 'paused_reason')} "
        f"FROM {table(QueueMemberState)} WHERE {column(QueueMemberState, 'paused')} "
        f"AND {column(QueueMemberState, 'user')} IN ({marks(ids)})"
    )

    def first_reasons(rows: list) -> dict[int, str]:
        paused: dict[int, str] = {}
        for user_id, reason in rows:
            paused[user_id] = paused.get(user_id) or reason
        return paused

    return Select(sql, ids, first_reasons)


def write_dnd(dnd: dict[int, bool], now: datetime) -> None:
    """The DND lamp of these users: only the columns the lamp decides, and only where it changed.

    A userStatus POST may be writing the DND reason at this very moment: a whole-row write of
    what was read would put back the old one."""
    insert_rows(
        UserPresence,
        [
            UserPresence(user_id=user_id, dnd=enabled, changed_at=now, confirmed_at=now)
            for user_id, enabled in sorted(dnd.items())
        ],
        conflict=["user"],
    )
    on = sorted(user_id for user_id, enabled in dnd.items() if enabled)
    off = sorted(user_id for user_id, enabled in dnd.items() if not enabled)
    presence = table(UserPresence)
    user, lamp = column(UserPresence, "user"), column(UserPresence, "dnd")
    moments = (
        f"{column(UserPresence, 'changed_at')} = %s, {column(UserPresence, 'confirmed_at')} = %s"
    )
    when = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        if on:
            cursor.execute(
                f"UPDATE {presence} SET {lamp} = %s, {moments} "
                f"WHERE {user} IN ({marks(on)}) AND {lamp} = %s",
                [True, when, when, *on, False],
            )
        if off:
            cursor.execute(
                f"UPDATE {presence} SET {lamp} = %s, {column(UserPresence, 'dnd_reason')} = %s, "
                f"{moments} WHERE {user} IN ({marks(off)}) AND {lamp} = %s",
                [False, "", when, when, *off, True],
            )
