"""Reads for the dashboard: visible companies, BLF rows with `since`, queue groups, calls per hour."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import ExtractHour
from django.utils import timezone

from dashboard.payloads import (
    CallsHourlyPayload,
    HourCount,
    QueueMemberPayload,
    QueueUpdatePayload,
    SnapshotPayload,
    UserStatusPayload,
)
from dashboard.pbx_link import pbx_connection
from pbx.history.kept_totals import kept_entry_totals
from pbx.history.selectors import (
    ANSWERED,
    UNANSWERED,
    QueueTotals,
    alarm_breaches,
    day_bounds,
    entry_totals,
    longest_wait,
)
from pbx.live.presence import PresenceRow, presence_rows, presence_rows_of
from pbx.models import Company, PbxUser, Queue, QueueCallerState, QueueMemberState
from pbx.models.history import QueueEntry
from pbx.plain_sql import column, converted, marks, rows_where, table

TotalsOf = Callable[[Mapping[str, Queue], datetime], dict[str, QueueTotals]]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _user_payload(row: PresenceRow) -> UserStatusPayload:
    return {**row.as_user_status(), "reason": row.reason, "since": _iso(row.since)}


def _user_rows(users: QuerySet[PbxUser]) -> list[UserStatusPayload]:
    return [_user_payload(row) for row in presence_rows(users)]


def user_rows(*, company: Company) -> list[UserStatusPayload]:
    """The BLF grid: every user of the company, ordered by extension, in four queries."""
    return _user_rows(PbxUser.objects.filter(company=company))


def user_rows_for(*, user_ids: Iterable[int]) -> list[tuple[int, UserStatusPayload]]:
    """(company id, `user.status` payload) of these users, ordered by extension, in three
    queries."""
    return [(row.company_id, _user_payload(row)) for row in presence_rows_of(user_ids)]


def user_rows_of(rows: Iterable[PresenceRow]) -> list[tuple[int, UserStatusPayload]]:
    """As user_rows_for, from status rows already read (in the same order)."""
    ordered = sorted(rows, key=lambda row: (len(row.extension), row.extension, row.user_id))
    return [(row.company_id, _user_payload(row)) for row in ordered]


def _as_float(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


# What a wallboard shows of a member, read as plain values (model instances with their users
# were most of the listener's time per batch, ~100 members a queue): these fields of the
# member row, then its user's extension and name.
_MEMBER_FIELDS = (
    "queue_name",
    "interface",
    "member_name",
    "paused",
    "paused_reason",
    "in_call",
    "user",
)


def _member_rows(pbx: str, queue_names: list[str]) -> list[tuple]:
    """The members of these queues of the PBX, in one plain statement: the listener reads them
    for every queue update."""
    convert = converted(QueueMemberState, _MEMBER_FIELDS)
    own = ", ".join(f"m.{column(QueueMemberState, name)}" for name in _MEMBER_FIELDS)
    sql = (
        f"SELECT {own}, u.{column(PbxUser, 'extension')}, u.{column(PbxUser, 'name')} "
        f"FROM {table(QueueMemberState)} m LEFT JOIN {table(PbxUser)} u "
        f"ON u.{column(PbxUser, 'id')} = m.{column(QueueMemberState, 'user')} "
        f"WHERE m.{column(QueueMemberState, 'pbx')} = %s "
        f"AND m.{column(QueueMemberState, 'queue_name')} IN ({marks(queue_names)})"
    )
    width = len(_MEMBER_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pbx, *queue_names])
        return [(*convert(row[:width]), *row[width:]) for row in cursor.fetchall()]


def _member(row: tuple) -> QueueMemberPayload:
    _queue, interface, member_name, paused, paused_reason, in_call, user_id, extension, name = row
    return {
        "extension": extension if user_id is not None else None,
        "name": name if user_id is not None else (member_name or interface),
        "paused": paused,
        "paused_reason": paused_reason,
        "in_call": in_call,
    }


def _member_order(row: tuple) -> tuple:
    interface, user_id, extension = row[1], row[6], row[7]
    if user_id is None:
        return (1, 0, interface)
    return (0, len(extension), extension)


def _queue_groups(
    queues: list[Queue], company: Company, *, totals_of: TotalsOf = entry_totals
) -> list[QueueUpdatePayload]:
    """One group per queue: queues-status figures plus who is logged in and who is waiting.

    The figures are those of queues-status for a group of the one queue (`QueueTotals`), from
    the reads the wallboard shows anyway: today's entries (`totals_of`), the members and the
    callers."""
    if not queues:
        return []
    now = timezone.now()
    names = [queue.name for queue in queues]
    pbx = company.pbx_key  # another PBX's queue of the same name is another queue
    members: dict[str, list[tuple]] = defaultdict(list)
    for row in _member_rows(pbx, names):
        members[row[0]].append(row)
    callers: dict[str, list[QueueCallerState]] = defaultdict(list)
    waiting = rows_where(QueueCallerState, {"pbx": pbx}, {"queue_name": names})
    for caller in sorted(waiting, key=lambda c: (c.position, c.entered_at)):
        callers[caller.queue_name].append(caller)
    totals = totals_of({queue.name: queue for queue in queues}, now)
    groups = []
    for queue in queues:
        waiting = callers[queue.name]
        figures = totals[queue.name]
        figures.waiting = len(waiting)
        oldest = figures.oldest_wait = min((c.entered_at for c in waiting), default=None)
        status = figures.status()
        breaches = alarm_breaches(queue, status, longest_wait=longest_wait(oldest, now))
        groups.append(
            QueueUpdatePayload(
                group=queue.name,
                display_name=queue.shown_name,
                queues=[queue.name],
                **status,
                alarm=bool(breaches),  # the flag and its reasons from one rule and one read
                alarm_reasons=[breach["rule"] for breach in breaches],
                alarm_breaches=breaches,
                alarm_rules={
                    "waiting_calls": queue.alarm_waiting_calls,
                    "wait_seconds": queue.alarm_wait_seconds,
                    "service_ratio_below": _as_float(queue.alarm_service_ratio_below),
                    "abandoned_ratio_below": _as_float(queue.alarm_abandoned_ratio_below),
                },
                members=[_member(m) for m in sorted(members[queue.name], key=_member_order)],
                callers=[
                    {
                        "caller": c.caller_id_num,
                        "position": c.position,
                        "entered_at": c.entered_at.isoformat(),
                    }
                    for c in waiting
                ],
            )
        )
    return groups


def queue_groups(*, company: Company) -> list[QueueUpdatePayload]:
    """One wallboard group per queue of the company, with live and today's figures."""
    queues = list(Queue.objects.filter(company=company).order_by("name"))
    for queue in queues:
        queue.company = company  # for the day's bounds in its time zone, without a query each
    return _queue_groups(queues, company)


