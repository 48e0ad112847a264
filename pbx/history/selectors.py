"""Reads of the call history: queues-status, user-resume, last-calls and recordings.

A queue name, a uniqueid, a callid or a device name is one PBX's: every read by them is scoped
to the PBX of the company asking (`company.pbx_key`, `queue.pbx`), so that a queue or a phone of
the same name on another PBX never shows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypedDict, TypeVar
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.directory.agent_matching import same_device
from pbx.directory.api_keys import CompanyScope
from pbx.directory.lookups import company_get, user_find, user_get
from pbx.errors import NotFound
from pbx.history.last_call_rows import newest_call_rows
from pbx.local_time import local_time
from pbx.models import (
    Company,
    Department,
    PbxUser,
    Queue,
    QueueCallerState,
    QueueMember,
    QueueMemberState,
)
from pbx.models.history import CdrRecord, QueueEntry
from pbx.plain_sql import marks, table

ANSWERED = (QueueEntry.Outcome.ANSWERED, QueueEntry.Outcome.TRANSFERRED)
UNANSWERED = (
    QueueEntry.Outcome.ABANDONED,
    QueueEntry.Outcome.TIMEOUT,
    QueueEntry.Outcome.EMPTY,
    QueueEntry.Outcome.KEY_PRESS,
)
logger = logging.getLogger("swan.history")
K = TypeVar("K", bound=Hashable)  # how a caller keys its queues (a pk, a name of one PBX…)


class QueueStatus(TypedDict):
    abandoned: int
    abandonedRatio: float
    avgRingTime: float
    avgRingTimeRatio: float
    completed: int
    currentCalls: int
    maxRingTime: int
    ringTimeOK: int
    serviceRatio: float


class QueueGroupStatus(TypedDict):
    members: list[str]
    alarm: bool
    status: QueueStatus


class LastCall(TypedDict):
    uniqueid: str
    calldate: str
    duration: int
    number: str
    direction: str


def day_bounds(time_zone: str, now: datetime) -> tuple[datetime, datetime]:
    """Today in the zone, from local midnight to the next (23 or 25 hours on DST days)."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time.min, zone)
    end = datetime.combine(today + timedelta(days=1), time.min, zone)
    return start, end


def _ratio(numerator: float, divisor: float, *, if_zero: float) -> float:
    return if_zero if not divisor else round(numerator * 100 / divisor, 2)


def in_extension_order(extensions: Iterable[str]) -> list[str]:
    """Shorter first, then by digits: 99, 100, 200 (the sort is stable, so by text, then by
    length, is that order without a key function called per item)."""
    return sorted(sorted(extensions), key=len)


@dataclass
class QueueTotals:
    completed: int = 0
    abandoned: int = 0
    wait_sum: int = 0
    wait_max: int = 0
    ring_ok: int = 0
    talk: int = 0
    waiting: int = 0
    oldest_wait: datetime | None = None

    def add(self, other: QueueTotals) -> None:
        self.completed += other.completed
        self.abandoned += other.abandoned
        self.wait_sum += other.wait_sum
        self.wait_max = max(self.wait_max, other.wait_max)
        self.ring_ok += other.ring_ok
        self.talk += other.talk
        self.waiting += other.waiting
        if other.oldest_wait and (not self.oldest_wait or other.oldest_wait < self.oldest_wait):
            self.oldest_wait = other.oldest_wait

    def status(self) -> QueueStatus:
        avg = round(self.wait_sum / self.completed, 2) if self.completed else 0
        return {
            "abandoned": self.abandoned,
            "abandonedRatio": round(
                100 - _ratio(self.abandoned, self.completed + self.abandoned, if_zero=0), 2
            ),
            "avgRingTime": avg,
            "avgRingTimeRatio": _ratio(avg, self.wait_max, if_zero=0),
            "completed": self.completed,
            "currentCalls": self.waiting,
            "maxRingTime": self.wait_max,
            "ringTimeOK": self.ring_ok,
            "serviceRatio": _ratio(self.ring_ok, self.completed, if_zero=100),
        }


