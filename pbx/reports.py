"""Historical reports over a date range: per queue and per agent, from the derived history tables.

Every figure is an indexed aggregate of `QueueEntry` (one row per caller's stay in a queue),
`AgentEvent` (ring-no-answer lines) or the login and pause spans (`AgentSession`, `AgentPause`)
that ingest derives; nothing replays a log when a report is asked for. Days are local to the
company: a range runs from local midnight of its first day to local midnight after its last.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypedDict
from zoneinfo import ZoneInfo

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum, Value
from django.db.models.functions import Coalesce, ExtractHour, Greatest, Least, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.history import ANSWERED
from pbx.models import Company, PbxUser, Queue, QueueMember
from pbx.models.agents import (
    PAUSE_EVENTS,
    RING_NO_ANSWER,
    SESSION_EVENTS,
    AgentEvent,
    AgentPause,
    AgentSession,
)
from pbx.models.history import QueueEntry
from pbx.params import ParameterError
from swanproject.envelope import NotFound

Outcome = QueueEntry.Outcome
MAX_DAYS = 366
BUCKET_SECONDS = 15
BUCKETS = 20  # [0, 15) … [285, 300) seconds, then one open bucket from 300 s on
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class HourRow(TypedDict):
    hour: int
    answered: int
    abandoned: int
    unanswered: int


class DayRow(TypedDict):
    date: str
    answered: int
    abandoned: int
    unanswered: int


class BucketRow(TypedDict):
    from_seconds: int
    to_seconds: int | None
    abandoned: int


class QueueReport(TypedDict):
    queue: str
    display_name: str
    offered: int
    answered: int
    unanswered: int
    abandoned: int
    timeouts: int
    exited_with_key: int
    exited_empty: int
    short_abandons: int
    service_level: float
    avg_wait: float
    max_wait: int
    avg_talk: float
    by_hour: list[HourRow]
    by_day: list[DayRow]
    abandon_wait_buckets: list[BucketRow]


class AgentReport(TypedDict):
    extension: str
    name: str
    answered: int
    talk_seconds: int
    avg_talk: float
    ring_no_answer: int
    login_seconds: int
    pause_seconds: dict[str, int]


@dataclass(frozen=True)
class Period:
    """Whole local days of a company, from `first` to `last` included."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, self.zone)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def _date(value: str | None, name: str) -> date:
    if not value:
        raise ParameterError(_("The parameter '%(name)s' is required.") % {"name": name})
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ParameterError(
            _("The parameter '%(name)s' must be a date written YYYY-MM-DD.") % {"name": name}
        ) from None


def dates_get(*, first: str | None, last: str | None) -> tuple[date, date]:
    """`from` and `to` (YYYY-MM-DD), checked: a 400 naming the bad one."""
    start, end = _date(first, "from"), _date(last, "to")
    if end < start:
        raise ParameterError(_("The parameter 'to' must not be before 'from'."))
    if (end - start).days + 1 > MAX_DAYS:
        raise ParameterError(
            _("The parameter 'to' must be at most %(days)s days after 'from'.") % {"days": MAX_DAYS}
        )
    return start, end


def period_of(company: Company, dates: tuple[date, date]) -> Period:
    """Those days, local to the company."""
    return Period(dates[0], dates[1], ZoneInfo(company.time_zone))


def report_queues(*, company: Company, names: Sequence[str] | None) -> list[Queue]:
    """The company's queues named (all without names), by name; an unknown one is a 404."""
    queues = Queue.objects.filter(company=company)
    if not names:
        return list(queues.order_by("name"))
    found = {q.name: q for q in queues.filter(name__in=set(names))}
    for name in names:
        if name not in found:
            raise NotFound(
                _("Queue '%(queue)s' not found in company '%(company)s'.")
                % {"queue": name, "company": company.slug}
            )
    return sorted(found.values(), key=lambda q: q.name)


def _below(queues: Iterable[Queue], threshold: str) -> Q:
    """Entries waiting less than their queue's `threshold` field (thresholds differ by queue)."""
    by_level: dict[int, list[str]] = defaultdict(list)
    for queue in queues:
        by_level[getattr(queue, threshold)].append(queue.name)
    condition = Q(pk__in=[])
    for level, names in by_level.items():
        condition |= Q(queue_name__in=names, wait_seconds__lt=level)
    return condition


def _ratio(numerator: int, divisor: int) -> float:
    return 100.0 if not divisor else round(numerator * 100 / divisor, 2)


def _mean(total: int, count: int) -> float:
    return round(total / count, 2) if count else 0.0


@dataclass
class _Sums:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    timeouts: int = 0
    key: int = 0
    empty: int = 0
    short: int = 0
    in_level: int = 0
    wait: int = 0
    wait_max: int = 0
    talk: int = 0

    def add(self, row: dict) -> None:
        for name in ("offered", "answered", "abandoned", "timeouts", "key", "empty", "short"):
            setattr(self, name, getattr(self, name) + row[name])
        self.in_level += row["in_level"]
        self.wait += row["wait"] or 0
        self.talk += row["talk"] or 0
        self.wait_max = max(self.wait_max, row["wait_max"] or 0)

    @property
    def unanswered(self) -> int:
        return self.abandoned + self.timeouts + self.key + self.empty


