"""Agent activity from the stored queue_log lines: agent lines kept, login and pause spans derived.

The lines about agents (ADDMEMBER/REMOVEMEMBER, PAUSE/UNPAUSE and their ALL forms, the chan_agent
logins, RINGNOANSWER) and restarts (QUEUESTART) of every stretch of stored lines are kept as
`AgentEvent` rows, in derive.derive_pending's transaction: each stored line is derived once (the
file's `derived_lines` moves with the rows), so reading a file again adds nothing. For every
agent whose lines are new, its spans are derived again from the last moment it was surely logged
out and not paused: the start of the earliest span that reaches the new line, or the line itself.
So lines that arrive late or out of order give the spans a sorted file would, and a span still
open at the end of a stretch is closed by a later one. A file is one PBX's: its lines name that
PBX's agents (its directory), and its restarts end the spans of that PBX's agents only.

Rules (docs/reports.md):
- An agent is logged in while it is a member of at least one queue: ADDMEMBER opens a queue,
  REMOVEMEMBER closes it (AGENTLOGIN/AGENTCALLBACKLOGIN and their LOGOFF likewise). A second
  ADDMEMBER of an open queue, or a REMOVEMEMBER of a closed one, changes nothing.
- It is paused while paused in at least one queue (PAUSE/UNPAUSE name the queue) or in all of
  them (PAUSEALL; UNPAUSEALL ends every pause). The reason is the one the pause gave; a later
  pause with another non-empty reason starts a new span with it. Leaving a queue ends its pause.
- QUEUESTART (Asterisk started) ends every open span at the last line the PBX wrote before it:
  nothing says when it went down, and downtime is not login time.
- Lines of one second are taken in the order that makes sense of them: restarts first, then
  logins to closed queues, pauses (an UNPAUSE first where the queue was paused), logouts, and
  logins to queues that were open (a REMOVEMEMBER and ADDMEMBER in the same second).
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from operator import attrgetter
from typing import NamedTuple

import psycopg
from django.db import connection, models
from django.db.models import Q

from pbx.directory.agent_matching import AgentDirectory
from pbx.history.ingest.lines import last_lines_before
from pbx.models.agents import (
    AGENT_EVENTS,
    PAUSE_EVENTS,
    RESTART_EVENT,
    SESSION_EVENTS,
    AgentEvent,
    AgentPause,
    AgentSession,
    AgentSpansPending,
)
from pbx.models.directory import PbxUser, on_pbx
from pbx.models.history import QueueLogLine

logger = logging.getLogger("swan.ingest")
_SPAN_EVENTS = frozenset((*SESSION_EVENTS, *PAUSE_EVENTS))
_LOGINS = {"ADDMEMBER": "member", "AGENTLOGIN": "agent", "AGENTCALLBACKLOGIN": "agent"}
_LOGOFFS = {"REMOVEMEMBER": "member", "AGENTLOGOFF": "agent", "AGENTCALLBACKLOGOFF": "agent"}
_LINES = QueueLogLine._meta.db_table
_EVENTS = AgentEvent._meta.db_table


def derive_agent_activity(
    file_id: int, first: int, last: int, *, directory: AgentDirectory, pbx: str, spans: bool = True
) -> None:
    """Keeps the agent lines of lines `first`..`last` of a file of the PBX and derives again the
    spans they change: now, with the spans left pending before; or, with `spans=False`, at the
    next `derive_pending_spans` (AgentSpansPending). `directory` is the PBX's. Call inside
    derive.derive_pending's transaction, once per stretch of lines."""
    since, restarts = _store_events(file_id, first, last, directory, pbx)
    # A restart ends the spans that cross it: those derived so far, and the pending agents'
    # (their spans are derived from before their first new line, so through every restart).
    for user_id, restart in _users_spanning(restarts, pbx).items():
        _earliest(since, user_id, restart)
    if spans:
        derive_pending_spans(pbx, since)
    elif since:
        _leave_pending(since, pbx)


