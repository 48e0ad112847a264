"""Agent activity at ingest: agent lines kept, and each agent's login and pause spans derived again.

The lines about agents (ADDMEMBER/REMOVEMEMBER, PAUSE/UNPAUSE and their ALL forms, the chan_agent
logins, RINGNOANSWER) and restarts (QUEUESTART) of every batch are kept as `AgentEvent` rows, once
each (same key as the line: time and digest). For every agent whose lines are new, its spans are
derived again from the last moment it was surely logged out and not paused: the start of the
earliest span that reaches the new line, or the line itself. So lines that arrive late or out of
order give the spans a sorted file would, a span still open at the end of a batch is closed by a
later one, and reading a file again adds nothing.

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
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import reduce
from operator import or_

from django.db.models import Q

from pbx.agents import DirectorySnapshot
from pbx.ingest.lines import last_line_before
from pbx.ingest.queue_log import MalformedLine, QueueLogRecord, parse_line
from pbx.models.agents import (
    AGENT_EVENTS,
    PAUSE_EVENTS,
    RESTART_EVENT,
    SESSION_EVENTS,
    AgentEvent,
    AgentPause,
    AgentSession,
)
from pbx.models.directory import PbxUser

logger = logging.getLogger("swan.ingest")
_AGENT_EVENTS = frozenset(AGENT_EVENTS)
_SPAN_EVENTS = frozenset((*SESSION_EVENTS, *PAUSE_EVENTS))
_LOGINS = {"ADDMEMBER": "member", "AGENTLOGIN": "agent", "AGENTCALLBACKLOGIN": "agent"}
_LOGOFFS = {"REMOVEMEMBER": "member", "AGENTLOGOFF": "agent", "AGENTCALLBACKLOGOFF": "agent"}
# A line whose event field is one of AGENT_EVENTS (psql dumps pad the fields with blanks).
_AGENT_LINE = re.compile(
    r"\|[ \t]*(?:" + "|".join(AGENT_EVENTS) + r")[ \t]*(?:\||\r?$)", re.MULTILINE
)


def agent_records_in_text(text: str, *, local_tz: tzinfo) -> list[QueueLogRecord]:
    """The agent lines of a block of queue_log text; malformed lines are left to the ingest."""
    records = []
    last_start = -1
    for match in _AGENT_LINE.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        if start == last_start:
            continue  # a data field that looked like an event, on a line already taken
        last_start = start
        end = text.find("\n", match.end() - 1)
        line = text[start : end if end >= 0 else len(text)]
        try:
            record = parse_line(line, local_tz=local_tz)
        except MalformedLine:
            continue
        if record is not None and record.event in _AGENT_EVENTS:
            records.append(record)
    return records


def record_agent_activity(
    records: Iterable[QueueLogRecord], *, directory: DirectorySnapshot
) -> int:
    """Keeps the batch's new agent lines and derives again the spans they change.

    Returns how many agent lines were new. Call inside the batch's transaction.
    """
    rows = _new_rows(records, directory)
    if not rows:
        return 0
    AgentEvent.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    since: dict[int, datetime] = {}
    for row in rows:
        if row.agent_user_id is not None and row.event in _SPAN_EVENTS:
            _earliest(since, row.agent_user_id, row.time)
    for restart in sorted({row.time for row in rows if row.event == RESTART_EVENT}):
        for user_id in _users_spanning(restart):
            _earliest(since, user_id, restart)
    if since:
        derive_spans(since)
    return len(rows)


def _earliest(since: dict[int, datetime], user_id: int, moment: datetime) -> None:
    if user_id not in since or moment < since[user_id]:
        since[user_id] = moment


def _new_rows(records: Iterable[QueueLogRecord], directory: DirectorySnapshot) -> list[AgentEvent]:
    wanted: dict[tuple[datetime, object], QueueLogRecord] = {}
    for record in records:
        if record.event in _AGENT_EVENTS:
            wanted.setdefault((record.time, record.digest), record)
    if not wanted:
        return []
    stored = set()
    keys = list(wanted)
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        times = [moment for moment, _digest in chunk]
        stored.update(
            AgentEvent.objects.filter(
                time__gte=min(times), time__lte=max(times), digest__in=[d for _t, d in chunk]
            ).values_list("time", "digest")
        )
    companies = _user_companies(directory)
    rows = []
    for key, record in wanted.items():
        if key in stored:
            continue
        _queue_id, company_id = directory.queue(record.queue_name)
        user_id = None
        if record.event != RESTART_EVENT:
            user_id = directory.agent_user(record.agent, company_id)
        rows.append(
            AgentEvent(
                time=record.time,
                digest=record.digest,
                event=record.event,
                queue_name=record.queue_name,
                agent=record.agent,
                agent_user_id=user_id,
                company_id=company_id if company_id is not None else companies.get(user_id),
                data=record.data,
            )
        )
    return rows


def _user_companies(directory: DirectorySnapshot) -> dict[int | None, int]:
    return {
        user_id: company_id
        for candidates in directory.extensions.values()
        for user_id, company_id in candidates
    }


def _users_spanning(moment: datetime) -> set[int]:
    """Agents logged in or paused across `moment` as derived so far: a restart there ends it."""
    spanning = Q(started_at__lte=moment) & (Q(ended_at__isnull=True) | Q(ended_at__gte=moment))
    users = set(AgentSession.objects.filter(spanning).values_list("agent_user_id", flat=True))
    users.update(AgentPause.objects.filter(spanning).values_list("agent_user_id", flat=True))
    return users


# ------------------------------------------------------------------------------------------------
# Spans


def derive_spans(since: dict[int, datetime]) -> None:
    """Derives again the spans of these agents from their lines, from `since` (or earlier)."""
    anchors = _anchors(since)
    by_user = _per_user(anchors)
    AgentSession.objects.filter(by_user).delete()
    AgentPause.objects.filter(by_user).delete()
    events: dict[int, list[AgentEvent]] = defaultdict(list)
    for event in AgentEvent.objects.filter(
        _per_user(anchors, field="time"), event__in=_SPAN_EVENTS
    ).order_by("time", "pk"):
        events[event.agent_user_id].append(event)
    restarts = list(
        AgentEvent.objects.filter(event=RESTART_EVENT, time__gte=min(anchors.values()))
        .order_by("time")
        .values_list("time", flat=True)
        .distinct()
    )
    alive = {restart: last_line_before(restart) or restart for restart in restarts}
    companies = dict(PbxUser.objects.filter(pk__in=list(anchors)).values_list("pk", "company_id"))
    sessions, pauses = [], []
    for user_id, anchor in anchors.items():
        if user_id not in companies:
            continue  # the user was deleted meanwhile
        timeline = Timeline()
        timeline.replay(
            events.get(user_id, []),
            [(restart, alive[restart]) for restart in restarts if restart >= anchor],
        )
        company_id = companies[user_id]
        sessions.extend(
            AgentSession(
                agent_user_id=user_id, company_id=company_id, started_at=s.start, ended_at=s.end
            )
            for s in timeline.logins
        )
        pauses.extend(
            AgentPause(
                agent_user_id=user_id,
                company_id=company_id,
                reason=s.reason[:255],
                started_at=s.start,
                ended_at=s.end,
            )
            for s in timeline.pauses
        )
    AgentSession.objects.bulk_create(sessions, batch_size=500)
    AgentPause.objects.bulk_create(pauses, batch_size=500)
    logger.debug(
        "agent spans derived agents=%d sessions=%d pauses=%d",
        len(anchors),
        len(sessions),
        len(pauses),
    )


def _per_user(anchors: dict[int, datetime], *, field: str = "started_at") -> Q:
    return reduce(or_, (Q(agent_user_id=u, **{f"{field}__gte": t}) for u, t in anchors.items()))


def _anchors(since: dict[int, datetime]) -> dict[int, datetime]:
    """For each agent, the earliest start of a span that reaches `since`, followed to a fixed point.

    At that moment the agent had no queue open and no pause: its spans can be derived from there
    on from its lines alone. A login span and a pause span may overlap, so the search goes on
    until no span starts earlier and reaches the anchor.
    """
    anchors = dict(since)
    while True:
        reaching = reduce(
            or_,
            (
                Q(agent_user_id=u, started_at__lt=t)
                & (Q(ended_at__isnull=True) | Q(ended_at__gte=t))
                for u, t in anchors.items()
            ),
        )
        lowered = False
        for model in (AgentSession, AgentPause):
            for user_id, start in model.objects.filter(reaching).values_list(
                "agent_user_id", "started_at"
            ):
                if start < anchors[user_id]:
                    anchors[user_id] = start
                    lowered = True
        if not lowered:
            return anchors


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

    def replay(self, events: Sequence, restarts: Sequence[tuple[datetime, datetime]]) -> None:
        """`events` in time order (any order within a second); `restarts` as (time, last line)."""
        pending = list(restarts)
        by_second: dict[datetime, list] = defaultdict(list)
        for event in events:
            by_second[event.time].append(event)
        for moment in sorted(by_second.keys() | {r for r, _alive in pending}):
            for _at, alive in [r for r in pending if r[0] <= moment]:
                self._restart(alive)
            pending = [r for r in pending if r[0] > moment]
            for event in self._in_order(by_second.get(moment, [])):
                self._apply(event)
                self._settle(moment)
        for span in (*self.logins, *self.pauses):
            if span.end is not None and span.end < span.start:
                span.end = span.start
        self.logins = _merged(self.logins)
        self.pauses = _merged(self.pauses)

    def _in_order(self, events: list) -> list:
        """Lines of one second in the order that makes sense of them (see the module)."""
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

    def _restart(self, alive: datetime) -> None:
        for span in (*self.logins, *self.pauses):
            if span.end is None:
                span.end = max(alive, span.start)
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
