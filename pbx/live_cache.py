"""The web worker's read cache: userStatus, blf-users and queues-status without the live tables.

Each process keeps the directory, users' status rows (rendered once as JSON) and per-queue
figures. Every request first probes the shared state in one query (pbx/live_version.py): if a
writer numbered a change since, the cache drops what the change names (a user's row, a queue's
members and callers, a queue's figures of the day) or, after a directory change, everything;
what is missing is read again from the database, in the same queries as without the cache. So
an answer is never older than the request: a userStatus POST, a listener event, an ingest batch
or an admin edit is seen by the next request of any worker.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from pbx import live_version, selectors
from pbx.agents import same_device
from pbx.auth import ApiClient
from pbx.history import (
    QueueTotals,
    day_bounds,
    entry_totals,
    group_statuses,
    logged_in_members,
    waiting_callers,
)
from pbx.live_version import Changed, Probe
from pbx.models import Company, Department, PbxUser, Queue
from pbx.presence import PresenceRow, presence_rows
from swanproject.envelope import Prerendered, json_bytes
from terminals.models import Terminal

# A cache further behind than this reads everything again rather than the changes one by one.
MAX_CHANGES_BEHIND = 500


@dataclass(frozen=True)
class _User:
    pk: int
    company_id: int
    extension: str
    department: str | None


@dataclass
class _Directory:
    """Companies, users, terminals' devices and queues, as one read of the directory."""

    companies: dict[int, Company] = field(default_factory=dict)  # by pk, in pk order
    users: dict[int, _User] = field(default_factory=dict)
    by_extension: dict[tuple[int, str], int] = field(default_factory=dict)
    company_users: dict[int, list[int]] = field(default_factory=dict)  # in extension order
    departments: dict[int, dict[str, str]] = field(default_factory=dict)  # lower → name
    device_users: dict[str, set[int]] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)

    @classmethod
    def load(cls) -> _Directory:
        directory = cls()
        directory.companies = {c.pk: c for c in Company.objects.order_by("pk")}
        company_users: dict[int, list[_User]] = defaultdict(list)
        for pk, company_id, extension, department in PbxUser.objects.values_list(
            "pk", "company_id", "extension", "department__name"
        ):
            user = _User(pk, company_id, extension, department)
            directory.users[pk] = user
            directory.by_extension[company_id, extension] = pk
            company_users[company_id].append(user)
        directory.company_users = {
            company_id: [u.pk for u in sorted(users, key=lambda u: (len(u.extension), u.extension))]
            for company_id, users in company_users.items()
        }
        departments: dict[int, dict[str, str]] = defaultdict(dict)
        for company_id, name in Department.objects.values_list("company_id", "name"):
            departments[company_id][name.lower()] = name
        directory.departments = dict(departments)
        devices: dict[str, set[int]] = defaultdict(set)
        for user_id, interface in Terminal.objects.filter(user__isnull=False).values_list(
            "user_id", "interface"
        ):
            devices[same_device(interface).lower()].add(user_id)
        directory.device_users = dict(devices)
        directory.queues = {
            q.name: q for q in Queue.objects.select_related("company").order_by("name")
        }
        return directory

    def visible(self, client: ApiClient) -> list[Company]:
        return [c for pk, c in self.companies.items() if client.sees_company(pk)]

    def company_get(self, client: ApiClient, ident: str) -> Company:
        """As selectors.company_get: slug or name, case-insensitive, the lowest pk first."""
        wanted = ident.lower()
        for company in self.visible(client):
            if company.slug.lower() == wanted or company.name.lower() == wanted:
                return company
        raise selectors.company_not_found(ident)


@dataclass
class _QueueLive:
    waiting: int
    oldest: datetime | None
    members: set[str]


