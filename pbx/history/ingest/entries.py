"""Queue entries from queue_log lines: one per caller's stay in a queue, whatever order lines came in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pbx.directory.agent_matching import AgentDirectory
from pbx.live.version import live_changed
from pbx.models.history import ENTRY_EVENTS, QueueEntry, QueueLogFile, QueueLogLine

Outcome = QueueEntry.Outcome
_EXITS = {
    "ABANDON": Outcome.ABANDONED,
    "EXITWITHTIMEOUT": Outcome.TIMEOUT,
    "EXITEMPTY": Outcome.EMPTY,
    "EXITWITHKEY": Outcome.KEY_PRESS,
}
_COMPLETES = {"COMPLETEAGENT", "COMPLETECALLER"}
_TRANSFERS = {"TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"}
_FINALS = _COMPLETES | _TRANSFERS | set(_EXITS)
# Lines of one second sort in the order Asterisk writes them.
_RANK = {"ENTERQUEUE": 0, "CONNECT": 1}
IN_CHUNK = 900  # SQLite's historic limit on query parameters is 999


@dataclass(slots=True)
class Line:
    time: datetime
    agent: str
    event: str
    data: list[str]


@dataclass(slots=True)
class EntryDraft:
    entered_at: datetime | None = None
    caller: str = ""
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str = Outcome.WAITING
    wait: int | None = None
    talk: int = 0
    agent: str = ""
    closed: bool = False
    first_time: datetime | None = None

    def start(self) -> datetime:
        """When the caller entered; without an ENTERQUEUE line, worked back from the times logged."""
        if self.entered_at is not None:
            return self.entered_at
        if self.answered_at is not None:
            return self.answered_at - timedelta(seconds=self.wait or 0)
        if self.ended_at is not None:
            return self.ended_at - timedelta(seconds=(self.wait or 0) + self.talk)
        assert self.first_time is not None
        return self.first_time


def _int(fields: list[str], index: int) -> int | None:
    try:
        value = int(fields[index])
    except (IndexError, ValueError):
        return None
    return value if value >= 0 else None


def derive(lines: Iterable[Line]) -> list[EntryDraft]:
    """The entries of one (callid, queue): an ENTERQUEUE opens one, the first exit line closes it.

    Lines are put in time order first (queue_log files and dumps are not sorted). An exit line
    with no ENTERQUEUE before it still makes an entry, dated back by the wait it reports, so that
    a file rotated mid-call counts the call; its ENTERQUEUE, when it arrives, corrects the date.
    """
    drafts: list[EntryDraft] = []
    current: EntryDraft | None = None
    for line in sorted(lines, key=lambda line: (line.time, _RANK.get(line.event, 2))):
        event, data = line.event, line.data
        if event == "ENTERQUEUE":
            if (
                current is not None
                and not current.closed
                and current.entered_at in (None, line.time)
            ):
                current.entered_at = (
                    line.time
                )  # the same entry logged twice, or its exit came first
            else:
                current = EntryDraft(entered_at=line.time, first_time=line.time)
                drafts.append(current)
            current.caller = current.caller or (data[1] if len(data) > 1 else "")
            continue
        if current is None or current.closed:
            if current is not None and event in _FINALS:
                continue  # a repeated exit line (same call, same queue, no new ENTERQUEUE)
            current = EntryDraft(first_time=line.time)
            drafts.append(current)
        if event == "CONNECT":
            current.outcome = Outcome.ANSWERED
            current.answered_at = line.time
            current.wait = _int(data, 0)
            current.agent = line.agent
        elif event in _COMPLETES or event in _TRANSFERS:
            if event in _COMPLETES:
                hold, talk = _int(data, 0), _int(data, 1)
                current.outcome = Outcome.ANSWERED
            else:
                # BLINDTRANSFER/ATTENDEDTRANSFER end with hold|call|origposition (LINK adds a
                # field in the middle); 1.4's TRANSFER had only extension|context|hold|call.
                at = -3 if len(data) >= 5 else 2
                hold, talk = _int(data, at), _int(data, at + 1)
                current.outcome = Outcome.TRANSFERRED
            current.talk = talk or 0
            if current.wait is None:
                current.wait = hold
            if current.answered_at is None:
                current.answered_at = line.time - timedelta(seconds=current.talk)
            if not current.agent:
                current.agent = line.agent
            current.ended_at = line.time
            current.closed = True
        elif event in _EXITS:
            current.outcome = _EXITS[event]
            current.wait = _int(data, 3 if event == "EXITWITHKEY" else 2)
            current.ended_at = line.time
            current.closed = True
    for draft in drafts:
        if draft.wait is None:
            end = draft.answered_at or draft.ended_at
            draft.wait = max(0, int((end - draft.start()).total_seconds())) if end else 0
    return drafts


def rederive(callids: set[str], *, directory: AgentDirectory, pbx: str) -> int:
    """Derives again every entry of these calls of the PBX from their stored lines (of its
    files only); returns how many exist. `directory` is the PBX's."""
    ordered = sorted(callids)
    created = 0
    queues: set[str] = set()
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        lines = _stored_lines(chunk, pbx)
        rows = _entry_rows(lines, directory, pbx)
        QueueEntry.objects.filter(pbx=pbx, callid__in=chunk).delete()
        QueueEntry.objects.bulk_create(
            [QueueEntry(**dict(zip(_COLUMNS, row, strict=True))) for row in rows], batch_size=500
        )
        created += len(rows)
        queues |= {queue_name for _callid, queue_name in lines}
    # Entries come only from these lines: their queues are every queue whose figures changed.
    live_changed(history=queues)
    return created


def _stored_lines(callids: list[str], pbx: str) -> dict[tuple[str, str], list[Line]]:
    """The entry lines of these calls in the PBX's files, by (callid, queue), in the order they
    were stored."""
    rows = (
        QueueLogLine.objects.filter(
            callid__in=callids,
            event__in=ENTRY_EVENTS,
            file__in=QueueLogFile.objects.filter(pbx=pbx),
        )
        .order_by("file_id", "number")
        .values_list("callid", "queue_name", "time", "agent", "event", "data")
    )
    grouped: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for callid, queue_name, time, agent, event, data in rows:
        grouped[callid, queue_name].append(Line(time, agent, event, data.split("|")))
    return grouped


def _entry_rows(
    grouped: dict[tuple[str, str], list[Line]], directory: AgentDirectory, pbx: str
) -> list[tuple]:
    """QueueEntry rows (values in _COLUMNS order), one per (callid, queue, entered_at)."""
    unique = {}
    for (callid, queue_name), lines in grouped.items():
        queue_id, company_id = directory.queue(queue_name)
        for draft in derive(lines):
            answered = draft.outcome in (Outcome.ANSWERED, Outcome.TRANSFERRED)
            entered_at = draft.start()
            unique[callid, queue_name, entered_at] = (
                pbx,
                callid,
                queue_name,
                queue_id,
                company_id,
                draft.caller[:80],
                entered_at,
                draft.answered_at,
                draft.ended_at,
                draft.outcome,
                draft.wait or 0,
                draft.talk,
                draft.agent if answered else "",
                directory.agent_user(draft.agent, company_id) if answered else None,
            )
    return list(unique.values())


_COLUMNS = [
    "pbx",
    "callid",
    "queue_name",
    "queue_id",
    "company_id",
    "caller",
    "entered_at",
    "answered_at",
    "ended_at",
    "outcome",
    "wait_seconds",
    "talk_seconds",
    "agent",
    "agent_user_id",
]