def derive_pending_spans(pbx: str, since: dict[int, datetime] | None = None) -> None:
    """Derives again the spans of the PBX's pending agents, and of `since`'s, each from the
    earliest moment asked. Call inside a derivation's transaction (derive.py)."""
    since = dict(since or {})
    pending = AgentSpansPending.objects.filter(pbx=pbx)
    rows = list(pending.values_list("agent_user_id", "since"))
    for user_id, moment in rows:
        _earliest(since, user_id, moment)
    if since:
        derive_spans(since, pbx=pbx)
    if rows:  # derivations of a PBX take turns (derive.py): no row was added meanwhile
        pending.delete()


def _leave_pending(since: dict[int, datetime], pbx: str) -> None:
    # The directory was loaded when the read began: a user deleted since is no one's to derive.
    users = set(PbxUser.objects.filter(pk__in=list(since)).values_list("pk", flat=True))
    since = {user_id: moment for user_id, moment in since.items() if user_id in users}
    known = dict(AgentSpansPending.objects.filter(pbx=pbx).values_list("agent_user_id", "since"))
    AgentSpansPending.objects.bulk_create(
        [
            AgentSpansPending(
                pbx=pbx, agent_user_id=user_id, since=min(moment, known.get(user_id, moment))
            )
            for user_id, moment in since.items()
        ],
        update_conflicts=True,
        unique_fields=["pbx", "agent_user"],
        update_fields=["since"],
        batch_size=500,
    )


def _earliest(since: dict[int, datetime], user_id: int, moment: datetime) -> None:
    if user_id not in since or moment < since[user_id]:
        since[user_id] = moment


def _matcher(directory: AgentDirectory) -> Callable[[str, str, bool], tuple]:
    """(queue_name, agent, is_restart) → (user id, company id) of an agent line."""
    companies = _user_companies(directory)

    def match(queue_name: str, agent: str, restart: bool) -> tuple[int | None, int | None]:
        _queue_id, company_id = directory.queue(queue_name)
        user_id = None if restart else directory.agent_user(agent, company_id)
        return user_id, company_id if company_id is not None else companies.get(user_id)

    return match


def _store_events(
    file_id: int, first: int, last: int, directory: AgentDirectory, pbx: str
) -> tuple[dict[int, datetime], list[datetime]]:
    """Stores the stretch's agent lines as AgentEvent rows, in file order; returns each named
    user's earliest span line, and the restarts' times (sorted)."""
    match = _matcher(directory)
    stretch = {"file": file_id, "first": first, "last": last, "events": list(AGENT_EVENTS)}
    if connection.vendor != "postgresql":
        rows = (
            QueueLogLine.objects.filter(
                file_id=file_id, number__gte=first, number__lte=last, event__in=AGENT_EVENTS
            )
            .order_by("number")
            .values_list("time", "event", "queue_name", "agent", "data")
        )
        events = []
        for moment, event, queue_name, agent, data in rows:
            user_id, company_id = match(queue_name, agent, event == RESTART_EVENT)
            events.append(
                AgentEvent(
                    pbx=pbx,
                    time=moment,
                    event=event,
                    queue_name=queue_name,
                    agent=agent,
                    agent_user_id=user_id,
                    company_id=company_id,
                    data=data,
                )
            )
        AgentEvent.objects.bulk_create(events, batch_size=500)
        since: dict[int, datetime] = {}
        for row in events:
            if row.agent_user_id is not None and row.event in _SPAN_EVENTS:
                _earliest(since, row.agent_user_id, row.time)
        return since, sorted({row.time for row in events if row.event == RESTART_EVENT})
    # PostgreSQL: the lines never come to Python, only who they name (a few distinct texts).
    with connection.connection.cursor() as cursor:
        cursor.execute(_NAMED, stretch)
        named = [(q, a, r, *match(q, a, r)) for q, a, r in cursor.fetchall()]
        # A stretch's lines joined to who they name: a hash join. Without statistics (a table
        # just filled) the planner expects one line and compares every line with every name.
        cursor.execute(
            "SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true)"
        )
        nestloop = cursor.fetchone()[0]
        cursor.execute(
            _INSERT_EVENTS,
            {
                **stretch,
                "pbx": pbx,
                "spans": list(_SPAN_EVENTS),
                "restart": RESTART_EVENT,
                "queues": [row[0] for row in named],
                "agents": [row[1] for row in named],
                "restarts": [row[2] for row in named],
                "users": [row[3] for row in named],
                "companies": [row[4] for row in named],
            },
        )
        since, restarts = {}, []
        for user_id, moment in cursor.fetchall():
            if user_id is None:
                restarts.append(moment)
            else:
                since[user_id] = moment
        cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [nestloop])
    return since, sorted(restarts)