def queue_report(
    *, queues: Sequence[Queue], period: Period, now: datetime | None = None
) -> list[QueueReport]:
    """Per queue: the figures of docs/reports.md over the period; two grouped aggregates."""
    if not queues:
        return []
    names = [q.name for q in queues]
    in_period = Q(queue_name__in=names, entered_at__gte=period.start, entered_at__lt=period.end)
    answered = Q(outcome__in=ANSWERED)
    abandoned = Q(outcome=Outcome.ABANDONED)
    # Count a column of the covering index, not the key: an index-only scan on PostgreSQL.
    rows = (
        QueueEntry.objects.filter(in_period)
        .annotate(
            day=TruncDate("entered_at", tzinfo=period.zone),
            hour=ExtractHour("entered_at", tzinfo=period.zone),
        )
        .values("queue_name", "day", "hour")
        .annotate(
            offered=Count("outcome"),
            answered=Count("outcome", filter=answered),
            abandoned=Count("outcome", filter=abandoned),
            timeouts=Count("outcome", filter=Q(outcome=Outcome.TIMEOUT)),
            key=Count("outcome", filter=Q(outcome=Outcome.KEY_PRESS)),
            empty=Count("outcome", filter=Q(outcome=Outcome.EMPTY)),
            short=Count("outcome", filter=abandoned & _below(queues, "short_abandon_seconds")),
            in_level=Count("outcome", filter=answered & _below(queues, "service_level_seconds")),
            wait=Sum("wait_seconds", filter=answered),
            wait_max=Max("wait_seconds", filter=answered),
            talk=Sum("talk_seconds", filter=answered),
        )
        .order_by()
    )
    totals = {name: _Sums() for name in names}
    hours = {name: defaultdict(_Sums) for name in names}
    days = {name: defaultdict(_Sums) for name in names}
    for row in rows:
        name = row["queue_name"]
        totals[name].add(row)
        hours[name][row["hour"]].add(row)
        days[name][row["day"]].add(row)
    buckets = _abandon_buckets(in_period)
    result = []
    for queue in queues:
        t = totals[queue.name]
        result.append(
            {
                "queue": queue.name,
                "display_name": queue.label,
                "offered": t.offered,
                "answered": t.answered,
                "unanswered": t.unanswered,
                "abandoned": t.abandoned,
                "timeouts": t.timeouts,
                "exited_with_key": t.key,
                "exited_empty": t.empty,
                "short_abandons": t.short,
                "service_level": _ratio(t.in_level, t.answered + t.unanswered - t.short),
                "avg_wait": _mean(t.wait, t.answered),
                "max_wait": t.wait_max,
                "avg_talk": _mean(t.talk, t.answered),
                "by_hour": [
                    _counts({"hour": hour}, hours[queue.name].get(hour)) for hour in range(24)
                ],
                "by_day": [
                    _counts({"date": day.isoformat()}, days[queue.name].get(day))
                    for day in period.days()
                ],
                "abandon_wait_buckets": [
                    {
                        "from_seconds": n * BUCKET_SECONDS,
                        "to_seconds": (n + 1) * BUCKET_SECONDS if n < BUCKETS else None,
                        "abandoned": buckets.get((queue.name, n), 0),
                    }
                    for n in range(BUCKETS + 1)
                ],
            }
        )
    return result


def _counts(row: dict, sums: _Sums | None) -> dict:
    sums = sums or _Sums()
    return {
        **row,
        "answered": sums.answered,
        "abandoned": sums.abandoned,
        "unanswered": sums.unanswered,
    }


def _abandon_buckets(in_period: Q) -> dict[tuple[str, int], int]:
    """Callers who hung up, by queue and 15-second step of their wait (the last step open)."""
    rows = (
        QueueEntry.objects.filter(in_period, outcome=Outcome.ABANDONED)
        .annotate(bucket=Least(F("wait_seconds") / BUCKET_SECONDS, Value(BUCKETS)))
        .values("queue_name", "bucket")
        .annotate(n=Count("outcome"))
        .order_by()
    )
    return {(row["queue_name"], int(row["bucket"])): row["n"] for row in rows}


# ------------------------------------------------------------------------------------------------
# Agents


def _extension_order(user: PbxUser) -> tuple[int, str]:
    return (len(user.extension), user.extension)


def _overlap(model, *, company: Company, period: Period, now: datetime):
    """Seconds of each span inside the period (an open span runs until now)."""
    end = min(period.end, max(now, period.start))
    ends = Least(Coalesce("ended_at", Value(end)), Value(end))
    return (
        model.objects.filter(company=company, started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=period.start))
        .annotate(
            inside=ExpressionWrapper(
                ends - Greatest("started_at", Value(period.start)), output_field=DurationField()
            )
        )
    )


