"""Historical reports over a date range: per queue and per agent, from the derived history tables.

Every figure is an indexed aggregate of `QueueEntry` (one row per caller's stay in a queue),
`AgentEvent` (ring-no-answer lines) or the login and pause spans (`AgentSession`, `AgentPause`)
that ingest derives; nothing replays a log when a report is asked for. Days are local to the
company: a range runs from local midnight of its first day to local midnight after its last.
Entries are read by queue name on the queue's own PBX (`on_queues`): another PBX's queue of the
same name is another company's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Func,
    Max,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, ExtractHour, Greatest, Least, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.errors import InvalidValue, NotFound
from pbx.history.selectors import ANSWERED, on_queues
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

Outcome = QueueEntry.Outcome
MAX_DAYS = 366
REPORT_WORK_MEM = "64MB"
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


# Days whose local midnights, and the next day's, are datetimes in any time zone (9999-12-31
# has no next day): queue_log and CDR times start in 1970.
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def _date(value: str | None, name: str) -> date:
    if not value:
        raise InvalidValue(_("The parameter '%(name)s' is required.") % {"name": name})
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidValue(
            _("The parameter '%(name)s' must be a date written YYYY-MM-DD.") % {"name": name}
        ) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidValue(
            _("The parameter '%(name)s' must be a day from %(earliest)s to %(latest)s.")
            % {"name": name, "earliest": EARLIEST_DAY, "latest": LATEST_DAY}
        )
    return day


def dates_get(*, first: str | None, last: str | None) -> tuple[date, date]:
    """`from` and `to` (YYYY-MM-DD), checked: a 400 naming the bad one."""
    start, end = _date(first, "from"), _date(last, "to")
    if end < start:
        raise InvalidValue(_("The parameter 'to' must not be before 'from'."))
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidValue(
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
    """Entries waiting less than their queue's `threshold` field (thresholds differ by queue).

    One threshold for every queue asked about is a plain comparison: naming the queues again
    would test each row against the whole list.
    """
    by_level: dict[int, list[str]] = defaultdict(list)
    for queue in queues:
        by_level[getattr(queue, threshold)].append(queue.name)
    if len(by_level) == 1:
        return Q(wait_seconds__lt=next(iter(by_level)))
    condition = Q(pk__in=[])
    for level, names in by_level.items():
        condition |= Q(queue_name__in=names, wait_seconds__lt=level)
    return condition


def _ratio(numerator: int, divisor: int) -> float:
    return 100.0 if not divisor else round(numerator * 100 / divisor, 2)


def _mean(total: int, count: int) -> float:
    return round(total / count, 2) if count else 0.0


def queue_report(
    *, queues: Sequence[Queue], period: Period, now: datetime | None = None
) -> list[QueueReport]:
    """Per queue: the figures of docs/reports.md over the period; two grouped aggregates."""
    if not queues:
        return []
    names = [q.name for q in queues]
    in_period = on_queues(queues, entered_at__gte=period.start, entered_at__lt=period.end)
    answered = Q(outcome__in=ANSWERED)
    abandoned = Q(outcome=Outcome.ABANDONED)
    bins, place = _time_bins(period)
    # Count a column of the covering index, not the key: an index-only scan on PostgreSQL.
    grouped = (
        QueueEntry.objects.filter(in_period)
        .annotate(**bins)
        .values("queue_name", *bins)
        .annotate(
            offered=Count("outcome"),
            answered=Count("outcome", filter=answered),
            abandoned=Count("outcome", filter=abandoned),
            timeouts=Count("outcome", filter=Q(outcome=Outcome.TIMEOUT)),
            key=Count("outcome", filter=Q(outcome=Outcome.KEY_PRESS)),
            empty=Count("outcome", filter=Q(outcome=Outcome.EMPTY)),
            short=Count("outcome", filter=abandoned & _below(queues, "short_abandon_seconds")),
            in_level=Count("outcome", filter=answered & _below(queues, "service_level_seconds")),
            wait=Sum("wait_seconds", filter=answered, default=0),
            wait_max=Max("wait_seconds", filter=answered, default=0),
            talk=Sum("talk_seconds", filter=answered, default=0),
        )
        .order_by()
    )
    # [offered, answered, abandoned, timeouts, key, empty, short, in level, wait, max, talk]
    totals = {name: [0] * 11 for name in names}
    # [answered, abandoned, unanswered] by local hour and by local day
    hours = {name: [[0, 0, 0] for _ in range(24)] for name in names}
    days: dict[str, dict[date, list[int]]] = {name: {} for name in names}
    for kind, name, hour, day, *figures in _folded(grouped, place):
        figures = [int(value or 0) for value in figures]
        if kind == 0:
            totals[name] = figures
            continue
        unanswered = figures[2] + figures[3] + figures[4] + figures[5]
        counts = [figures[1], figures[2], unanswered]
        if kind == 1:
            hours[name][int(hour)] = counts
        else:
            day = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
            days[name][day] = counts
    buckets = _abandon_buckets(in_period)
    return [
        _queue_row(queue, totals[queue.name], hours[queue.name], days[queue.name], buckets, period)
        for queue in queues
    ]


def _queue_row(queue, total, hours, days, buckets, period: Period) -> QueueReport:
    offered, answered, abandoned, timeouts, key, empty, short, in_level, wait, longest, talk = total
    unanswered = abandoned + timeouts + key + empty
    return {
        "queue": queue.name,
        "display_name": queue.shown_name,
        "offered": offered,
        "answered": answered,
        "unanswered": unanswered,
        "abandoned": abandoned,
        "timeouts": timeouts,
        "exited_with_key": key,
        "exited_empty": empty,
        "short_abandons": short,
        "service_level": _ratio(in_level, answered + unanswered - short),
        "avg_wait": _mean(wait, answered),
        "max_wait": longest,
        "avg_talk": _mean(talk, answered),
        "by_hour": [_counts({"hour": hour}, hours[hour]) for hour in range(24)],
        "by_day": [
            _counts({"date": day.isoformat()}, days.get(day, (0, 0, 0))) for day in period.days()
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


_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
_FIGURES = (
    "offered",
    "answered",
    "abandoned",
    "timeouts",
    "key",
    "empty",
    "short",
    "in_level",
    "wait",
    "wait_max",
    "talk",
)


@dataclass(frozen=True)
class _Place:
    """SQL of a group's local hour and local day, over the grouped rows `g`, and its params."""

    hour: str
    day: str
    params: tuple = ()