_STRETCH = (
    "l.file_id = %(file)s AND l.number BETWEEN %(first)s AND %(last)s AND l.event = ANY(%(events)s)"
)
_NAMED = (
    f"SELECT DISTINCT queue_name, agent, event = '{RESTART_EVENT}' FROM {_LINES} l WHERE {_STRETCH}"
)
# ORDER BY: ids in file order, as the lines were read (derive_spans orders a second's lines by id).
_INSERT_EVENTS = f"""
WITH added AS (
    INSERT INTO {_EVENTS} (pbx, time, event, queue_name, agent, agent_user_id, company_id, data)
    SELECT %(pbx)s, l.time, l.event, l.queue_name, l.agent, m.user_id, m.company_id, l.data
    FROM {_LINES} l
    JOIN unnest(%(queues)s::text[], %(agents)s::text[], %(restarts)s::boolean[],
                %(users)s::bigint[], %(companies)s::bigint[])
        AS m(queue_name, agent, restart, user_id, company_id)
        ON m.queue_name = l.queue_name AND m.agent = l.agent
           AND m.restart = (l.event = %(restart)s)
    WHERE {_STRETCH}
    ORDER BY l.number
    RETURNING time, event, agent_user_id
)
SELECT agent_user_id, min(time) FROM added
WHERE agent_user_id IS NOT NULL AND event = ANY(%(spans)s) GROUP BY agent_user_id
UNION ALL
SELECT DISTINCT NULL::bigint, time FROM added WHERE event = %(restart)s"""


def _user_companies(directory: AgentDirectory) -> dict[int | None, int]:
    return {
        user_id: company_id
        for candidates in directory.extensions.values()
        for user_id, company_id in candidates
    }


def _users_spanning(restarts: list[datetime], pbx: str) -> dict[int, datetime]:
    """The PBX's agents logged in or paused across one of its restarts, as derived so far, and
    the first such restart.

    One query per span table: the spans that reach from before the first restart to after the
    last, then which restart each one spans.
    """
    if not restarts:
        return {}
    reaching = (
        Q(started_at__lte=restarts[-1])
        & (Q(ended_at__isnull=True) | Q(ended_at__gte=restarts[0]))
        & on_pbx(pbx, "company")
    )
    found: dict[int, datetime] = {}
    for model in (AgentSession, AgentPause):
        for user_id, start, end in model.objects.filter(reaching).values_list(
            "agent_user_id", "started_at", "ended_at"
        ):
            index = bisect_left(restarts, start)
            if index < len(restarts) and (end is None or end >= restarts[index]):
                _earliest(found, user_id, restarts[index])
    return found


# ------------------------------------------------------------------------------------------------
# Spans


