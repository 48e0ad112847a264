"""The report tables as header and rows: one source for the pages and their CSV exports."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from pbx.history.reports import AgentReport, QueueReport
from pbx.local_time import local_time
from pbx.models.history import QueueEntry


@dataclass
class Table:
    """Column titles and rows of plain values (numbers in seconds, texts), as the CSV has them."""

    name: str
    columns: list[Any]
    rows: list[list[Any]] = field(default_factory=list)


def queues_table(queues: Sequence[QueueReport]) -> Table:
    table = Table(
        "queues",
        [
            _("Queue"),
            _("Name"),
            _("Offered"),
            _("Answered"),
            _("Unanswered"),
            _("Abandoned"),
            _("Short abandons"),
            _("Timeouts"),
            _("Exited with a key"),
            _("Exited: queue empty"),
            _("Service level (%)"),
            _("Average wait (s)"),
            _("Longest wait (s)"),
            _("Average talk (s)"),
        ],
    )
    for q in queues:
        table.rows.append(
            [
                q["queue"],
                q["display_name"],
                q["offered"],
                q["answered"],
                q["unanswered"],
                q["abandoned"],
                q["short_abandons"],
                q["timeouts"],
                q["exited_with_key"],
                q["exited_empty"],
                q["service_level"],
                q["avg_wait"],
                q["max_wait"],
                q["avg_talk"],
            ]
        )
    return table


def _summed(queues: Sequence[QueueReport], key: str, label: str) -> list[tuple[Any, list[int]]]:
    """The rows of `key` (by_hour, by_day, abandon_wait_buckets) added up over the queues."""
    if not queues:
        return []
    first = queues[0][key]
    counts = (
        ("abandoned",) if key == "abandon_wait_buckets" else ("answered", "abandoned", "unanswered")
    )
    result = []
    for index, row in enumerate(first):
        result.append((row[label], [sum(q[key][index][c] for q in queues) for c in counts]))
    return result


def hours_table(queues: Sequence[QueueReport]) -> Table:
    table = Table("hours", [_("Hour"), _("Answered"), _("Abandoned"), _("Unanswered")])
    table.rows = [
        [f"{hour:02d}:00", *counts] for hour, counts in _summed(queues, "by_hour", "hour")
    ]
    return table


def days_table(queues: Sequence[QueueReport]) -> Table:
    table = Table("days", [_("Day"), _("Answered"), _("Abandoned"), _("Unanswered")])
    table.rows = [[day, *counts] for day, counts in _summed(queues, "by_day", "date")]
    return table


def abandon_waits_table(queues: Sequence[QueueReport]) -> Table:
    table = Table("abandon-waits", [_("Wait from (s)"), _("Wait under (s)"), _("Abandoned")])
    if queues:
        for index, row in enumerate(queues[0]["abandon_wait_buckets"]):
            total = sum(q["abandon_wait_buckets"][index]["abandoned"] for q in queues)
            table.rows.append([row["from_seconds"], row["to_seconds"] or "", total])
    return table


def pause_reasons(agents: Iterable[AgentReport]) -> list[str]:
    return sorted({reason for agent in agents for reason in agent["pause_seconds"]})


def agents_table(agents: Sequence[AgentReport]) -> Table:
    reasons = pause_reasons(agents)
    table = Table(
        "agents",
        [
            _("Extension"),
            _("Name"),
            _("Answered"),
            _("Talk time (s)"),
            _("Average talk (s)"),
            _("Rang unanswered"),
            _("Logged in (s)"),
            _("Paused (s)"),
            *[
                _("Paused: %(reason)s (s)") % {"reason": reason or _("no reason")}
                for reason in reasons
            ],
        ],
    )
    for a in agents:
        pauses = a["pause_seconds"]
        table.rows.append(
            [
                a["extension"],
                a["name"],
                a["answered"],
                a["talk_seconds"],
                a["avg_talk"],
                a["ring_no_answer"],
                a["login_seconds"],
                sum(pauses.values()),
                *[pauses.get(reason, 0) for reason in reasons],
            ]
        )
    return table


CALL_COLUMNS = [
    _("Entered"),
    _("Queue"),
    _("Caller"),
    _("Outcome"),
    _("Wait (s)"),
    _("Talk (s)"),
    _("Agent"),
    _("Call id"),
]


def outcome_labels() -> dict[str, str]:
    """The outcomes in the language active now (a streamed CSV is written after the view)."""
    return {value: str(label) for value, label in QueueEntry.Outcome.choices}


def call_cells(entry, *, zone, labels: dict[str, str], outcomes: dict[str, str]) -> list[Any]:
    """One call as the CSV (and the page) shows it."""
    agent = entry.agent_user
    return [
        local_time(entry.entered_at, zone),
        labels.get(entry.queue_name, entry.queue_name),
        entry.caller,
        outcomes[entry.outcome],
        entry.wait_seconds,
        entry.talk_seconds,
        f"{agent.extension} {agent.name}" if agent else entry.agent,
        entry.callid,
    ]


def call_lines(
    entries: Iterable, *, zone, labels: dict[str, str], outcomes: dict[str, str]
) -> Iterator[list[Any]]:
    for entry in entries:
        yield call_cells(entry, zone=zone, labels=labels, outcomes=outcomes)