class LiveCache:
    """One per process (`live_cache` below); every method is safe from several threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forgets everything (a directory change; between tests)."""
        with self._lock:
            self.version: int | None = None
            self._directory: _Directory | None = None
            self._rows: dict[int, PresenceRow] = {}
            self._json: dict[tuple[int, bool], bytes] = {}
            self._queue_live: dict[str, _QueueLive] = {}
            self._figures: dict[str, tuple[datetime, QueueTotals]] = {}

    # -- keeping up -------------------------------------------------------------------------

    def catch_up(self) -> Probe:
        """Probes the shared state and drops whatever changed since the last request."""
        probe = live_version.probe()
        with self._lock:
            self._catch_up(probe)
        return probe

    def _catch_up(self, probe: Probe) -> None:
        if self.version == probe.version:
            return
        changes = None
        if (
            self.version is not None
            and probe.reset <= self.version < probe.version
            and probe.version - self.version <= MAX_CHANGES_BEHIND
        ):
            changes = live_version.changes_between(self.version, probe.version)
        if changes is None:  # a directory change, a new database, or too far behind
            self.reset()
        else:
            for changed in changes:
                self._drop(changed)
        self.version = probe.version

    def _drop(self, changed: Changed) -> None:
        users = set(changed.users)
        if self._directory is not None:
            for device in changed.devices:
                users |= self._directory.device_users.get(same_device(device).lower(), set())
        for user_id in users:
            self._rows.pop(user_id, None)
            self._json.pop((user_id, False), None)
            self._json.pop((user_id, True), None)
        for name in changed.queues:
            self._queue_live.pop(name, None)
        for name in changed.history:
            self._figures.pop(name, None)

    def _dir(self) -> _Directory:
        if self._directory is None:
            self._directory = _Directory.load()
        return self._directory

    # -- users ------------------------------------------------------------------------------

    def _load_rows(self, user_ids: Iterable[int]) -> None:
        missing = [pk for pk in user_ids if pk not in self._rows]
        if missing:
            for row in presence_rows(PbxUser.objects.filter(pk__in=missing)):
                self._rows[row.user_id] = row

    def _row_json(self, user_id: int, *, with_mobile: bool) -> bytes | None:
        """The user's row as JSON; None if the user was deleted since the directory was read
        (the change that says so comes with the next request)."""
        key = (user_id, with_mobile)
        rendered = self._json.get(key)
        if rendered is None:
            row = self._rows.get(user_id)
            if row is None:
                return None
            data: dict = dict(row.as_user_status())
            if with_mobile:
                data["mobile"] = row.mobile or None
            rendered = self._json[key] = json_bytes(data)
        return rendered

    def user_status(self, *, client: ApiClient, extension: str, company: str | None) -> Prerendered:
        """userStatus GET: as selectors.user_get + user_status_get."""
        with self._lock:
            directory = self._dir()
            if company is not None:
                companies = [directory.company_get(client, company)]
            else:
                companies = directory.visible(client)
            found = [
                pk
                for c in companies
                if (pk := directory.by_extension.get((c.pk, extension))) is not None
            ]
            if len(found) > 1:
                raise selectors.extension_ambiguous(extension)
            if not found:
                raise selectors.extension_not_found(extension)
            self._load_rows(found)
            rendered = self._row_json(found[0], with_mobile=False)
            if rendered is None:
                raise selectors.extension_not_found(extension)
            return Prerendered(rendered)

    def blf_users(
        self,
        *,
        client: ApiClient,
        company: str,
        departments: list[str] | None,
        with_mobile: bool,
    ) -> Prerendered:
        """blf-users: as selectors.blf_users."""
        with self._lock:
            directory = self._dir()
            company_obj = directory.company_get(client, company)
            user_ids = directory.company_users.get(company_obj.pk, [])
            if departments:
                known = directory.departments.get(company_obj.pk, {})
                missing = [name for name in departments if name.lower() not in known]
                if missing:
                    raise selectors.department_not_found(missing[0], company_obj)
                wanted = {known[name.lower()] for name in departments}
                user_ids = [pk for pk in user_ids if directory.users[pk].department in wanted]
            self._load_rows(user_ids)
            rows = [self._row_json(pk, with_mobile=with_mobile) for pk in user_ids]
            return Prerendered(b"[" + b",".join(row for row in rows if row is not None) + b"]")

    # -- queues -----------------------------------------------------------------------------

    def queues_status(
        self,
        *,
        client: ApiClient,
        groups: dict[str, list[str]],
        company: str | None,
        now: datetime | None = None,
    ) -> dict:
        """queues-status: as history.queues_status, from per-queue figures kept here."""
        now = now or timezone.now()
        with self._lock:
            directory = self._dir()
            company_obj = directory.company_get(client, company) if company else None
            names = {name for members in groups.values() for name in members}
            queues = {
                name: queue
                for name in names
                if (queue := directory.queues.get(name)) is not None
                and client.sees_company(queue.company_id)
                and (company_obj is None or queue.company_id == company_obj.pk)
            }
            self._load_queues(queues, now)
            totals: dict[str, QueueTotals] = {}
            members: dict[str, set[str]] = {}
            for name in queues:
                live = self._queue_live[name]
                totals[name] = dataclasses.replace(
                    self._figures[name][1], waiting=live.waiting, oldest_wait=live.oldest
                )
                members[name] = live.members
            return group_statuses(groups, queues, totals, members, now)

    def _load_queues(self, queues: dict[str, Queue], now: datetime) -> None:
        stale = {}
        for name, queue in queues.items():
            day_start, _end = day_bounds(queue.company.time_zone, now)
            cached = self._figures.get(name)
            if cached is None or cached[0] != day_start:
                stale[name] = (queue, day_start)
        if stale:
            totals = entry_totals({name: queue for name, (queue, _d) in stale.items()}, now)
            for name, (_queue, day_start) in stale.items():
                self._figures[name] = (day_start, totals[name])
        missing = [name for name in queues if name not in self._queue_live]
        if missing:
            waiting = waiting_callers(missing)
            members = logged_in_members(missing)
            for name in missing:
                count, oldest = waiting.get(name, (0, None))
                self._queue_live[name] = _QueueLive(count, oldest, set(members.get(name, ())))


live_cache = LiveCache()