def agent_report(
    *,
    company: Company,
    queues: Sequence[Queue],
    period: Period,
    chosen: bool = False,
    now: datetime | None = None,
) -> list[AgentReport]:
    """Per agent of the company: calls answered, talk, rings not answered, login and pauses.

    Calls and rings count in `queues`; login and pause time are the agent's, whatever queue.
    Listed: the configured members of the queues and anyone with a figure in the period; when
    the queues were `chosen` (not all the company's), only those who answered, were rung or
    logged in to them. Six queries (seven when chosen): four grouped aggregates, the members
    and the users.
    """
    now = now or timezone.now()
    names = [q.name for q in queues]
    # By queue name, the key of the covering index, even for all the company's queues.
    entries = QueueEntry.objects.filter(
        queue_name__in=names,
        entered_at__gte=period.start,
        entered_at__lt=period.end,
        outcome__in=ANSWERED,
        agent_user__isnull=False,
    )
    rings = AgentEvent.objects.filter(
        event=RING_NO_ANSWER,
        company=company,
        time__gte=period.start,
        time__lt=period.end,
        agent_user__isnull=False,
    )
    if chosen:
        rings = rings.filter(queue_name__in=names)
    calls = {
        row["agent_user"]: row
        for row in entries.values("agent_user")
        .annotate(answered=Count("outcome"), talk=Sum("talk_seconds"))
        .order_by()
    }
    ring_counts = dict(
        rings.values("agent_user")
        .annotate(n=Count("event"))
        .order_by()
        .values_list("agent_user", "n")
    )
    login = {
        row["agent_user"]: row["inside"]
        for row in _overlap(AgentSession, company=company, period=period, now=now)
        .values("agent_user")
        .annotate(inside=Sum("inside"))
        .order_by()
    }
    pauses: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        _overlap(AgentPause, company=company, period=period, now=now)
        .values("agent_user", "reason")
        .annotate(inside=Sum("inside"))
        .order_by()
    ):
        seconds = _seconds(row["inside"])
        if seconds > 0:
            pauses[row["agent_user"]][row["reason"]] = seconds
    listed = set(calls) | set(ring_counts) | set(pauses)
    listed |= {user_id for user_id, inside in login.items() if _seconds(inside) > 0}
    members = QueueMember.objects.filter(queue__company=company)
    if chosen:
        members = members.filter(queue__name__in=names)
        # Agents who logged in to those queues, though not configured in them.
        listed &= set(calls) | set(ring_counts) | _logged_in_to(company, names, period)
    listed |= set(members.values_list("user_id", flat=True))
    users = sorted(PbxUser.objects.filter(company=company, pk__in=listed), key=_extension_order)
    result = []
    for user in users:
        row = calls.get(user.pk, {"answered": 0, "talk": 0})
        result.append(
            {
                "extension": user.extension,
                "name": user.name,
                "answered": row["answered"],
                "talk_seconds": row["talk"] or 0,
                "avg_talk": _mean(row["talk"] or 0, row["answered"]),
                "ring_no_answer": ring_counts.get(user.pk, 0),
                "login_seconds": max(0, _seconds(login.get(user.pk))),
                "pause_seconds": dict(sorted(pauses.get(user.pk, {}).items())),
            }
        )
    return result


def _logged_in_to(company: Company, names: Sequence[str], period: Period) -> set[int]:
    """Agents with login or pause lines in these queues during the period."""
    return set(
        AgentEvent.objects.filter(
            event__in=(*SESSION_EVENTS, *PAUSE_EVENTS),
            company=company,
            time__gte=period.start,
            time__lt=period.end,
            queue_name__in=names,
            agent_user__isnull=False,
        )
        .values_list("agent_user", flat=True)
        .distinct()
    )


def _seconds(value: timedelta | None) -> int:
    return round(value.total_seconds()) if value else 0


# ------------------------------------------------------------------------------------------------
# Calls

CALL_OUTCOMES = {
    "answered": ANSWERED,
    "unanswered": (Outcome.ABANDONED, Outcome.TIMEOUT, Outcome.EMPTY, Outcome.KEY_PRESS),
    "abandoned": (Outcome.ABANDONED,),
}


def report_agent(*, company: Company, extension: str | None) -> PbxUser | None:
    """The company's user with this extension (None without one); unknown: a 404."""
    if not extension:
        return None
    user = PbxUser.objects.filter(company=company, extension=extension).first()
    if user is None:
        raise NotFound(
            _("Extension %(extension)s not found in company '%(company)s'.")
            % {"extension": extension, "company": company.slug}
        )
    return user


def call_rows(
    *,
    queues: Sequence[Queue],
    period: Period,
    agent: PbxUser | None = None,
    outcome: str | None = None,
):
    """The queue calls of the period, newest first, with the agent who answered (one query)."""
    rows = QueueEntry.objects.filter(
        queue_name__in=[q.name for q in queues],
        entered_at__gte=period.start,
        entered_at__lt=period.end,
    )
    if agent is not None:
        rows = rows.filter(agent_user=agent)
    if outcome:
        rows = rows.filter(outcome__in=CALL_OUTCOMES[outcome])
    return rows.select_related("agent_user").order_by("-entered_at", "-pk")
