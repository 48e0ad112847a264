"""Applies what the PBX reports (a snapshot's rows, or typed events) to the live-state tables.

The gateway has already settled how each Asterisk version spells things (pbx/gateway/events.py,
pbx/gateway/snapshot.py): here a member is a member, whatever the PBX called its fields.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from pbx.directory.agent_matching import AgentDirectory, device_of, same_device
from pbx.directory.dnd import DND_DEVICE_PREFIX, key_of_dnd_device
from pbx.gateway import PbxSnapshot
from pbx.gateway.events import PbxEvent
from pbx.live.batch import (
    DND_ON_STATES,
    EventBatch,
    apply_batches,
    paused_reasons,
    select_paused_reasons,
    update_rows,
    write_dnd,
)
from pbx.live.presence import PresenceRow
from pbx.live.version import Changed, announce, changed_by_events, live_changed
from pbx.models import (
    DEFAULT_PBX,
    DeviceState,
    LiveChannel,
    QueueCallerState,
    QueueMemberState,
    UserPresence,
    on_pbx,
)
from pbx.plain_sql import Select, insert_rows, pipelined, read_together, select_where_any

logger = logging.getLogger("swan.listener")

BATCH_RETRY_DELAYS = (0.05, 0.25, 1.0, 3.0)  # seconds before each new try of a batch
_PbxRow = TypeVar("_PbxRow", DeviceState, QueueMemberState, QueueCallerState, LiveChannel)


@dataclass
class LiveChanges:
    """What one application changed: whom to republish, and how many rows it corrected;
    `rows`, the new status of (some of) the users, as read in the transaction that changed them."""

    user_ids: set[int] = field(default_factory=set)
    queue_ids: set[int] = field(default_factory=set)
    company_ids: set[int] = field(default_factory=set)
    corrected: int = 0
    rows: dict[int, PresenceRow] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.user_ids or self.queue_ids or self.company_ids or self.corrected)


def member_pause(user_id: int) -> tuple[bool, str]:
    """(paused, reason) as the user's member rows say: paused in any queue, the first reason."""
    paused = paused_reasons([user_id])
    return user_id in paused, paused.get(user_id, "")


def _stored_pauses(user_ids: set[int]) -> dict[int, tuple[int, tuple[bool, str]]]:
    """user → (presence row's pk, (paused, reason)) of the users that have a presence row."""
    return read_together([_select_stored_pauses(user_ids)])[0]


def _select_stored_pauses(user_ids: set[int]) -> Select:
    select = select_where_any(UserPresence, [({}, {"user": user_ids})])

    def by_user(rows: list) -> dict[int, tuple[int, tuple[bool, str]]]:
        return {
            row.user_id: (row.pk, (row.paused, row.pause_reason)) for row in select.result(rows)
        }

    return Select(select.sql, select.params, by_user)