def _visible_queues(
    *, client: CompanyScope, names: Iterable[str], company: Company | None
) -> dict[int, Queue]:
    """The queues of these names the client sees, by pk: without `company`, a name may be a
    queue of each of several companies (on several PBXes)."""
    queues = Queue.objects.filter(name__in=set(names), company__in=client.companies())
    if company is not None:
        queues = queues.filter(company=company)
    return {q.pk: q for q in queues.select_related("company")}


def on_queues(queues: Iterable[Queue], **also: Any) -> Q:
    """Rows of these queues: by name on each queue's own PBX (with `also` for every group)."""
    by_pbx: dict[str, list[str]] = defaultdict(list)
    for queue in queues:
        by_pbx[queue.pbx].append(queue.name)
    condition = Q(pk__in=[])
    for pbx, names in by_pbx.items():
        condition |= Q(pbx=pbx, queue_name__in=names, **also)
    return condition


def _keys_by_place(queues: Mapping[K, Queue]) -> tuple[Q, dict[tuple[str, str], list[K]]]:
    """A filter for the rows (pbx, queue_name) of these queues, and whose rows each pair gives."""
    return on_queues(queues.values()), _keys_of(queues)


def _keys_of(queues: Mapping[K, Queue]) -> dict[tuple[str, str], list[K]]:
    keys: dict[tuple[str, str], list[K]] = defaultdict(list)
    for key, queue in queues.items():
        keys[queue.pbx, queue.name].append(key)
    return keys


def _places(keys: dict[tuple[str, str], list[K]], pbx: str, name: str) -> list[K]:
    return keys.get((pbx, name), [])


def entry_totals(queues: Mapping[K, Queue], now: datetime) -> dict[K, QueueTotals]:
    """Today's figures per queue (by the caller's key), from its queue entries, in one indexed
    aggregate: a queue's entries are those of its PBX and name entered today, local to its
    company; answered within its service level counts as ring OK.

    Plain SQL: the wallboard asks for it at every queue update, and compiling the ORM's
    aggregate cost ten times what running it did."""
    totals = {key: QueueTotals() for key in queues}
    if not queues:
        return totals
    keys = _keys_of(queues)
    today: list[str] = []
    ring_ok: list[str] = []
    today_params: list = []
    ring_params: list = []
    adapt = connection.ops.adapt_datetimefield_value
    for (pbx, name), places in keys.items():
        queue = queues[places[0]]
        start, end = day_bounds(queue.company.time_zone, now)
        today.append("(pbx = %s AND queue_name = %s AND entered_at >= %s AND entered_at < %s)")
        today_params += [pbx, name, adapt(start), adapt(end)]
        ring_ok.append("(pbx = %s AND queue_name = %s AND wait_seconds < %s)")
        ring_params += [pbx, name, queue.service_level_seconds]
    answered = f"outcome IN ({marks(ANSWERED)})"
    unanswered = f"outcome IN ({marks(UNANSWERED)})"
    sql = (
        f"SELECT pbx, queue_name, "
        f"SUM(CASE WHEN {answered} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {unanswered} THEN 1 ELSE 0 END), "
        f"COALESCE(SUM(CASE WHEN {answered} THEN wait_seconds END), 0), "
        f"COALESCE(MAX(CASE WHEN {answered} THEN wait_seconds END), 0), "
        f"SUM(CASE WHEN {answered} AND ({' OR '.join(ring_ok)}) THEN 1 ELSE 0 END), "
        f"COALESCE(SUM(CASE WHEN {answered} THEN talk_seconds END), 0) "
        f"FROM {table(QueueEntry)} WHERE {' OR '.join(today)} GROUP BY pbx, queue_name"
    )
    params = [
        *ANSWERED, *UNANSWERED, *ANSWERED, *ANSWERED, *ANSWERED, *ring_params, *ANSWERED,
        *today_params,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, [str(value) if isinstance(value, str) else value for value in params])
        rows = cursor.fetchall()
    for pbx, name, completed, abandoned, wait_sum, wait_max, ring, talk in rows:
        for key in _places(keys, pbx, name):
            t = totals[key]
            t.completed, t.abandoned = int(completed), int(abandoned)
            t.wait_sum, t.wait_max, t.ring_ok = int(wait_sum), int(wait_max), int(ring)
            t.talk = int(talk)
    return totals


