"""Migration 0023: the lines stored before it get their blocks' times, so restarts find them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from pbx.history.ingest.lines import last_lines_before
from pbx.models import DEFAULT_PBX, LINES_PER_BLOCK, QueueLogBlockTimes
from tests.history.migrating import migrate

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")
BEFORE = [("pbx", "0022_agent_spans_pending_without_constraint")]
AFTER = [("pbx", "0023_queue_log_block_times")]
T1 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _time_indexes() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "pbx_queuelogline")
    return {name for name, info in constraints.items() if info["columns"] == ["time"]}


@pytest.mark.django_db(transaction=True)
def test_lines_stored_before_give_their_blocks_times_and_going_back_indexes_time_again():
    old = migrate(BEFORE)
    logfile = old.get_model("pbx", "QueueLogFile").objects.create(
        fingerprint="f" * 64, fingerprint_length=1024, lines=3 * LINES_PER_BLOCK
    )
    # Block 0 holds a late day, block 2 an early one: stored out of order.
    numbers_and_times = [
        (1, T1 + timedelta(days=2)),
        (LINES_PER_BLOCK, T1 + timedelta(days=3)),
        (2 * LINES_PER_BLOCK + 5, T1),
        (2 * LINES_PER_BLOCK + 6, T1 + timedelta(hours=1)),
    ]
    old.get_model("pbx", "QueueLogLine").objects.bulk_create(
        old.get_model("pbx", "QueueLogLine")(
            file=logfile,
            number=number,
            time=moment,
            callid=f"c{number}",
            queue_name="q",
            agent="",
            event="ENTERQUEUE",
        )
        for number, moment in numbers_and_times
    )

    migrate(AFTER)

    blocks = QueueLogBlockTimes.objects.order_by("block").values_list("block", "earliest", "latest")
    assert list(blocks) == [
        (0, T1 + timedelta(days=2), T1 + timedelta(days=3)),
        (2, T1, T1 + timedelta(hours=1)),
    ]
    moments = [
        T1,
        T1 + timedelta(minutes=30),
        T1 + timedelta(days=2, hours=1),
        T1 + timedelta(days=9),
    ]
    assert last_lines_before(moments, pbx=DEFAULT_PBX) == {
        T1: None,
        T1 + timedelta(minutes=30): T1,
        T1 + timedelta(days=2, hours=1): T1 + timedelta(days=2),
        T1 + timedelta(days=9): T1 + timedelta(days=3),
    }
    assert not _time_indexes()

    migrate(BEFORE)
    assert _time_indexes()