def queue_groups_for(*, queue_ids: Iterable[int]) -> list[tuple[int, QueueUpdatePayload]]:
    """(company id, `queue.update` payload) of the groups holding these queues.

    The listener's queue updates: today's figures are those kept since the history last changed
    (pbx/history/kept_totals.py), not read again twice a second."""
    ids = list(queue_ids)
    if not ids:  # most of the listener's batches: their queues go with the next queue update
        return []
    # Plain reads: compiling the ORM's join was a third of this function's time, and the
    # listener calls it for every PBX twice a second.
    queues = rows_where(Queue, {}, {"id": ids})
    companies = {c.pk: c for c in rows_where(Company, {}, {"id": {q.company_id for q in queues}})}
    by_company: dict[int, list[Queue]] = defaultdict(list)
    for queue in queues:
        queue.company = companies[queue.company_id]
        by_company[queue.company_id].append(queue)
    return [
        (company_id, payload)
        for company_id, queues in sorted(by_company.items())
        for payload in _queue_groups(
            sorted(queues, key=lambda q: q.name),
            companies[company_id],
            totals_of=kept_entry_totals.totals,
        )
    ]


def calls_hourly(*, company: Company) -> CallsHourlyPayload:
    """Today's queue calls of the company per local hour: answered vs abandoned."""
    zone = ZoneInfo(company.time_zone)
    start, end = day_bounds(company.time_zone, timezone.now())
    hours = [HourCount(hour=hour, answered=0, abandoned=0) for hour in range(24)]
    rows = (
        QueueEntry.objects.filter(
            pbx=company.pbx_key,  # another PBX's queue of the same name is another queue
            queue_name__in=Queue.objects.filter(company=company).values("name"),
            entered_at__gte=start,
            entered_at__lt=end,
        )
        .annotate(hour=ExtractHour("entered_at", tzinfo=zone))
        .values("hour")
        .annotate(
            answered=Count("pk", filter=Q(outcome__in=ANSWERED)),
            abandoned=Count("pk", filter=Q(outcome__in=UNANSWERED)),
        )
        .order_by()
    )
    for row in rows:
        # The hour repeated when clocks go back adds up in one bar.
        hours[row["hour"]]["answered"] += row["answered"]
        hours[row["hour"]]["abandoned"] += row["abandoned"]
    return {"date": start.date().isoformat(), "hours": hours}


def snapshot_payload(*, company: Company) -> SnapshotPayload:
    """Everything the company's dashboard shows."""
    pbx = pbx_connection(company.pbx_key)
    return {
        "company": {"slug": company.slug, "name": company.name, "time_zone": company.time_zone},
        "users": user_rows(company=company),
        "queues": queue_groups(company=company),
        "hourly": calls_hourly(company=company),
        "pbx": pbx,
        "stale": pbx["connected"] is not True,
        "generated_at": timezone.now().isoformat(),
    }