def waiting_callers(queues: Mapping[K, Queue]) -> dict[K, tuple[int, datetime | None]]:
    """Callers waiting now per queue (on its PBX), and since when the longest has waited (one
    aggregate)."""
    condition, keys = _keys_by_place(queues)
    rows = (
        QueueCallerState.objects.filter(condition)
        .values("pbx", "queue_name")
        .annotate(waiting=Count("pk"), oldest=Min("entered_at"))
        .order_by()
    )
    found: dict[K, tuple[int, datetime | None]] = {}
    for row in rows:
        for key in _places(keys, row["pbx"], row["queue_name"]):
            waiting, oldest = found.get(key, (0, None))
            if oldest is None or (row["oldest"] is not None and row["oldest"] < oldest):
                oldest = row["oldest"]
            found[key] = (waiting + row["waiting"], oldest)
    return found


def logged_in_members(queues: Mapping[K, Queue]) -> dict[K, set[str]]:
    """Extensions of the users logged in to each queue (on its PBX) now, paused or not (one
    query)."""
    condition, keys = _keys_by_place(queues)
    members: dict[K, set[str]] = defaultdict(set)
    for pbx, queue_name, extension in (
        QueueMemberState.objects.filter(condition, user__isnull=False)
        .values_list("pbx", "queue_name", "user__extension")
        .distinct()
    ):
        for key in _places(keys, pbx, queue_name):
            members[key].add(extension)
    return members


def _queue_totals(queues: Mapping[K, Queue], now: datetime) -> dict[K, QueueTotals]:
    """Today's figures and the callers waiting now, per queue, in two indexed aggregates."""
    totals = entry_totals(queues, now)
    for key, (waiting, oldest) in waiting_callers(queues).items():
        totals[key].waiting, totals[key].oldest_wait = waiting, oldest
    return totals


class AlarmBreach(TypedDict):
    """One alarm rule a queue breaks now: the rule, its threshold and the value breaking it."""

    rule: str  # waiting_calls | wait_seconds | service_ratio | abandoned_ratio
    threshold: float
    value: float


def alarm_breaches(
    queue: Queue, status: QueueStatus, *, longest_wait: float | None
) -> list[AlarmBreach]:
    """The queue's alarm rules broken now (contract.md, queues-status `alarm`), in rule order.

    `longest_wait`: seconds the longest-waiting caller has waited, None when nobody waits (the
    wait rule then holds whatever its threshold).
    """
    breaches: list[AlarmBreach] = []
    waiting = status["currentCalls"]
    if queue.alarm_waiting_calls is not None and waiting >= queue.alarm_waiting_calls:
        breaches.append(
            {"rule": "waiting_calls", "threshold": queue.alarm_waiting_calls, "value": waiting}
        )
    if (
        queue.alarm_wait_seconds is not None
        and longest_wait is not None
        and longest_wait >= queue.alarm_wait_seconds
    ):
        breaches.append(
            {
                "rule": "wait_seconds",
                "threshold": queue.alarm_wait_seconds,
                "value": int(longest_wait),
            }
        )
    for rule, threshold, value in (
        ("service_ratio", queue.alarm_service_ratio_below, status["serviceRatio"]),
        ("abandoned_ratio", queue.alarm_abandoned_ratio_below, status["abandonedRatio"]),
    ):
        if threshold is not None and Decimal(str(value)) < threshold:
            breaches.append({"rule": rule, "threshold": float(threshold), "value": value})
    return breaches