def _time_bins(period: Period) -> tuple[dict[str, Any], _Place]:
    """What to group entries by, and how the grouped rows give their local hour and day.

    PostgreSQL: UTC bins of an hour (or 15 minutes, where the zone's offset is not whole
    hours), put in local time afterwards, per bin: date_bin is far cheaper than converting
    each entry to the zone. Elsewhere: the local date and hour, as Django computes them.
    """
    if connection.vendor != "postgresql":
        bins = {
            "day": TruncDate("entered_at", tzinfo=period.zone),
            "hour": ExtractHour("entered_at", tzinfo=period.zone),
        }
        return bins, _Place("g.hour", "g.day")
    offsets = {
        datetime.combine(day, time(12), period.zone).utcoffset() for day in period.days()
    } | {period.start.utcoffset(), period.end.utcoffset()}
    step = 3600 if all(o.total_seconds() % 3600 == 0 for o in offsets if o is not None) else 900
    bin_expression = Func(
        Value(timedelta(seconds=step), output_field=DurationField()),
        F("entered_at"),
        Value(_ORIGIN, output_field=DateTimeField()),
        function="date_bin",
        output_field=DateTimeField(),
    )
    zone = str(period.zone)
    return {"bin": bin_expression}, _Place(
        "EXTRACT(HOUR FROM g.bin AT TIME ZONE %s)",
        "CAST(CAST(g.bin AT TIME ZONE %s AS date) AS text)",  # NULL, NULL above: text
        (zone, zone),
    )


def _folded(grouped, place: _Place) -> list[tuple]:
    """The grouped figures added up per queue (kind 0), per local hour (1) and per local day (2).

    The groups (a queue's hours of the period, tens of thousands) are added up in the database:
    only a few thousand rows come back.
    """
    inner, params = grouped.query.sql_with_params()
    figures = ", ".join(
        f"MAX(g.{name})" if name == "wait_max" else f"SUM(g.{name})" for name in _FIGURES
    )
    sql = (
        f"WITH g AS ({inner}) "
        f"SELECT 0, g.queue_name, NULL, NULL, {figures} FROM g GROUP BY g.queue_name "
        f"UNION ALL SELECT 1, g.queue_name, {place.hour}, NULL, {figures} FROM g GROUP BY 2, 3 "
        f"UNION ALL SELECT 2, g.queue_name, NULL, {place.day}, {figures} FROM g GROUP BY 2, 4"
    )
    with _roomy_aggregates(), connection.cursor() as cursor:
        cursor.execute(sql, [*params, *place.params])
        return cursor.fetchall()


@contextmanager
def _roomy_aggregates() -> Iterator[None]:
    """PostgreSQL plans the grouped figures for far more groups than a period has, and with the
    default work_mem spills them to disk: a transaction-local allowance keeps them in memory."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        yield


def _counts(row: dict, counts: Sequence[int]) -> Any:
    return {**row, "answered": counts[0], "abandoned": counts[1], "unanswered": counts[2]}


def _abandon_buckets(in_period: Q) -> dict[tuple[str, int], int]:
    """Callers who hung up, by queue and 15-second step of their wait (the last step open)."""
    rows = (
        QueueEntry.objects.filter(in_period, outcome=Outcome.ABANDONED)
        .annotate(bucket=Least(F("wait_seconds") / BUCKET_SECONDS, Value(BUCKETS)))
        .values("queue_name", "bucket")
        .annotate(n=Count("wait_seconds"))  # in the partial index of abandoned entries
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
    # By PBX and queue name, the key of the covering index, even for all the company's queues.
    entries = QueueEntry.objects.filter(
        on_queues(queues, entered_at__gte=period.start, entered_at__lt=period.end),
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
    result: list[AgentReport] = []
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
        on_queues(queues, entered_at__gte=period.start, entered_at__lt=period.end)
    )
    if agent is not None:
        rows = rows.filter(agent_user=agent)
    if outcome:
        rows = rows.filter(outcome__in=CALL_OUTCOMES[outcome])
    return rows.select_related("agent_user").order_by("-entered_at", "-pk")