class LiveState:
    """The live tables as one object; `directory` matches devices and members to users."""

    def __init__(
        self,
        directory: AgentDirectory | None = None,
        *,
        pbx: str = DEFAULT_PBX,
        now: Callable[[], datetime] = timezone.now,
    ):
        self.pbx = pbx
        self.directory = directory or AgentDirectory.load(pbx)
        self.now = now
        # device → users whose queue member rings it (interface or state interface); the status
        # of those users follows that device too (presence.py).
        self._member_devices: dict[str, set[int]] | None = None

    def reload_directory(self) -> None:
        self.directory = AgentDirectory.load(self.pbx)
        self._member_devices = None

    def _rows(self, model: type[_PbxRow]) -> QuerySet[_PbxRow]:
        """This PBX's rows of a live table: another PBX's are another listener's."""
        return model.objects.filter(pbx=self.pbx)

    def _presences(self) -> QuerySet[UserPresence]:
        return UserPresence.objects.filter(on_pbx(self.pbx, "user__company"))

    # -- matching --------------------------------------------------------------------------

    def users_of_device(self, interface: str) -> set[int]:
        dnd_key = key_of_dnd_device(interface)
        if dnd_key is not None:  # scoped by company; a key two companies share maps to no one
            return self.directory.dnd.users_of(dnd_key)
        lowered = same_device(interface).lower()
        users = {user_id for user_id, _ in self.directory.interfaces.get(lowered, [])}
        return users | self._members_of_device(lowered)

    def _members_of_device(self, device: str) -> set[int]:
        if self._member_devices is None:
            index: dict[str, set[int]] = defaultdict(set)
            for user_id, interface, state_interface in (
                self._rows(QueueMemberState)
                .filter(user__isnull=False)
                .values_list("user_id", "interface", "state_interface")
            ):
                index[same_device(interface).lower()].add(user_id)
                if state_interface:
                    index[same_device(state_interface).lower()].add(user_id)
            self._member_devices = dict(index)
        return self._member_devices.get(device, set())

    def member_user(self, queue: str, interface: str, member_name: str, state_interface: str):
        _queue_id, company_id = self.directory.queue(queue)
        for agent in (interface, state_interface, member_name):
            if agent:
                user_id = self.directory.agent_user(agent, company_id)
                if user_id is not None:
                    return user_id
        return None

    # -- snapshot --------------------------------------------------------------------------

    @transaction.atomic
    def apply_snapshot(self, snapshot: PbxSnapshot) -> LiveChanges:
        """Makes the live tables equal to the snapshot; returns what had drifted."""
        now = self.now()
        changes = LiveChanges()
        self._member_devices = None
        if snapshot.device_states:
            self._sync_devices(snapshot.device_states, now, changes)
        else:
            logger.warning("snapshot has no device states (DeviceStateList unsupported?): kept")
        self._sync_members(snapshot, now, changes)
        self._sync_callers(snapshot, now, changes)
        self._match_rows(changes)  # the rows kept: matched when the directory was another
        self._member_devices = None
        self._sync_channels(snapshot, now, changes)
        self._sync_presence(now, changes, dnd_devices=snapshot.device_states or None)
        if changes:
            live_changed(everything=True)
        return changes

    @transaction.atomic
    def rematch(self) -> LiveChanges:
        """After a directory change (an agent's terminal, a user or a queue added, moved or
        removed): the stored members and callers pointed at the users and queues the directory
        names now, and the pause of the users that gained or lost a member. Rows are matched
        when an event or a snapshot writes them; without this, a member seen before its user
        existed in SWAN stayed nobody's until it left the queue."""
        changes = LiveChanges()
        pause_before: dict[int, tuple[bool, str]] = {}
        matched = self._match_rows(changes, pause_before=pause_before)
        if matched:
            self._member_devices = None
            # Only the users whose members moved: a userStatus POST may be storing another
            # user's newer pause at this moment (docs/listener.md).
            _refresh_pauses([(pause_before, self.now(), changes)])
        if self._match_dnd_lamps(changes) or matched:
            live_changed(everything=True)
        return changes

    def _match_dnd_lamps(self, changes: LiveChanges) -> int:
        """The DND lamp of the users the stored `Custom:DND<key>` devices name now (a user
        added, an extension or a company's DND prefix changed), where it differs; how many.
        A user whose key has no stored device keeps its lamp: its state is not known."""
        lamps: dict[int, bool] = {}
        for interface, state in (
            self._rows(DeviceState)
            .filter(interface__istartswith=DND_DEVICE_PREFIX)
            .values_list("interface", "state")
        ):
            for user_id in self.users_of_device(interface):
                lamps[user_id] = state in DND_ON_STATES
        if not lamps:
            return 0
        stored = dict(UserPresence.objects.filter(user__in=lamps).values_list("user_id", "dnd"))
        changed = {user: on for user, on in lamps.items() if stored.get(user, False) != on}
        if changed:
            write_dnd(changed, self.now())
            changes.user_ids |= set(changed)
            changes.corrected += len(changed)
        return len(changed)

    def _match_rows(
        self, changes: LiveChanges, *, pause_before: dict[int, tuple[bool, str]] | None = None
    ) -> int:
        """Re-points the member and caller rows whose user or queue the directory names
        otherwise now; how many it changed. `pause_before` gets the pause of the users they
        leave or join, as the member rows said before."""
        members = []
        users: set[int] = set()
        for row in self._rows(QueueMemberState):
            wanted = (
                self.member_user(
                    row.queue_name, row.interface, row.member_name, row.state_interface
                ),
                self.directory.queue(row.queue_name)[0],
            )
            if (row.user_id, row.queue_id) != wanted:
                self._note_member(row, changes)  # the user and queue it leaves
                users |= {user for user in (row.user_id, wanted[0]) if user is not None}
                row.user_id, row.queue_id = wanted
                self._note_member(row, changes)
                members.append(row)
        if pause_before is not None and users:
            paused = paused_reasons(users)
            pause_before.update({user: (user in paused, paused.get(user, "")) for user in users})
        callers = []
        for caller in self._rows(QueueCallerState):
            queue_id, company_id = self.directory.queue(caller.queue_name)
            if caller.queue_id != queue_id:
                self._note_queue(caller.queue_id, None, changes)
                caller.queue_id = queue_id
                self._note_queue(queue_id, company_id, changes)
                callers.append(caller)
        QueueMemberState.objects.bulk_update(members, ["user", "queue"], batch_size=500)
        QueueCallerState.objects.bulk_update(callers, ["queue"], batch_size=500)
        changes.corrected += len(members) + len(callers)
        return len(members) + len(callers)

    def _sync_devices(self, states: Mapping[str, str], now: datetime, changes: LiveChanges):
        existing = {row.interface: row for row in self._rows(DeviceState)}
        create: list[DeviceState] = []
        update: list[DeviceState] = []
        for interface, state in states.items():
            row = existing.pop(interface, None)
            if row is None:
                create.append(
                    DeviceState(
                        pbx=self.pbx,
                        interface=interface,
                        state=state,
                        changed_at=now,
                        confirmed_at=now,
                    )
                )
            elif row.state != state:
                row.state, row.changed_at = state, now
                update.append(row)
            else:
                continue
            changes.user_ids |= self.users_of_device(interface)
        for interface in existing:
            changes.user_ids |= self.users_of_device(interface)
        self._rows(DeviceState).filter(interface__in=list(existing)).delete()
        DeviceState.objects.bulk_create(create, batch_size=500)
        DeviceState.objects.bulk_update(update, ["state", "changed_at"], batch_size=500)
        self._rows(DeviceState).update(confirmed_at=now)
        changes.corrected += len(create) + len(update) + len(existing)

    def _sync_members(self, snapshot: PbxSnapshot, now: datetime, changes: LiveChanges):
        existing = {(row.queue_name, row.interface): row for row in self._rows(QueueMemberState)}
        create: list[QueueMemberState] = []
        update: list[QueueMemberState] = []
        fields = ["member_name", "state_interface", "paused", "paused_reason", "in_call", "status"]
        for member in snapshot.queue_members:
            wanted = {
                "member_name": member.member_name,
                "state_interface": member.state_interface,
                "paused": member.paused,
                "paused_reason": member.paused_reason if member.paused else "",
                "in_call": member.in_call,
                "status": member.status,
            }
            row = existing.pop((member.queue, member.interface), None)
            if row is None:
                row = self._new_member(member.queue, member.interface, wanted, now)
                row.calls_taken = member.calls_taken
                create.append(row)
            elif any(getattr(row, name) != value for name, value in wanted.items()):
                for name, value in wanted.items():
                    setattr(row, name, value)
                row.changed_at, row.calls_taken = now, member.calls_taken
                update.append(row)
            else:
                continue
            self._note_member(row, changes)
        for row in existing.values():
            self._note_member(row, changes)
        QueueMemberState.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
        QueueMemberState.objects.bulk_create(create, batch_size=500)
        QueueMemberState.objects.bulk_update(
            update, [*fields, "changed_at", "calls_taken"], batch_size=500
        )
        self._rows(QueueMemberState).update(confirmed_at=now)
        changes.corrected += len(create) + len(update) + len(existing)

    def _sync_callers(self, snapshot: PbxSnapshot, now: datetime, changes: LiveChanges):
        existing = {(row.queue_name, row.unique_id): row for row in self._rows(QueueCallerState)}
        create, moved = [], []
        for caller in snapshot.queue_callers:
            queue_id, company_id = self.directory.queue(caller.queue)
            kept = existing.pop((caller.queue, caller.unique_id), None)
            if kept is not None:
                if kept.position != caller.position:  # one ahead left while we were away
                    kept.position = caller.position
                    moved.append(kept)
                    self._note_queue(queue_id, company_id, changes)
                continue
            create.append(
                QueueCallerState(
                    pbx=self.pbx,
                    queue_name=caller.queue,
                    queue_id=queue_id,
                    unique_id=caller.unique_id,
                    channel=caller.channel,
                    caller_id_num=caller.caller_id_num,
                    position=caller.position,
                    entered_at=snapshot.taken_at - timedelta(seconds=caller.wait_seconds),
                    confirmed_at=now,
                )
            )
            self._note_queue(queue_id, company_id, changes)
        for row in existing.values():
            self._note_queue(row.queue_id, self.directory.queue(row.queue_name)[1], changes)
        QueueCallerState.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
        QueueCallerState.objects.bulk_create(create, batch_size=500)
        QueueCallerState.objects.bulk_update(moved, ["position"], batch_size=500)
        self._rows(QueueCallerState).update(confirmed_at=now)
        changes.corrected += len(create) + len(moved) + len(existing)

    def _sync_channels(self, snapshot: PbxSnapshot, now: datetime, changes: LiveChanges):
        existing = {row.unique_id: row for row in self._rows(LiveChannel)}
        create, update = [], []
        for channel in snapshot.channels:
            row = existing.pop(channel.unique_id, None)
            if row is None:
                create.append(
                    LiveChannel(
                        pbx=self.pbx,
                        unique_id=channel.unique_id,
                        linked_id=channel.linked_id,
                        channel=channel.channel,
                        interface=device_of(channel.channel),
                        state=channel.state,
                        caller_id_num=channel.caller_id_num,
                        connected_line_num=channel.connected_line_num,
                        exten=channel.exten,
                        context=channel.context,
                        started_at=snapshot.taken_at - timedelta(seconds=channel.duration_seconds),
                        confirmed_at=now,
                    )
                )
            elif (row.state, row.connected_line_num) != (channel.state, channel.connected_line_num):
                row.state, row.connected_line_num = channel.state, channel.connected_line_num
                update.append(row)
        self._rows(LiveChannel).filter(unique_id__in=list(existing)).delete()
        LiveChannel.objects.bulk_create(create, batch_size=500)
        LiveChannel.objects.bulk_update(update, ["state", "connected_line_num"], batch_size=500)
        self._rows(LiveChannel).update(confirmed_at=now)
        changes.corrected += len(create) + len(update) + len(existing)

    def _sync_presence(
        self, now: datetime, changes: LiveChanges, *, dnd_devices: Mapping[str, str] | None
    ) -> None:
        """Pause comes from queue membership; DND from the `Custom:DND<key>` device state."""
        paused: dict[int, str] = {}
        for user_id, reason in (
            self._rows(QueueMemberState)
            .filter(paused=True, user__isnull=False)
            .values_list("user_id", "paused_reason")
        ):
            paused[user_id] = paused.get(user_id) or reason
        dnd: set[int] | None = None
        if dnd_devices is not None:
            dnd = set()
            for device, state in dnd_devices.items():
                if device.lower().startswith(DND_DEVICE_PREFIX) and state in DND_ON_STATES:
                    dnd |= self.users_of_device(device)
        presences = {row.user_id: row for row in self._presences()}
        create: list[UserPresence] = []
        update: list[UserPresence] = []
        for user_id in set(presences) | set(paused) | (dnd or set()):
            row = presences.get(user_id) or UserPresence(
                user_id=user_id, changed_at=now, confirmed_at=now
            )
            wanted_dnd = row.dnd if dnd is None else user_id in dnd
            wanted = {
                "paused": user_id in paused,
                "pause_reason": paused.get(user_id, ""),
                "dnd": wanted_dnd,
                "dnd_reason": row.dnd_reason if wanted_dnd else "",
            }
            if row.pk is not None and all(getattr(row, k) == v for k, v in wanted.items()):
                continue
            for name, value in wanted.items():
                setattr(row, name, value)
            row.changed_at = now
            (update if row.pk is not None else create).append(row)
            changes.user_ids.add(user_id)
        UserPresence.objects.bulk_create(create, batch_size=500)
        UserPresence.objects.bulk_update(
            update, ["paused", "pause_reason", "dnd", "dnd_reason", "changed_at"], batch_size=500
        )
        self._presences().update(confirmed_at=now)
        changes.corrected += len(create) + len(update)

    def _new_member(self, queue: str, interface: str, wanted: dict, now: datetime):
        queue_id, _company_id = self.directory.queue(queue)
        return QueueMemberState(
            pbx=self.pbx,
            queue_name=queue,
            queue_id=queue_id,
            interface=interface,
            user_id=self.member_user(
                queue, interface, wanted.get("member_name", ""), wanted.get("state_interface", "")
            ),
            changed_at=now,
            confirmed_at=now,
            **wanted,
        )

    def _note_member(self, row: QueueMemberState, changes: LiveChanges) -> None:
        if row.user_id:
            changes.user_ids.add(row.user_id)
        self._note_queue(row.queue_id, self.directory.queue(row.queue_name)[1], changes)

    @staticmethod
    def _note_queue(queue_id: int | None, company_id: int | None, changes: LiveChanges) -> None:
        if queue_id is not None:
            changes.queue_ids.add(queue_id)
        if company_id is not None:
            changes.company_ids.add(company_id)

    # -- events ----------------------------------------------------------------------------

    def apply_events(self, events: Iterable[PbxEvent]) -> LiveChanges:
        """Applies a batch of events in order, in one transaction (`apply_together`)."""
        return apply_together([(self, events)])[0]