def derive_spans(since: dict[int, datetime], *, pbx: str) -> None:
    """Derives again the spans of these agents of the PBX from their lines, from `since` (or
    earlier)."""
    anchors, stale = _anchors(since)
    for model, pks in stale.items():
        model._default_manager.filter(pk__in=pks).delete()
    earliest = min(anchors.values())
    events: dict[int, list] = defaultdict(list)
    for event in _span_lines(list(anchors), earliest):
        if event.time >= anchors[event.agent_user_id]:
            events[event.agent_user_id].append(event)
    restarts = _restarts_since(earliest, pbx)
    companies = dict(PbxUser.objects.filter(pk__in=list(anchors)).values_list("pk", "company_id"))
    timelines: dict[int, Timeline] = {}
    for user_id, anchor in anchors.items():
        if user_id not in companies:
            continue  # the user was deleted meanwhile
        timeline = timelines[user_id] = Timeline()
        timeline.replay(events.get(user_id, []), restarts[bisect_left(restarts, anchor) :])
    # The last line before each restart that ended an open span: read together, only those.
    ending = sorted({restart for timeline in timelines.values() for restart in timeline.ending})
    last_lines = last_lines_before(ending, pbx=pbx)
    sessions: list[tuple] = []
    pauses: list[tuple] = []
    for user_id, timeline in timelines.items():
        timeline.finish(last_lines)
        company_id = companies[user_id]
        sessions.extend((user_id, company_id, s.start, s.end) for s in timeline.logins)
        pauses.extend(
            (user_id, company_id, s.reason[:255], s.start, s.end) for s in timeline.pauses
        )
    _insert(AgentSession, ["agent_user_id", "company_id", "started_at", "ended_at"], sessions)
    _insert(AgentPause, ["agent_user_id", "company_id", "reason", "started_at", "ended_at"], pauses)
    logger.debug(
        "agent spans derived agents=%d sessions=%d pauses=%d",
        len(anchors),
        len(sessions),
        len(pauses),
    )


class SpanLine(NamedTuple):
    agent_user_id: int
    time: datetime
    event: str
    queue_name: str
    data: str


def _span_lines(users: list[int], since: datetime) -> list[SpanLine]:
    """These agents' login and pause lines from `since` on, in time order (then as read)."""
    if connection.vendor == "postgresql":
        # Binary rows (a server-side cursor: Django's are client-side): tens of thousands of
        # times loaded in C, not by Django's loader.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                "SELECT agent_user_id, time, event, queue_name, data FROM "
                f"{_EVENTS} WHERE agent_user_id = ANY(%s) AND time >= %s AND event = ANY(%s) "
                "ORDER BY time, id",
                [users, since, list(_SPAN_EVENTS)],
                binary=True,
            )
            return list(map(SpanLine._make, cursor.fetchall()))
    return [
        SpanLine(*row)
        for row in AgentEvent.objects.filter(
            agent_user_id__in=users, time__gte=since, event__in=_SPAN_EVENTS
        )
        .order_by("time", "pk")
        .values_list("agent_user_id", "time", "event", "queue_name", "data")
    ]


_COLUMN_TYPES = {"agent_user_id": "int8", "company_id": "int8", "reason": "text"}


def _insert(model: type[models.Model], columns: list[str], rows: list[tuple]) -> None:
    """bulk_create, or on PostgreSQL a binary COPY: tens of thousands of spans, which Django
    would make into models and quote value by value in Python."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
        )
        return
    statement = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with psycopg.Cursor(connection.connection) as cursor, cursor.copy(statement) as copy:
        copy.set_types([_COLUMN_TYPES.get(name, "timestamptz") for name in columns])
        for row in rows:
            copy.write_row(row)


def _restarts_since(since: datetime, pbx: str) -> list[datetime]:
    """The PBX's restarts from `since` on, in time order, each time once."""
    if connection.vendor == "postgresql":
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                # The event a literal: the partial index's condition, proven for any plan.
                f"SELECT DISTINCT time FROM {_EVENTS} WHERE event = '{RESTART_EVENT}' "
                "AND pbx = %s AND time >= %s ORDER BY time",
                [pbx, since],
                binary=True,
            )
            return [row[0] for row in cursor.fetchall()]
    return list(
        AgentEvent.objects.filter(event=RESTART_EVENT, pbx=pbx, time__gte=since)
        .order_by("time")
        .values_list("time", flat=True)
        .distinct()
    )