def longest_wait(oldest_entered_at: datetime | None, now: datetime) -> float | None:
    """Seconds the longest-waiting caller has waited by `now`; None when nobody waits."""
    if oldest_entered_at is None:
        return None
    return (now - oldest_entered_at).total_seconds()


def _alarm(queue: Queue, totals: QueueTotals, now: datetime) -> bool:
    return bool(
        alarm_breaches(queue, totals.status(), longest_wait=longest_wait(totals.oldest_wait, now))
    )


def _keys_named(queues: Mapping[K, Queue]) -> dict[str, list[K]]:
    """The keys of the queues of each name (several: one per PBX a client sees it on)."""
    named: dict[str, list[K]] = defaultdict(list)
    for key, queue in queues.items():
        named[queue.name].append(key)
    return named


def group_statuses(
    groups: dict[str, list[str]],
    queues: Mapping[K, Queue],
    totals: Mapping[K, QueueTotals],
    members: Mapping[K, set[str]],
    now: datetime,
) -> dict[str, dict[str, QueueGroupStatus]]:
    """queues-status's answer from per-queue figures: a group adds up its visible queues (of a
    name seen on several PBXes, each)."""
    named = _keys_named(queues)
    result: dict[str, QueueGroupStatus] = {}
    for group, queue_names in groups.items():
        group_totals = QueueTotals()
        extensions: set[str] = set()
        alarm = False
        for name in dict.fromkeys(queue_names):
            # unknown or not visible: an empty queue
            for key in named.get(name, ()):
                group_totals.add(totals[key])
                extensions |= members.get(key, set())
                alarm = alarm or _alarm(queues[key], totals[key], now)
        result[group] = {
            "members": in_extension_order(extensions),
            "alarm": alarm,
            "status": group_totals.status(),
        }
    return {"queues": result}


def queues_status(
    *,
    client: CompanyScope,
    groups: dict[str, list[str]],
    company: str | None = None,
    now: datetime | None = None,
) -> dict[str, dict[str, QueueGroupStatus]]:
    """queues-status: per group, members logged in now, alarm, and today's figures.

    Four queries whatever the number of groups and queues (five with `company`). The REST
    endpoint answers the same from the web worker's read cache (pbx/api/read_cache.py).
    """
    now = now or timezone.now()
    company_obj = company_get(client=client, ident=company) if company else None
    names = {name for members in groups.values() for name in members}
    queues = _visible_queues(client=client, names=names, company=company_obj)
    totals = _queue_totals(queues, now)
    return group_statuses(groups, queues, totals, logged_in_members(queues), now)


def speech_time(seconds: int) -> str:
    """`"MM minutes SS seconds"`, translated; minutes are not capped at 59."""
    minutes, seconds = divmod(int(seconds), 60)
    return _("%(minutes)02d minutes %(seconds)02d seconds") % {
        "minutes": minutes,
        "seconds": seconds,
    }


def _state(percentage: float) -> int:
    points = percentage - 100
    if points <= -25:
        return 1
    if points <= -5:
        return 2
    if points < 5:
        return 3
    if points < 25:
        return 4
    return 5


def _comparison(value: float, base: float) -> dict[str, Any]:
    percentage = 100.0 if not base else round(value * 100 / base, 2)
    return {"percentage": percentage, "state": _state(percentage)}


