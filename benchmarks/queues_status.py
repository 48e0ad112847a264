"""queues-status over a day of 100,000 queue entries: p50/p99 of the selector and of the endpoint.

Run: .venv/bin/python benchmarks/queues_status.py   (BENCH_SERVER_URL, BENCH_DATABASE)
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from _setup import setup

ENTRIES = 100_000
QUEUES = 40
RUNS = 300


def main() -> None:
    setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from pbx.directory.api_keys import ApiClient
    from pbx.history import selectors as history
    from pbx.models import ApiKey, Company, PbxUser, Queue, QueueCallerState, QueueMemberState
    from pbx.models.history import QueueEntry

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pbx_queueentry, pbx_queuecallerstate, pbx_queuememberstate, pbx_queue, "
            "pbx_pbxuser, pbx_apikey, pbx_company CASCADE"
        )
    company = Company.objects.create(slug="bench", name="Bench", time_zone="Europe/Madrid")
    queues = [Queue(company=company, name=f"q{n:02d}") for n in range(QUEUES)]
    Queue.objects.bulk_create(queues)
    users = PbxUser.objects.bulk_create(
        [PbxUser(company=company, extension=str(200 + n), name=f"U{n}") for n in range(100)]
    )
    now = datetime.now(UTC)
    day_start, _ = history.day_bounds(company.time_zone, now)
    span = max(1, int((now - day_start).total_seconds()))
    rng = random.Random(7)
    outcomes = ["answered"] * 7 + ["abandoned", "timeout", "transferred"]
    rows = []
    for n in range(ENTRIES):
        outcome = rng.choice(outcomes)
        rows.append(
            QueueEntry(
                callid=f"{n}.1",
                queue_name=f"q{rng.randrange(QUEUES):02d}",
                company=company,
                entered_at=day_start + timedelta(seconds=rng.randrange(span)),
                outcome=outcome,
                wait_seconds=rng.randrange(90),
                talk_seconds=rng.randrange(600) if outcome != "abandoned" else 0,
                agent_user=rng.choice(users) if outcome != "abandoned" else None,
            )
        )
    QueueEntry.objects.bulk_create(rows, batch_size=5000)
    QueueCallerState.objects.bulk_create(
        [
            QueueCallerState(
                queue_name=f"q{n % QUEUES:02d}", unique_id=f"c{n}", entered_at=now, confirmed_at=now
            )
            for n in range(60)
        ]
    )
    QueueMemberState.objects.bulk_create(
        [
            QueueMemberState(
                queue_name=f"q{n % QUEUES:02d}",
                interface=f"PJSIP/{200 + n}",
                user=users[n],
                changed_at=now,
                confirmed_at=now,
            )
            for n in range(100)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE pbx_queueentry")
    groups = {f"g{g}": [f"q{n:02d}" for n in range(g * 4, g * 4 + 4)] for g in range(QUEUES // 4)}
    client = ApiClient(key=ApiKey(name="bench"), company_ids=None)

    def timed(call) -> list[float]:
        for _ in range(10):
            call()
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    selector = timed(lambda: history.queues_status(client=client, groups=groups))
    key = ApiKey(name="bench", all_companies=True)
    raw = key.set_new_key()
    key.save()
    http = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    params = {f"queues[{g}][]": names for g, names in groups.items()}
    with override_settings(ALLOWED_HOSTS=["testserver"]):  # RUNS stays under the throttle rate
        endpoint = timed(lambda: http.get("/queues-status", params))
    for name, samples in (("selector", selector), ("endpoint (HTTP, auth, envelope)", endpoint)):
        quantiles = statistics.quantiles(samples, n=100)
        print(
            f"queues-status {name}: {ENTRIES:,} entries today, {QUEUES} queues in "
            f"{len(groups)} groups, {RUNS} runs: p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms"
        )


if __name__ == "__main__":
    main()