def _anchors(
    since: dict[int, datetime],
) -> tuple[dict[int, datetime], dict[type[models.Model], list[int]]]:
    """For each agent, the earliest start of a span that reaches `since`, followed to a fixed point;
    and the spans from there on, to derive again.

    At that moment the agent had no queue open and no pause: its spans can be derived from there
    on from its lines alone. A login span and a pause span may overlap, so the search goes on
    until no span starts earlier and reaches the anchor. Only spans that end after the earliest
    anchor (or are open) can reach one: those are read, again if the earliest anchor moves back.
    """
    anchors = dict(since)
    bound = min(anchors.values())
    spans = _spans_after(list(anchors), bound)
    while True:
        lowered = False
        for _model, _pk, user_id, start, end in spans:
            anchor = anchors[user_id]
            if start < anchor and (end is None or end >= anchor):
                anchors[user_id] = start
                lowered = True
        if not lowered:
            break
        if min(anchors.values()) < bound:
            bound = min(anchors.values())
            spans = _spans_after(list(anchors), bound)
    stale: dict[type, list[int]] = defaultdict(list)
    for model, pk, user_id, start, _end in spans:
        if start >= anchors[user_id]:
            stale[model].append(pk)
    return anchors, stale


def _spans_after(users: list[int], bound: datetime) -> list[tuple]:
    """(model, pk, user, start, end) of these agents' spans open or ending at `bound` or later."""
    reaching = Q(agent_user_id__in=users) & (Q(ended_at__isnull=True) | Q(ended_at__gte=bound))
    return [
        (model, *row)
        for model in (AgentSession, AgentPause)
        for row in model.objects.filter(reaching).values_list(
            "pk", "agent_user_id", "started_at", "ended_at"
        )
    ]


@dataclass(slots=True)
class Span:
    start: datetime
    end: datetime | None = None
    reason: str = ""


