"""After new queue_log lines were stored: what is derived from them, one stretch of a file at a time.

Lines are stored batch by batch with the cursor. What is derived from them (queue entries, the
agents' lines and their login and pause spans) follows in its own transaction per stretch of
lines, and `QueueLogFile.derived_lines` moves with it: a crash in between leaves the stretch
pending, and the next run derives it first. This module is the one place where "the lines of file
F from line a to line b are new" turns into derived rows.

A file is one PBX's, and so is everything derived from it: a call's entries are derived from the
lines of its PBX's files only (the same callid on another PBX is another call), with that PBX's
directory (`AgentDirectory.load(pbx)`), and written under that PBX's key.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import F

from pbx.directory.agent_matching import AgentDirectory
from pbx.history.ingest import agent_activity, entries, entries_sql
from pbx.history.ingest.agent_activity import derive_agent_activity
from pbx.history.ingest.lines import files_of
from pbx.live.version import live_changed
from pbx.models.agents import AgentSpansPending
from pbx.models.history import ENTRY_EVENTS, QueueLogFile, QueueLogLine

logger = logging.getLogger("swan.ingest")
CALLS_PER_STATEMENT = 20_000
DERIVE_LOCK = 0x5_3741_4E  # "SWAN": the advisory lock key of queue_log derivations
DERIVE_WORK_MEM = "64MB"


def pending_files(pbx: str) -> list[QueueLogFile]:
    """The PBX's files with lines stored whose entries are not derived yet."""
    return list(QueueLogFile.objects.filter(pbx=pbx, derived_lines__lt=F("lines")).order_by("pk"))


def derive_pending(logfile: QueueLogFile, *, directory: AgentDirectory, spans: bool = True) -> int:
    """Derives what the file's lines not derived yet give; returns how many entries were made.

    `directory` is the file's PBX's (`AgentDirectory.load(logfile.pbx)`). `spans=False` leaves
    the agents' login and pause spans pending, for `derive_pending_spans` (a bulk read derives
    them once for many stretches).

    Committed with the disk (not `store.commit_without_flush`): it numbers a live change
    (`live_changed`), and a number lost to a server crash after a web worker saw it would be
    handed out again for another change, which that worker would then never read."""
    with transaction.atomic():
        _one_deriver_at_a_time()
        derived, last = QueueLogFile.objects.values_list("derived_lines", "lines").get(
            pk=logfile.pk
        )
        first = derived + 1
        if first > last:
            return 0
        calls = set(
            QueueLogLine.objects.filter(
                file=logfile, number__gte=first, number__lte=last, event__in=ENTRY_EVENTS
            )
            .values_list("callid", "queue_name")
            .distinct()
        )
        callids = sorted({callid for callid, _queue in calls})
        made = _entries(callids, directory, logfile.pbx) if callids else 0
        derive_agent_activity(
            logfile.pk, first, last, directory=directory, pbx=logfile.pbx, spans=spans
        )
        # The web workers' kept figures of these queues (pbx/live/read_cache.py) are stale now.
        live_changed(history={queue for _callid, queue in calls})
        QueueLogFile.objects.filter(pk=logfile.pk).update(derived_lines=last)
    logfile.derived_lines = last
    logger.debug(
        "queue_log derived pbx=%s file=%s lines=%s-%s calls=%s entries=%s",
        logfile.pbx,
        logfile.pk,
        first,
        last,
        len(callids),
        made,
    )
    return made


def derive_pending_spans(pbx: str) -> None:
    """Derives the spans that stretches derived with `spans=False` left pending, if any."""
    if not AgentSpansPending.objects.filter(pbx=pbx).exists():
        return
    with transaction.atomic():
        _one_deriver_at_a_time()
        agent_activity.derive_pending_spans(pbx)
    logger.debug("queue_log spans derived pbx=%s", pbx)


def _one_deriver_at_a_time() -> None:
    """Derivers wait for each other (two would replace the same calls' entries at once).

    Not a lock on the file's row: the ingest updates that row with every batch it stores, and
    must not wait for a derivation running beside it (background.BackgroundDeriver). SQLite lets one
    writer in at a time anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DERIVE_LOCK])
            # A stretch's agent lines are sorted and grouped in memory, not in temporary files.
            cursor.execute(f"SET LOCAL work_mem = '{DERIVE_WORK_MEM}'")


def _entries(callids: list[str], directory: AgentDirectory, pbx: str) -> int:
    if connection.vendor != "postgresql":
        return entries.rederive(set(callids), directory=directory, pbx=pbx)
    made = 0
    queues = list(directory.queues.items())
    files = files_of(pbx)
    # The psycopg cursor: Django's quotes every array element in Python, for thousands of calls.
    with connection.connection.cursor() as cursor:
        # Every read below goes through an index. With thousands of calls in `= ANY(...)` the
        # planner prices those index scans far above a scan of the whole table, and is wrong.
        # Every join below is between the chunk's drafts, thousands of rows: on a table just
        # filled (no statistics yet) with the PBX's files as one more filter, the planner
        # expected two and joined them in a nested loop (97 s for 20,000 calls instead of 2).
        cursor.execute(
            "SELECT current_setting('enable_seqscan'), current_setting('enable_nestloop'), "
            "set_config('enable_seqscan', 'off', true), set_config('enable_nestloop', 'off', true)"
        )
        previous = cursor.fetchone()[:2]
        for start in range(0, len(callids), CALLS_PER_STATEMENT):
            chunk = callids[start : start + CALLS_PER_STATEMENT]
            calls = {"callids": chunk, "pbx": pbx, "files": files}
            cursor.execute(entries_sql.AGENTS, calls)
            agents = [
                (agent, queue_name, directory.agent_user(agent, directory.queue(queue_name)[1]))
                for agent, queue_name in cursor.fetchall()
            ]
            agents = [row for row in agents if row[2] is not None]
            cursor.execute(entries_sql.DELETE, calls)
            cursor.execute(
                entries_sql.INSERT,
                {
                    **calls,
                    "queue_names": [name for name, _ in queues],
                    "queue_ids": [ids[0] for _, ids in queues],
                    "company_ids": [ids[1] for _, ids in queues],
                    "agents": [row[0] for row in agents],
                    "agent_queues": [row[1] for row in agents],
                    "user_ids": [row[2] for row in agents],
                },
            )
            added, irregular = cursor.fetchone()
            made += added
            if irregular:
                made += entries.rederive(set(irregular), directory=directory, pbx=pbx)
        cursor.execute(
            "SELECT set_config('enable_seqscan', %s, true), set_config('enable_nestloop', %s, true)",
            list(previous),
        )
    return made