def user_resume(
    *,
    client: CompanyScope,
    extension: str,
    company: str,
    groups: dict[str, list[str]] | None = None,
    department: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """user-resume: waiting callers per group, today's queue totals, and the user against a base."""
    now = now or timezone.now()
    company_obj = company_get(client=client, ident=company)
    user = user_find(client=client, extension=extension, company=company)
    department_obj = None
    if department:
        department_obj = Department.objects.filter(
            company=company_obj, name__iexact=department
        ).first()
        if department_obj is None:
            raise NotFound(
                _("Department '%(department)s' not found in company '%(company)s'.")
                % {"department": department, "company": company_obj.slug}
            )
    result: dict[str, Any] = {"waiting-calls": {}}
    queues: dict[int, Queue] = {}
    if groups:
        names = {name for members in groups.values() for name in members}
        queues = _visible_queues(client=client, names=names, company=company_obj)
        result.update(queue_resume(groups, queues, _queue_totals(queues, now)))
    if user is not None:
        base_ids = _base_user_ids(
            user=user, company=company_obj, department=department_obj, queues=queues
        )
        start, end = day_bounds(company_obj.time_zone, now)
        result["user"] = user_figures(
            user_id=user.pk,
            totals=agent_totals(base_ids, start, end),
            members=len(base_ids),
            last=last_call(user=user),
        )
    return result


def queue_resume(
    groups: dict[str, list[str]], queues: Mapping[K, Queue], totals: Mapping[K, QueueTotals]
) -> dict[str, Any]:
    """user-resume's `waiting-calls` per group and `queue`, today's totals of all the queues."""
    all_queues = QueueTotals()
    for key in queues:
        all_queues.add(totals[key])
    named = _keys_named(queues)
    return {
        "waiting-calls": {
            group: sum(
                totals[key].waiting for name in dict.fromkeys(names) for key in named.get(name, ())
            )
            for group, names in groups.items()
        },
        "queue": {
            "completed": all_queues.completed,
            "abandoned": all_queues.abandoned,
            "totalSpeechTime": speech_time(all_queues.talk),
        },
    }


def _base_user_ids(
    *,
    user: PbxUser,
    company: Company,
    department: Department | None,
    queues: Mapping[int, Queue],
) -> set[int]:
    """Whom the user is compared with: its department, else its queues' members, else its
    company; the user always counts."""
    if department is not None:
        base_users: QuerySet = PbxUser.objects.filter(department=department)
    elif queues:
        base_users = PbxUser.objects.filter(
            pk__in=QueueMember.objects.filter(queue__in=queues.values()).values("user_id")
        )
    else:
        base_users = PbxUser.objects.filter(company=company)
    return set(base_users.values_list("pk", flat=True)) | {user.pk}


def agent_totals(
    user_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, tuple[int, int]]:
    """Queue calls each of these users answered between start and end, and their talk seconds
    (one aggregate on the agent index)."""
    rows = (
        QueueEntry.objects.filter(
            agent_user__in=list(user_ids),
            outcome__in=ANSWERED,
            entered_at__gte=start,
            entered_at__lt=end,
        )
        .values("agent_user")
        .annotate(completed=Count("pk"), talk=Sum("talk_seconds", default=0))
        .order_by()
    )
    return {row["agent_user"]: (row["completed"], row["talk"]) for row in rows}


def user_figures(
    *,
    user_id: int,
    totals: dict[int, tuple[int, int]],
    members: int,
    last: LastCall | None,
) -> dict[str, Any]:
    """user-resume's `user`: its figures against the base's per-member average."""
    completed, talk = totals.get(user_id, (0, 0))
    all_completed = sum(count for count, _talk in totals.values())
    all_talk = sum(seconds for _count, seconds in totals.values())
    return {
        "completed": completed,
        "totalSpeechTime": speech_time(talk),
        "lastCall": last["number"] if last else None,
        "stats_complete": _comparison(completed, all_completed / members),
        "stats_time": _comparison(talk, all_talk / members),
    }


def _involving(user: PbxUser, devices: list[str]) -> Q:
    """CDR rows of the user's PBX the user took part in: by one of its devices, or by its
    extension in its company. pbx/history/last_call_rows.py writes the same rule as SQL (its
    test compares the two)."""
    on_its_pbx = Q(pbx=user.company.pbx_key)
    extension_rows = Q(company=user.company_id) & (Q(src=user.extension) | Q(dst=user.extension))
    if not devices:
        return on_its_pbx & extension_rows
    by_device = Q(channel_device__in=devices) | Q(dstchannel_device__in=devices)
    # A row another company's traffic left on a same-named device is never this user's; nor is
    # one of another PBX, whatever its device is called.
    return on_its_pbx & (
        (by_device & (Q(company=user.company_id) | Q(company__isnull=True))) | extension_rows
    )


def devices_of(user: PbxUser) -> list[str]:
    return sorted({same_device(t.interface) for t in user.terminals.all()})


def cdr_involving(user: PbxUser) -> Q:
    """The CDR rows the user took part in, as last-calls finds them (a filter for CdrRecord)."""
    return _involving(user, devices_of(user))


def _other_number(row: CdrRecord, *, outgoing: bool) -> str:
    if outgoing:
        return row.dst
    if row.src:
        return row.src
    return row.clid.rpartition("<")[2].rstrip(">") if "<" in row.clid else row.clid


def _placed_by(row: CdrRecord, user: PbxUser, devices: list[str]) -> bool:
    if row.channel_device in devices:
        return True
    return row.src == user.extension and row.dstchannel_device not in devices


def _on_device(row: CdrRecord, devices: list[str]) -> bool:
    return row.channel_device in devices or row.dstchannel_device in devices


def _calls(
    rows: Iterable[CdrRecord], *, user: PbxUser, devices: list[str], zone: ZoneInfo
) -> list[LastCall]:
    """One row per call (linkedid, else uniqueid), newest first."""
    by_call: dict[str, list[CdrRecord]] = defaultdict(list)
    for row in rows:
        by_call[row.call_id].append(row)
    calls: list[tuple[datetime, str, LastCall]] = []
    for call_id, legs in by_call.items():
        legs.sort(key=lambda r: (r.calldate, r.pk))
        first = legs[0]
        # The rows on the user's own phone say who called whom: another leg of the call can
        # carry the user's number as src only because connected-line updates reached it (a
        # queue caller's Local;1 leg shows the agent who answered), and its billsec is the
        # caller's time in the queue too.
        on_phone = [r for r in legs if _on_device(r, devices)] or legs
        outgoing = _placed_by(on_phone[0], user, devices)
        answered = [r.billsec for r in on_phone if r.disposition == "ANSWERED"]
        calls.append(
            (
                first.calldate,
                call_id,
                {
                    "uniqueid": call_id,
                    "calldate": local_time(first.calldate, zone),
                    "duration": max(answered) if answered else 0,
                    "number": _other_number(on_phone[0], outgoing=outgoing),
                    "direction": "outgoing" if outgoing else "incoming",
                },
            )
        )
    calls.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [call for _, _, call in calls]


def last_call(*, user: PbxUser, devices: list[str] | None = None) -> LastCall | None:
    """The user's newest call as last-calls orders them: by the call's first row on the user.

    The newest row alone can belong to an older call (a caller who waited rang the user again
    on a retry), so every call with a row since the start of that row's call is a candidate.
    `devices`, when the caller knows them, spares reading the user's terminals.
    """
    devices = devices_of(user) if devices is None else devices
    legs = newest_call_rows(user, devices)
    calls = _calls(legs, user=user, devices=devices, zone=ZoneInfo(user.company.time_zone))
    return calls[0] if calls else None


def last_calls(
    *,
    client: CompanyScope,
    extension: str,
    company: str | None = None,
    hours: int = 24,
    now: datetime | None = None,
) -> list[LastCall]:
    """last-calls: the user's calls of the last `hours`, one row per call, newest first."""
    now = now or timezone.now()
    user = user_get(client=client, extension=extension, company=company)
    devices = devices_of(user)
    rows = CdrRecord.objects.filter(
        _involving(user, devices), calldate__gte=now - timedelta(hours=hours)
    )
    return _calls(rows, user=user, devices=devices, zone=ZoneInfo(user.company.time_zone))