@dataclass
class Timeline:
    """One agent's state through its lines: open queues and pauses, and the spans they make."""

    queues: dict[tuple[str, str], datetime] = field(default_factory=dict)
    paused: dict[str, str] = field(default_factory=dict)
    paused_all: str | None = None
    reason: str = ""
    logins: list[Span] = field(default_factory=list)
    pauses: list[Span] = field(default_factory=list)

    # Spans a restart ended, each with that restart: they end at the last line written before
    # it, which `finish` is given (read once for every agent's timeline).
    ended_by_restart: list[tuple[Span, datetime]] = field(default_factory=list)

    def replay(self, events: Sequence, restarts: Sequence[datetime]) -> None:
        """`events` in time order (any order within a second), `restarts` in time order. Then
        `finish` with the last line before each restart of `ending`."""
        passed = 0  # restarts before the lines replayed so far
        for moment, second in groupby(events, key=attrgetter("time")):
            # A restart comes before the lines of its second. The first one since the previous
            # line ends everything; the others find nothing open.
            reached = bisect_right(restarts, moment, passed)
            if reached > passed:
                self._restart(restarts[passed])
                passed = reached
            for event in self._in_order(list(second)):
                self._apply(event)
                self._settle(moment)
        if passed < len(restarts):
            self._restart(restarts[passed])

    @property
    def ending(self) -> set[datetime]:
        return {restart for _span, restart in self.ended_by_restart}

    def finish(self, last_lines: Mapping[datetime, datetime | None]) -> None:
        """Ends the spans restarts ended at the last line before them, and tidies the spans."""
        for span, restart in self.ended_by_restart:
            span.end = max(last_lines.get(restart) or restart, span.start)
        self.ended_by_restart = []
        for span in (*self.logins, *self.pauses):
            if span.end is not None and span.end < span.start:
                span.end = span.start
        self.logins = _merged(self.logins)
        self.pauses = _merged(self.pauses)

    def _in_order(self, events: list) -> list:
        """Lines of one second in the order that makes sense of them (see the module)."""
        if len(events) == 1:
            return events
        open_at_start = set(self.queues)
        paused_at_start = set(self.paused)

        def rank(event) -> tuple[int, int]:
            name = event.event
            if name in _LOGINS:
                return (3, 0) if (_LOGINS[name], event.queue_name) in open_at_start else (0, 0)
            if name in ("PAUSEALL", "UNPAUSEALL"):
                return (1, 0)
            if name in ("PAUSE", "UNPAUSE"):
                was_paused = event.queue_name in paused_at_start
                return (1, 1 if (name == "PAUSE") == was_paused else 0)
            return (2, 0)

        return sorted(events, key=rank)

    def _apply(self, event) -> None:
        name, queue, moment = event.event, event.queue_name, event.time
        if name in _LOGINS:
            self.queues.setdefault((_LOGINS[name], queue), moment)
            # Recent Asterisk 20, 21 and 22 write ADDMEMBER|PAUSED for a member added paused, and no
            # PAUSE line (asterisk/asterisk#1021).
            if name == "ADDMEMBER" and event.data.split("|", 1)[0].strip().upper() == "PAUSED":
                self._pause("")
                self.paused[queue] = self.reason
        elif name in _LOGOFFS:
            self.queues.pop((_LOGOFFS[name], queue), None)
            self.paused.pop(queue, None)
            if not self.queues:
                self.paused_all = None
        elif name == "PAUSEALL":
            self._pause(event.data)
            self.paused_all = self.reason
        elif name == "PAUSE":
            self._pause(event.data)
            self.paused[queue] = self.reason
        elif name == "UNPAUSEALL":
            self.paused.clear()
            self.paused_all = None
        elif name == "UNPAUSE":
            self.paused.pop(queue, None)
            if not self.paused:
                self.paused_all = None

    def _pause(self, data: str) -> None:
        reason = data.split("|", 1)[0].strip()
        # An empty reason says nothing new while the agent is already paused.
        if reason or not self._is_paused():
            self.reason = reason

    def _is_paused(self) -> bool:
        return self.paused_all is not None or bool(self.paused)

    def _settle(self, moment: datetime) -> None:
        """Opens or closes the agent's spans after a line changed its state."""
        open_login = self.logins[-1] if self.logins and self.logins[-1].end is None else None
        if self.queues and open_login is None:
            self.logins.append(Span(moment))
        elif not self.queues and open_login is not None:
            open_login.end = moment
        open_pause = self.pauses[-1] if self.pauses and self.pauses[-1].end is None else None
        if self._is_paused():
            if open_pause is not None and open_pause.reason != self.reason:
                open_pause.end = moment
                open_pause = None
            if open_pause is None:
                self.pauses.append(Span(moment, reason=self.reason))
        elif open_pause is not None:
            open_pause.end = moment

    def _restart(self, moment: datetime) -> None:
        # Only the last span of each kind can be open: a span is closed before the next opens.
        for spans in (self.logins, self.pauses):
            if spans and spans[-1].end is None:
                spans[-1].end = moment  # until `finish` knows the last line before it
                self.ended_by_restart.append((spans[-1], moment))
        self.queues.clear()
        self.paused.clear()
        self.paused_all = None
        self.reason = ""


def _merged(spans: list[Span]) -> list[Span]:
    """Zero-length spans dropped; a span that starts where the previous one ended joins it."""
    result: list[Span] = []
    for span in spans:
        if span.end is not None and span.end == span.start:
            continue
        last = result[-1] if result else None
        if last is not None and last.end == span.start and last.reason == span.reason:
            last.end = span.end
        else:
            result.append(span)
    return result
