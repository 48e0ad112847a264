"""Historical reports over 90 days: 1,000,000 queue entries, 100 agents, beside a bare COUNT.

The ceiling is measured in the same run: a bare `COUNT(*)` over the same entries (the rows any
report has to read), and for agents the same over their answered entries. Figures are
milliseconds of the selectors and of the endpoints (HTTP, key, envelope), PostgreSQL only.

Run: .venv/bin/python benchmarks/reports.py [--keep]   (BENCH_SERVER_URL, BENCH_DATABASE)
(--keep: reuse the rows of the last run when they are all there; writing them takes a minute.)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

from _setup import setup

ENTRIES = 1_000_000
AGENTS = 100
QUEUES = 20
DAYS = 90
RUNS = 15
FIRST = date(2026, 1, 1)


def main() -> None:
    setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from pbx.history import reports
    from pbx.models import ApiKey, Company, Queue
    from pbx.models.history import QueueEntry

    company = Company.objects.filter(slug="bench").first()
    if "--keep" in sys.argv and company and QueueEntry.objects.count() == ENTRIES:
        queues = list(Queue.objects.filter(company=company).order_by("name"))
        period = reports.period_of(company, (FIRST, FIRST + timedelta(days=DAYS - 1)))
        print(f"data: kept from the last run ({ENTRIES:,} entries)")
    else:
        company, queues, period = _fresh(connection)
    ApiKey.objects.all().delete()

    def timed(call) -> tuple[float, float]:
        for _ in range(2):
            call()
        samples = []
        for _ in range(RUNS):
            begin = time.perf_counter()
            call()
            samples.append((time.perf_counter() - begin) * 1000)
        return statistics.median(samples), max(samples)

    names = [q.name for q in queues]

    def count(sql: str, params: list) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchone()

    ceiling = timed(
        lambda: count(
            "SELECT count(*) FROM pbx_queueentry WHERE queue_name = ANY(%s) "
            "AND entered_at >= %s AND entered_at < %s",
            [names, period.start, period.end],
        )
    )
    answered_ceiling = timed(
        lambda: count(
            "SELECT count(*) FROM pbx_queueentry WHERE queue_name = ANY(%s) "
            "AND entered_at >= %s AND entered_at < %s AND outcome IN ('answered', 'transferred') "
            "AND agent_user_id IS NOT NULL",
            [names, period.start, period.end],
        )
    )
    queue_selector = timed(lambda: reports.queue_report(queues=queues, period=period))
    agent_selector = timed(
        lambda: reports.agent_report(company=company, queues=queues, period=period)
    )
    key = ApiKey(name="bench", all_companies=True)
    raw = key.set_new_key()
    key.save()
    http = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    params = {"company": "bench", "from": period.first.isoformat(), "to": period.last.isoformat()}
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        queue_endpoint = timed(lambda: _ok(http.get("/api/reports/queues", params)))
        agent_endpoint = timed(lambda: _ok(http.get("/api/reports/agents", params)))
    print(f"{RUNS} runs each, median / max in ms; ceiling: a bare COUNT(*) over the same rows")
    for name, (median, worst) in (
        ("ceiling: COUNT(*) of the entries", ceiling),
        ("queue report (selector)", queue_selector),
        ("api/reports/queues (HTTP)", queue_endpoint),
        ("ceiling: COUNT(*) of the answered", answered_ceiling),
        ("agent report (selector)", agent_selector),
        ("api/reports/agents (HTTP)", agent_endpoint),
    ):
        print(f"  {name:<36} {median:8.1f} {worst:8.1f}   {median / ceiling[0]:5.1f} x the COUNT")


def _fresh(connection):
    from pbx.history import reports
    from pbx.models import Company, PbxUser, Queue

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pbx_queueentry, pbx_agentevent, pbx_agentsession, pbx_agentpause, "
            "pbx_queue, pbx_pbxuser, pbx_apikey, pbx_company CASCADE"
        )
    company = Company.objects.create(slug="bench", name="Bench", time_zone="Europe/Madrid")
    queues = Queue.objects.bulk_create(
        [Queue(company=company, name=f"q{n:02d}") for n in range(QUEUES)]
    )
    users = PbxUser.objects.bulk_create(
        [PbxUser(company=company, extension=str(200 + n), name=f"U{n}") for n in range(AGENTS)]
    )
    period = reports.period_of(company, (FIRST, FIRST + timedelta(days=DAYS - 1)))
    started = time.perf_counter()
    _fill(connection, company, queues, users, period)
    took = time.perf_counter() - started
    print(f"data: {ENTRIES:,} entries, {AGENTS} agents, {DAYS} days, written in {took:.0f} s")
    return company, queues, period


def _ok(response) -> None:
    assert response.status_code == 200, response.content[:300]


def _fill(connection, company, queues, users, period) -> None:
    """Entries, ring-no-answer lines, login and pause spans, written with COPY and analysed."""
    rng = random.Random(11)
    start = period.start.astimezone(UTC)
    span = int((period.end - period.start).total_seconds())
    outcomes = ["answered"] * 14 + [
        "transferred",
        "abandoned",
        "abandoned",
        "timeout",
        "key_press",
        "empty",
    ]
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY pbx_queueentry (callid, queue_name, queue_id, company_id, caller, entered_at, "
            "outcome, wait_seconds, talk_seconds, agent, agent_user_id) FROM STDIN"
        ) as copy:
            for n in range(ENTRIES):
                queue = queues[n % QUEUES]
                outcome = rng.choice(outcomes)
                answered = outcome in ("answered", "transferred")
                user = users[rng.randrange(AGENTS)] if answered else None
                copy.write_row(
                    (
                        f"{1767225600 + n // 5}.{n}",
                        queue.name,
                        queue.pk,
                        company.pk,
                        "600000000",
                        start + timedelta(seconds=rng.randrange(span)),
                        outcome,
                        rng.randrange(120),
                        rng.randrange(600) if answered else 0,
                        f"PJSIP/{user.extension}" if user else "",
                        user.pk if user else None,
                    )
                )
        with cursor.cursor.copy(
            "COPY pbx_agentevent (time, event, queue_name, agent, agent_user_id, "
            "company_id, data) FROM STDIN"
        ) as copy:
            for n in range(ENTRIES // 10):
                user = users[rng.randrange(AGENTS)]
                copy.write_row(
                    (
                        start + timedelta(seconds=rng.randrange(span)),
                        "RINGNOANSWER",
                        queues[n % QUEUES].name,
                        f"PJSIP/{user.extension}",
                        user.pk,
                        company.pk,
                        "15000",
                    )
                )
        # Two logins a working day (09:00-13:00, 14:00-18:00 local), four pauses in each.
        with (
            cursor.cursor.copy(
                "COPY pbx_agentsession (agent_user_id, company_id, started_at, ended_at) FROM STDIN"
            ) as sessions,
        ):
            for day in period.days():
                for user in users:
                    for first, last in ((9, 13), (14, 18)):
                        begin = datetime(day.year, day.month, day.day, first, tzinfo=period.zone)
                        end = datetime(day.year, day.month, day.day, last, tzinfo=period.zone)
                        sessions.write_row((user.pk, company.pk, begin, end))
        with cursor.cursor.copy(
            "COPY pbx_agentpause (agent_user_id, company_id, reason, started_at, ended_at) "
            "FROM STDIN"
        ) as pauses:
            for day in period.days():
                for user in users:
                    for hour in (10, 11, 15, 16):
                        begin = datetime(day.year, day.month, day.day, hour, tzinfo=period.zone)
                        reason = rng.choice(["Descanso", "Comida", "Formación", ""])
                        pauses.write_row(
                            (user.pk, company.pk, reason, begin, begin + timedelta(minutes=10))
                        )
    with connection.cursor() as cursor:
        for table in ("pbx_queueentry", "pbx_agentevent", "pbx_agentsession", "pbx_agentpause"):
            cursor.execute(f"VACUUM ANALYZE {table}")


if __name__ == "__main__":
    main()