Timed = Sequence[tuple[LiveState, list, datetime]]  # a state, its batch's events, and its now


def apply_together(batches: Sequence[tuple[LiveState, Iterable[PbxEvent]]]) -> list[LiveChanges]:
    """Applies the batches of several PBXes' live states, each in order, in one transaction
    numbered as one change; returns what each batch changed. A bad event is logged and
    skipped, the rest still apply.

    The batches are applied first without a savepoint per event (two round trips fewer per
    event). A database that is locked or away is retried as a whole, so no event is lost to
    it; only if an event itself fails is each batch applied again on its own, and a batch
    that fails alone again event by event, each event in its own savepoint, so that the bad
    one alone is skipped."""
    timed = [(state, list(events), state.now()) for state, events in batches]
    for attempt, delay in enumerate((*BATCH_RETRY_DELAYS, None), start=1):
        try:
            with transaction.atomic(), pipelined():
                return _announced(timed, _apply_batches(timed, guarded=False))
        except OperationalError as exc:
            _forget_member_devices(timed)
            if delay is None:
                raise
            logger.warning(
                "batch retried: database error attempt=%s events=%s error=%s",
                attempt,
                sum(len(events) for _state, events, _now in timed),
                exc,
            )
            if not connection.in_atomic_block:  # a lost connection reconnects on next use
                connection.close_if_unusable_or_obsolete()
            time.sleep(delay)
        except Exception:
            logger.debug("a batch failed as a whole; applying it event by event", exc_info=True)
            break
    _forget_member_devices(timed)  # the rolled-back batch may have changed them
    if len(timed) > 1:
        return [state.apply_events(events) for state, events, _now in timed]
    with transaction.atomic():
        return _announced(timed, _apply_batches(timed, guarded=True))


