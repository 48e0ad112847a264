"""What agent activity costs the queue_log ingest: a call centre's file, with and without it.

The file: 100 agents in 20 queues (3 each) for as many days as the lines take, in time order as
Asterisk writes it. Each agent logs in to its queues at 09:00 and out at 18:00, pauses four
times a day (PAUSEALL and a PAUSE per queue, the same to unpause), and takes calls (ENTERQUEUE,
RINGNOANSWER to another agent now and then, CONNECT, COMPLETECALLER); a few callers hang up.
About one line in six is about an agent. The ceiling is the same ingest with the agent step
switched off, in the same run.

Run: .venv/bin/python benchmarks/agent_activity.py [LINES]   (BENCH_SERVER_URL, BENCH_DATABASE)
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _setup import setup

AGENTS = 100
QUEUES = 20
CALLS_PER_AGENT_HOUR = 6


def make_file(path: Path, count: int) -> int:
    rng = random.Random(5)
    written = 0
    day = datetime(2026, 1, 5, tzinfo=UTC)
    call = 0
    with path.open("w", encoding="utf-8") as out:
        while written < count:
            lines: list[tuple[int, str]] = []
            for agent in range(AGENTS):
                member = f"PJSIP/{200 + agent}"
                queues = [f"aq{(agent + n) % QUEUES:02d}" for n in range(3)]
                start = day + timedelta(hours=8, seconds=rng.randrange(600))
                end = day + timedelta(hours=17, seconds=rng.randrange(600))
                for queue in queues:
                    lines.append((int(start.timestamp()), f"MANAGER|{queue}|{member}|ADDMEMBER|"))
                    lines.append((int(end.timestamp()), f"MANAGER|{queue}|{member}|REMOVEMEMBER|"))
                for hour in (9, 11, 13, 15):
                    begin = day + timedelta(hours=hour, seconds=rng.randrange(1800))
                    back = begin + timedelta(seconds=rng.randrange(300, 1200))
                    reason = rng.choice(["Descanso", "Comida", "Formación"])
                    lines.append((int(begin.timestamp()), f"NONE|NONE|{member}|PAUSEALL|{reason}"))
                    lines.append((int(back.timestamp()), f"NONE|NONE|{member}|UNPAUSEALL|"))
                    for queue in queues:
                        lines.append(
                            (int(begin.timestamp()), f"NONE|{queue}|{member}|PAUSE|{reason}")
                        )
                        lines.append((int(back.timestamp()), f"NONE|{queue}|{member}|UNPAUSE|"))
                for _ in range(CALLS_PER_AGENT_HOUR * 9):
                    call += 1
                    queue = rng.choice(queues)
                    entered = int((start + timedelta(seconds=rng.randrange(32000))).timestamp())
                    callid = f"{entered}.{call}"
                    wait = rng.randrange(60)
                    lines.append(
                        (entered, f"{callid}|{queue}|NONE|ENTERQUEUE||600{call % 1000:03d}|1")
                    )
                    if rng.random() < 0.2:
                        other = f"PJSIP/{200 + rng.randrange(AGENTS)}"
                        lines.append((entered + 15, f"{callid}|{queue}|{other}|RINGNOANSWER|15000"))
                    if rng.random() < 0.1:
                        lines.append((entered + wait, f"{callid}|{queue}|NONE|ABANDON|1|1|{wait}"))
                        continue
                    talk = rng.randrange(30, 400)
                    lines.append(
                        (entered + wait, f"{callid}|{queue}|{member}|CONNECT|{wait}|{callid}1|3")
                    )
                    lines.append(
                        (
                            entered + wait + talk,
                            f"{callid}|{queue}|{member}|COMPLETECALLER|{wait}|{talk}|1",
                        )
                    )
            lines.sort(key=lambda line: line[0])
            for epoch, rest in lines[: count - written]:
                out.write(f"{epoch}|{rest}\n")
            written += min(len(lines), count - written)
            day += timedelta(days=1)
    return written


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    setup()
    from django.db import connection

    import pbx.history.ingest.derive as derive
    import pbx.history.ingest.runner as runner
    from pbx.models import AgentEvent, AgentPause, AgentSession, Company, PbxUser, Queue
    from pbx.models.history import (
        IngestCursor,
        QueueEntry,
        QueueLogBlockTimes,
        QueueLogFile,
        QueueLogLine,
    )
    from terminals.models import Terminal

    tables = (QueueEntry, QueueLogLine, QueueLogBlockTimes, QueueLogFile, IngestCursor)
    tables += (AgentEvent, AgentSession, AgentPause)
    company, _ = Company.objects.get_or_create(slug="bench-agents", defaults={"name": "Agents"})
    Queue.objects.filter(company=company).delete()
    PbxUser.objects.filter(company=company).delete()
    Queue.objects.bulk_create([Queue(company=company, name=f"aq{n:02d}") for n in range(QUEUES)])
    users = PbxUser.objects.bulk_create(
        [PbxUser(company=company, extension=str(200 + n), name=f"A{n}") for n in range(AGENTS)]
    )
    Terminal.objects.bulk_create(
        [
            Terminal(mac=f"0000bb{n:06x}", user=user, interface=f"PJSIP/{user.extension}")
            for n, user in enumerate(users)
        ],
        ignore_conflicts=True,
    )
    with_agents = derive.derive_agent_activity

    def ingest(path: Path, *, agents: bool) -> tuple[float, object]:
        with connection.cursor() as cursor:
            for model in tables:
                cursor.execute(f"TRUNCATE {model._meta.db_table}")
        derive.derive_agent_activity = with_agents if agents else (lambda *a, **k: None)
        job = runner.FileIngest(path=path, kind="queue_log", time_zone=runner.cdr_time_zone("UTC"))
        started = time.perf_counter()
        report = job.run()
        return time.perf_counter() - started, report

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "queue_log"
        lines = make_file(path, count)
        bare, _ = ingest(path, agents=False)
        full, report = ingest(path, agents=True)
    events = AgentEvent.objects.count()
    print(f"lines: {lines:,} ({events:,} about agents; {report.entries:,} queue entries)")
    print(
        f"spans derived: {AgentSession.objects.count():,} logins, "
        f"{AgentPause.objects.count():,} pauses"
    )
    print(f"ingest without agent activity (ceiling): {bare:6.1f} s  ({lines / bare:,.0f} lines/s)")
    print(f"ingest with agent activity:              {full:6.1f} s  ({lines / full:,.0f} lines/s)")
    print(f"ratio: {full / bare:.2f}x")


if __name__ == "__main__":
    main()
