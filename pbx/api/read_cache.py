"""The web worker's read cache: userStatus, blf-users and queues-status without the live tables.

Each process keeps the directory, users' status rows (rendered once as JSON) and per-queue
figures. Every request first probes the shared state in one query (pbx/live/version.py): if a
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
from typing import Any

from django.utils import timezone
from django.utils.translation import get_language

from pbx.directory import lookups
from pbx.directory.agent_matching import same_device
from pbx.directory.api_keys import CompanyScope
from pbx.errors import DomainError
from pbx.history.selectors import (
    QueueTotals,
    agent_totals,
    day_bounds,
    entry_totals,
    group_statuses,
    last_call,
    logged_in_members,
    queue_resume,
    user_figures,
    waiting_callers,
)
from pbx.live import version as live_version
from pbx.live.presence import STATUS_LABELS, PresenceRow, presence_rows_of
from pbx.live.version import Changed, Probe
from pbx.models import Company, Department, PbxUser, Queue, QueueMember
from pbx.prerendered import Prerendered, json_bytes
from terminals.models import Terminal

# A cache further behind than this reads everything again rather than the changes one by one.
MAX_CHANGES_BEHIND = 500


@dataclass(frozen=True)
class _User:
    pk: int
    company_id: int
    extension: str
    department_id: int | None
    department: str | None


@dataclass
class _Directory:
    """Companies, users, terminals' devices and queues, as one read of the directory."""

    companies: dict[int, Company] = field(default_factory=dict)  # by pk, in pk order
    users: dict[int, _User] = field(default_factory=dict)
    by_extension: dict[tuple[int, str], int] = field(default_factory=dict)
    company_users: dict[int, list[int]] = field(default_factory=dict)  # in extension order
    departments: dict[int, dict[str, str]] = field(default_factory=dict)  # lower → name
    department_pks: dict[int, list[tuple[str, int]]] = field(default_factory=dict)  # by name
    department_users: dict[int, set[int]] = field(default_factory=dict)
    device_users: dict[str, set[int]] = field(default_factory=dict)
    user_devices: dict[int, list[str]] = field(default_factory=dict)  # as history reads them
    # A queue name is one PBX's: queues are kept by pk, with the pks of each name.
    queues: dict[int, Queue] = field(default_factory=dict)
    queues_named: dict[str, list[int]] = field(default_factory=dict)
    queue_members: dict[int, set[int]] = field(default_factory=dict)  # as configured

    @classmethod
    def load(cls) -> _Directory:
        directory = cls()
        directory.companies = {c.pk: c for c in Company.objects.order_by("pk")}
        company_users: dict[int, list[_User]] = defaultdict(list)
        department_users: dict[int, set[int]] = defaultdict(set)
        for pk, company_id, extension, department_id, department in PbxUser.objects.values_list(
            "pk", "company_id", "extension", "department_id", "department__name"
        ):
            user = _User(pk, company_id, extension, department_id, department)
            directory.users[pk] = user
            directory.by_extension[company_id, extension] = pk
            company_users[company_id].append(user)
            if department_id is not None:
                department_users[department_id].add(pk)
        directory.department_users = dict(department_users)
        directory.company_users = {
            company_id: [u.pk for u in sorted(users, key=lambda u: (len(u.extension), u.extension))]
            for company_id, users in company_users.items()
        }
        departments: dict[int, dict[str, str]] = defaultdict(dict)
        department_pks: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for pk, company_id, name in Department.objects.order_by("name").values_list(
            "pk", "company_id", "name"
        ):
            departments[company_id][name.lower()] = name
            department_pks[company_id].append((name, pk))
        directory.departments = dict(departments)
        directory.department_pks = dict(department_pks)
        devices: dict[str, set[int]] = defaultdict(set)
        user_devices: dict[int, set[str]] = defaultdict(set)
        for user_id, interface in Terminal.objects.filter(user__isnull=False).values_list(
            "user_id", "interface"
        ):
            devices[same_device(interface).lower()].add(user_id)
            user_devices[user_id].add(same_device(interface))
        directory.device_users = dict(devices)
        directory.user_devices = {pk: sorted(names) for pk, names in user_devices.items()}
        directory.queues = {
            q.pk: q for q in Queue.objects.select_related("company").order_by("name", "pk")
        }
        named: dict[str, list[int]] = defaultdict(list)
        for pk, queue in directory.queues.items():
            named[queue.name].append(pk)
        directory.queues_named = dict(named)
        members: dict[int, set[int]] = defaultdict(set)
        for queue_id, user_id in QueueMember.objects.values_list("queue_id", "user_id"):
            members[queue_id].add(user_id)
        directory.queue_members = dict(members)
        return directory

    def visible(self, client: CompanyScope) -> list[Company]:
        return [c for pk, c in self.companies.items() if client.sees_company(pk)]

    def company_get(self, client: CompanyScope, ident: str) -> Company:
        """As lookups.company_get: slug or name, case-insensitive, the lowest pk first."""
        wanted = ident.lower()
        for company in self.visible(client):
            if company.slug.lower() == wanted or company.name.lower() == wanted:
                return company
        raise lookups.company_not_found(ident)

    def user_find(self, client: CompanyScope, extension: str, company: str | None) -> int | None:
        """As lookups.user_find: the user's pk, None if none, 409 if ambiguous."""
        if company is not None:
            companies = [self.company_get(client, company)]
        else:
            companies = self.visible(client)
        found = [
            pk for c in companies if (pk := self.by_extension.get((c.pk, extension))) is not None
        ]
        if len(found) > 1:
            raise lookups.extension_ambiguous(extension)
        return found[0] if found else None

    def pbxes_of(
        self, client: CompanyScope, company: str | None, extension: str | None
    ) -> set[str]:
        """The PBXes an answer about this company (or the user of this extension, or else all
        the key's companies) comes from."""
        try:
            if extension is not None:
                pk = self.user_find(client, extension, company)
                if pk is not None:
                    return {self.companies[self.users[pk].company_id].pbx_key}
            if company is not None:
                return {self.company_get(client, company).pbx_key}
        except DomainError:
            pass  # the answer is that error; its header does not matter
        return {c.pbx_key for c in self.visible(client)}

    def visible_queues(
        self, client: CompanyScope, names: Iterable[str], company: Company | None
    ) -> dict[int, Queue]:
        """As history._visible_queues: by pk, a name may be a queue on each of several PBXes."""
        return {
            pk: queue
            for name in set(names)
            for pk in self.queues_named.get(name, ())
            if client.sees_company((queue := self.queues[pk]).company_id)
            and (company is None or queue.company_id == company.pk)
        }

    def queues_of(self, names: Iterable[str]) -> list[int]:
        return [pk for name in names for pk in self.queues_named.get(name, ())]


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
            # user → (with mobile, language) → the row as JSON
            self._json: dict[int, dict[tuple[bool, str], bytes]] = {}
            # company → (departments, with mobile, language) → a blf-users answer as JSON
            self._lists: dict[int, dict[tuple, bytes]] = {}
            # by queue pk
            self._queue_live: dict[int, _QueueLive] = {}
            self._figures: dict[int, tuple[datetime, QueueTotals]] = {}
            # base of comparison → (day start, its user ids, today's answered calls and talk
            # per user); any change of the history drops them all
            self._agent_totals: dict[tuple, tuple[datetime, set[int], dict]] = {}

    # -- keeping up -------------------------------------------------------------------------

    def catch_up(self) -> Probe:
        """Probes the shared state and applies whatever changed since the last request."""
        with self._lock:
            probe, changes = live_version.probe_with_changes(
                after=self.version, at_most=MAX_CHANGES_BEHIND
            )
            if self.version != probe.version:
                if changes is None:  # a directory change, a new database, or too far behind
                    self.reset()
                else:
                    for changed in changes:
                        self._apply(changed)
                self.version = probe.version
        return probe

    def _apply(self, changed: Changed) -> None:
        users = set(changed.users)
        if self._directory is not None:
            for device in changed.devices:
                users |= self._directory.device_users.get(same_device(device).lower(), set())
        for user_id in users:
            row = changed.rows.get(user_id)
            if row is None:
                self._rows.pop(user_id, None)
            else:
                self._rows[user_id] = row
            self._json.pop(user_id, None)
            user = self._directory.users.get(user_id) if self._directory is not None else None
            if user is not None:
                self._lists.pop(user.company_id, None)
        # A change names queues, not PBXes: the queues of that name on every PBX are read again.
        if self._directory is None:
            self._queue_live.clear()
            self._figures.clear()
        else:
            for pk in self._directory.queues_of(changed.queues):
                self._queue_live.pop(pk, None)
            for pk in self._directory.queues_of(changed.history):
                self._figures.pop(pk, None)
        if changed.history:
            self._agent_totals.clear()

    def pbxes_of(
        self, *, client: CompanyScope, company: str | None, extension: str | None
    ) -> set[str]:
        with self._lock:
            return self._dir().pbxes_of(client, company, extension)

    def _dir(self) -> _Directory:
        if self._directory is None:
            self._directory = _Directory.load()
        return self._directory

    # -- users ------------------------------------------------------------------------------

    def _load_rows(self, user_ids: Iterable[int]) -> None:
        missing = [pk for pk in user_ids if pk not in self._rows]
        if missing:
            for row in presence_rows_of(missing):
                self._rows[row.user_id] = row

    def _row_json(self, user_id: int, key: tuple[bool, str]) -> bytes | None:
        """The user's row as JSON, `key` = (with mobile, language); None if the user was
        deleted since the directory was read (the change that says so comes next request)."""
        renderings = self._json.get(user_id)
        if renderings is None:
            renderings = self._json[user_id] = {}
        rendered = renderings.get(key)
        if rendered is None:
            row = self._rows.get(user_id)
            if row is None:
                return None
            data: dict = dict(row.as_user_status())
            # The label in this request's language: the row may come from another process.
            data["description"] = row.reason or str(STATUS_LABELS[row.status])
            if key[0]:
                data["mobile"] = row.mobile or None
            rendered = renderings[key] = json_bytes(data)
        return rendered

    def user_status(
        self, *, client: CompanyScope, extension: str, company: str | None
    ) -> Prerendered:
        """userStatus GET: as lookups.user_get + live selectors' user_status_get."""
        with self._lock:
            pk = self._dir().user_find(client, extension, company)
            if pk is None:
                raise lookups.extension_not_found(extension)
            self._load_rows([pk])
            rendered = self._row_json(pk, (False, get_language()))
            if rendered is None:
                raise lookups.extension_not_found(extension)
            return Prerendered(rendered)

    def blf_users(
        self,
        *,
        client: CompanyScope,
        company: str,
        departments: list[str] | None,
        with_mobile: bool,
    ) -> Prerendered:
        """blf-users: every user of the company (or of some departments) with its live status."""
        with self._lock:
            directory = self._dir()
            company_obj = directory.company_get(client, company)
            user_ids = directory.company_users.get(company_obj.pk, [])
            wanted: frozenset[str] = frozenset()
            if departments:
                known = directory.departments.get(company_obj.pk, {})
                missing = [name for name in departments if name.lower() not in known]
                if missing:
                    raise lookups.department_not_found(missing[0], company_obj)
                wanted = frozenset(known[name.lower()] for name in departments)
            key = (with_mobile, get_language())
            lists = self._lists.setdefault(company_obj.pk, {})
            answer = lists.get((wanted, *key))
            if answer is None:
                if wanted:
                    user_ids = [pk for pk in user_ids if directory.users[pk].department in wanted]
                self._load_rows(user_ids)
                rows = [self._row_json(pk, key) for pk in user_ids]
                answer = b"[" + b",".join(row for row in rows if row is not None) + b"]"
                lists[wanted, *key] = answer
            return Prerendered(answer)

    # -- queues -----------------------------------------------------------------------------

    def queues_status(
        self,
        *,
        client: CompanyScope,
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
            queues = directory.visible_queues(client, names, company_obj)
            totals = self._queue_totals(queues, now)
            members = {pk: self._queue_live[pk].members for pk in queues}
            return group_statuses(groups, queues, totals, members, now)

    def user_resume(
        self,
        *,
        client: CompanyScope,
        extension: str,
        company: str,
        groups: dict[str, list[str]] | None,
        department: str | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """user-resume: as history.user_resume, from the figures kept here; the user's last
        call is read from the CDR each time."""
        now = now or timezone.now()
        with self._lock:
            directory = self._dir()
            company_obj = directory.company_get(client, company)
            user_pk = directory.user_find(client, extension, company)
            department_pk = None
            if department:
                wanted = department.lower()
                department_pk = next(
                    (
                        pk
                        for name, pk in directory.department_pks.get(company_obj.pk, [])
                        if name.lower() == wanted
                    ),
                    None,
                )
                if department_pk is None:
                    raise lookups.department_not_found(department, company_obj)
            result: dict[str, Any] = {"waiting-calls": {}}
            queues: dict[int, Queue] = {}
            if groups:
                names = {name for members in groups.values() for name in members}
                queues = directory.visible_queues(client, names, company_obj)
                result.update(queue_resume(groups, queues, self._queue_totals(queues, now)))
            if user_pk is None:
                return result
            if department_pk is not None:
                base_key: tuple = ("department", department_pk)
                base = directory.department_users.get(department_pk, set())
            elif queues:
                base_key = ("queues", frozenset(queues))
                base = set().union(*(directory.queue_members.get(pk, set()) for pk in queues))
            else:
                base_key = ("company", company_obj.pk)
                base = set(directory.company_users.get(company_obj.pk, []))
            base = base | {user_pk}
            start, end = day_bounds(company_obj.time_zone, now)
            cached = self._agent_totals.get(base_key)
            if cached is None or cached[0] != start or not base <= cached[1]:
                # The user counts in its base even when not of it: keep its figures beside.
                ids = base | (cached[1] if cached is not None and cached[0] == start else set())
                cached = (start, ids, agent_totals(ids, start, end))
                self._agent_totals[base_key] = cached
            totals = {pk: figures for pk, figures in cached[2].items() if pk in base}
            user = directory.users[user_pk]
            devices = directory.user_devices.get(user_pk, [])
        person = PbxUser(pk=user.pk, company=company_obj, extension=user.extension)
        result["user"] = user_figures(
            user_id=user_pk,
            totals=totals,
            members=len(base),
            last=last_call(user=person, devices=devices),
        )
        return result

    def _queue_totals(self, queues: dict[int, Queue], now: datetime) -> dict[int, QueueTotals]:
        """Today's figures and the callers waiting now, per queue, as history._queue_totals."""
        self._load_queues(queues, now)
        return {
            pk: dataclasses.replace(
                self._figures[pk][1],
                waiting=self._queue_live[pk].waiting,
                oldest_wait=self._queue_live[pk].oldest,
            )
            for pk in queues
        }

    def _load_queues(self, queues: dict[int, Queue], now: datetime) -> None:
        stale = {}
        for pk, queue in queues.items():
            day_start, _end = day_bounds(queue.company.time_zone, now)
            cached = self._figures.get(pk)
            if cached is None or cached[0] != day_start:
                stale[pk] = (queue, day_start)
        if stale:
            totals = entry_totals({pk: queue for pk, (queue, _d) in stale.items()}, now)
            for pk, (_queue, day_start) in stale.items():
                self._figures[pk] = (day_start, totals[pk])
        missing = {pk: queue for pk, queue in queues.items() if pk not in self._queue_live}
        if missing:
            waiting = waiting_callers(missing)
            members = logged_in_members(missing)
            for pk in missing:
                count, oldest = waiting.get(pk, (0, None))
                self._queue_live[pk] = _QueueLive(count, oldest, set(members.get(pk, ())))


live_cache = LiveCache()