def _apply_batches(timed: Timed, *, guarded: bool) -> list[LiveChanges]:
    """What each batch changed, its events applied: all batches' rows read and written
    together (batch.apply_batches); or, `guarded`, each event on its own in a savepoint, a bad
    one logged and skipped."""
    results = [LiveChanges() for _ in timed]
    # per batch: user → (paused, reason) as the member rows said before the batch touched them
    befores: list[dict[int, tuple[bool, str]]] = [{} for _ in timed]
    parts = list(zip(timed, results, befores, strict=True))
    if not guarded:
        apply_batches(
            [
                (EventBatch(state, now, changes, before), events)
                for (state, events, now), changes, before in parts
            ]
        )
    else:
        for (state, events, now), changes, before in parts:
            for event in events:
                try:
                    with transaction.atomic():
                        EventBatch(state, now, changes, before).apply([event])
                except OperationalError:
                    raise  # the database, not this event: never skip events for it
                except Exception:
                    state._member_devices = None
                    logger.exception(
                        "skipped an event the listener could not apply event=%s pbx=%s",
                        type(event).__name__,
                        state.pbx,
                    )
    _refresh_pauses([(before, now, changes) for (_s, _e, now), changes, before in parts])
    return results


def _refresh_pauses(parts: list[tuple[dict[int, tuple[bool, str]], datetime, LiveChanges]]) -> None:
    """A user is paused while paused in any of its queues; the first reason names it. For the
    users of every batch at once: `before` (as the member rows said before the batch), the
    batch's time and what it changed.

    Only a change of the member rows in this batch is written: a userStatus POST may have
    stored the PBX's newer answer meanwhile (its events are in the next batch), and the rows
    this batch saw must not put back the older state (docs/listener.md). A user seen the first
    time, and every resync, take the rows' state as it is."""
    before = {user: pause for part, _now, _changes in parts for user, pause in part.items()}
    if not before:
        return
    moment = {user: now for part, now, _changes in parts for user in part}
    user_ids = set(before)
    paused, stored = read_together(
        [select_paused_reasons(user_ids), _select_stored_pauses(user_ids)]
    )
    wanted = {user_id: (user_id in paused, paused.get(user_id, "")) for user_id in user_ids}

    def pause_row(user: int, /, **key) -> UserPresence:
        is_paused, reason = wanted[user]
        now = moment[user]
        return UserPresence(
            paused=is_paused, pause_reason=reason, changed_at=now, confirmed_at=now, **key
        )

    if len(stored) < len(user_ids):
        # Users seen the first time take the rows' state as it is; a row a userStatus POST
        # created meanwhile stays as written and is judged below like any stored row.
        first = sorted(user_ids - stored.keys())
        insert_rows(UserPresence, [pause_row(u, user_id=u) for u in first], conflict=["user"])
        stored |= _stored_pauses(user_ids - stored.keys())
    updates = [
        pause_row(user_id, pk=pk)
        for user_id, (pk, pause) in sorted(stored.items())
        if wanted[user_id] != before[user_id] and pause != wanted[user_id]
    ]
    if updates:
        update_rows(UserPresence, updates, ["paused", "pause_reason", "changed_at", "confirmed_at"])
    for part, _now, changes in parts:
        changes.user_ids |= set(part)


def _forget_member_devices(batches: Timed) -> None:
    for state, _events, _now in batches:
        state._member_devices = None


def _announced(batches: Timed, results: list[LiveChanges]) -> list[LiveChanges]:
    """Numbers what the batches changed as one change; each batch's users' new status, read
    once for all of them, goes back with its changes for the listener to publish."""
    changed = Changed()
    for (_state, events, _now), changes in zip(batches, results, strict=True):
        part = changed_by_events(events, changes.user_ids)
        changed.users |= part.users
        changed.devices |= part.devices
        changed.queues |= part.queues
    announce(changed)
    for changes in results:
        changes.rows = {
            user_id: row for user_id in changes.user_ids if (row := changed.rows.get(user_id))
        }
    return results
