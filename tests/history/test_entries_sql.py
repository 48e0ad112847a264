"""PostgreSQL's set-based derivation (entries_sql) gives exactly what entries.derive gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pbx.directory.agent_matching import AgentDirectory
from pbx.history.ingest import derive, entries
from pbx.history.ingest.runner import FileIngest, cdr_time_zone
from pbx.models import DEFAULT_PBX
from pbx.models.history import ENTRY_EVENTS, QueueEntry, QueueLogFile, QueueLogLine
from tests.conftest import fixtures_path

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="entries_sql is PostgreSQL's derivation"
    ),
]

FIELDS = (
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
)
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def stored_entries() -> list[tuple]:
    return sorted(QueueEntry.objects.values_list(*FIELDS), key=repr)


def both_ways(callids: set[str], directory: AgentDirectory) -> tuple[list, list]:
    """(SQL's entries, Python's entries) of these calls, each derived from the stored lines."""
    derive._entries(sorted(callids), directory, DEFAULT_PBX)
    by_sql = stored_entries()
    entries.rederive(callids, directory=directory, pbx=DEFAULT_PBX)
    return by_sql, stored_entries()


# Fields as queue_log has them; now and then one int() reads but the SQL leaves to Python
# (" 7", "+7", "1_0", "٣"): one such field sends its whole call to entries.derive.
FIELD = st.sampled_from(
    ["", "0", "3", "15", "120", "-1", "x", "ctx", "600123123"] * 12
    + ["-0", " 7", "+7", "1_0", "٣", "4.5"]
)
DATA = st.lists(FIELD, min_size=0, max_size=6)
LINE = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["q1", "q2"]),
    st.integers(0, 40),  # seconds after START: many lines share a second
    st.sampled_from([*ENTRY_EVENTS, "RINGNOANSWER"]),
    st.sampled_from(["", "NONE", "SIP/201", "Ana"]),
    DATA,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(LINE, min_size=1, max_size=25))
def test_it_agrees_with_derive_on_any_lines(lines, company, make_user, make_queue):
    QueueEntry.objects.all().delete()
    QueueLogLine.objects.all().delete()
    if not QueueLogFile.objects.exists():
        make_queue(company, "q1")
        make_user(company, "201", "Ana", terminals=["SIP/201"])
    logfile = QueueLogFile.objects.create(fingerprint="generated", fingerprint_length=1)
    QueueLogLine.objects.bulk_create(
        QueueLogLine(
            file=logfile,
            number=number,
            time=START + timedelta(seconds=second),
            callid=callid,
            queue_name=queue,
            agent=agent,
            event=event,
            data="|".join(data),
        )
        for number, (callid, queue, second, event, agent, data) in enumerate(lines, 1)
    )
    callids = {line[0] for line in lines}
    by_sql, by_python = both_ways(callids, AgentDirectory.load())
    assert by_sql == by_python
    event(f"outcomes {sorted({row[9] for row in by_sql})}")


@pytest.mark.parametrize(
    "name",
    [
        "issabel_synkbug_queue_log-20220801.txt",
        "asterisk2slack_fixture_queue_log_membernames.txt",
        "asterisk_book_3rd_ed_sample_queue_log_partial.txt",
        "loway_blog_2007_missing_exit_events_ast12era.txt",
        "wazo_doc_xivo_queue_log_psql_table_rows.txt",
    ],
)
def test_it_agrees_with_derive_on_the_real_files(name, company, make_user, make_queue):
    make_queue(company, "500")
    make_user(company, "1001", "Sathish", terminals=["SIP/1001"])
    FileIngest(
        path=fixtures_path("queue_log", name), kind="queue_log", time_zone=cdr_time_zone("UTC")
    ).run()
    callids = set(QueueLogLine.objects.values_list("callid", flat=True))
    first = stored_entries()
    by_sql, by_python = both_ways(callids, AgentDirectory.load())
    assert first == by_sql == by_python
    assert by_sql


def test_irregular_numbers_are_left_to_derive(company):
    """ " 7" is 7 for int(); the SQL reads plain digits only and hands such calls to Python."""
    logfile = QueueLogFile.objects.create(fingerprint="x", fingerprint_length=1)
    rows = [
        ("ENTERQUEUE", "|600|1", 0),
        ("CONNECT", " 7|1.2|3", 7),
        ("COMPLETECALLER", "+7|1_0|1", 17),
    ]
    QueueLogLine.objects.bulk_create(
        QueueLogLine(
            file=logfile,
            number=n,
            time=START + timedelta(seconds=at),
            callid="9.1",
            queue_name="q",
            agent="SIP/1",
            event=event,
            data=data,
        )
        for n, (event, data, at) in enumerate(rows, 1)
    )
    derive._entries(["9.1"], AgentDirectory.load(), DEFAULT_PBX)
    entry = QueueEntry.objects.get()
    assert (entry.wait_seconds, entry.talk_seconds) == (7, 10)
