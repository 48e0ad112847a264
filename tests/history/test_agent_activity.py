"""Agent lines and login/pause spans derived at ingest (pbx.history.ingest.agent_activity)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection, connections

from pbx.directory.agent_matching import AgentDirectory
from pbx.history.ingest import agent_activity, background, derive
from pbx.history.ingest.runner import FileIngest, cdr_time_zone
from pbx.models import (
    DEFAULT_PBX,
    AgentEvent,
    AgentPause,
    AgentSession,
    AgentSpansPending,
    IngestCursor,
    PbxUser,
)
from tests.conftest import fixtures_path
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db

SYNKBUG = ("queue_log", "issabel_synkbug_queue_log-20220801.txt")
BOOK = ("queue_log", "asterisk_book_3rd_ed_sample_queue_log_partial.txt")
WAZO = ("queue_log", "wazo_doc_xivo_queue_log_psql_table_rows.txt")


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def write(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def spans(model, user) -> list[tuple]:
    rows = model.objects.filter(agent_user=user).order_by("started_at")
    if model is AgentPause:
        return [(r.started_at, r.ended_at, r.reason) for r in rows]
    return [(r.started_at, r.ended_at) for r in rows]


def raw_sessions(path: Path, agent: str) -> list[tuple[int, int]]:
    """The test's own reading of a sorted, one-queue file: ADDMEMBER opens, REMOVEMEMBER closes,
    QUEUESTART closes at the time of the line before it."""
    found, opened, previous = [], None, None
    for raw in path.read_bytes().replace(b"\x00", b"").decode().splitlines():
        fields = raw.split("|")
        if len(fields) < 5 or not fields[0].isdigit():
            continue
        epoch, event = int(fields[0]), fields[4]
        if event == "QUEUESTART" and opened is not None:
            found.append((opened, previous))
            opened = None
        elif fields[3] == agent and event == "ADDMEMBER" and opened is None:
            opened = epoch
        elif fields[3] == agent and event == "REMOVEMEMBER" and opened is not None:
            found.append((opened, epoch))
            opened = None
        previous = epoch
    return [(start, end) for start, end in found if end > start]


def test_the_issabel_file_gives_the_sessions_of_its_adds_and_removes(
    ingest, company, make_user, make_queue
):
    path = fixtures_path(*SYNKBUG)
    sathish = make_user(company, "1001", "Sathish", terminals=["SIP/1001"])
    make_queue(company, "500")

    ingest("ingest_queue_log", path)

    # 35 ADDMEMBER, 35 REMOVEMEMBER, 35 UNPAUSE, 35 UNPAUSEALL, 1 RINGNOANSWER, 29 QUEUESTART
    # (grep -a -c '|EVENT|'): all kept, the member lines matched to Sathish by interface
    # (SIP/1001) and the pause and ring lines by member name (Sathish).
    assert AgentEvent.objects.count() == 170
    assert AgentEvent.objects.filter(agent_user=sathish).count() == 141
    assert AgentEvent.objects.filter(event="QUEUESTART", agent_user__isnull=True).count() == 29
    expected = raw_sessions(path, "SIP/1001")
    # The ADDMEMBER of 07-30 12:41:46 is the last line before the restart of 08-01 04:50:08:
    # its session ends where it began, and the REMOVEMEMBER after the restart closes nothing.
    assert len(expected) == 34
    assert spans(AgentSession, sathish) == [(at(s), at(e)) for s, e in expected]
    assert AgentPause.objects.count() == 0  # only UNPAUSE lines: never paused
    # awk: ADDMEMBER opens, REMOVEMEMBER adds $1 - open, QUEUESTART forgets the open one → 44221
    assert sum((e - s) for s, e in expected) == 44_221


def test_reading_the_file_again_adds_nothing(ingest, company, make_user, make_queue):
    path = fixtures_path(*SYNKBUG)
    sathish = make_user(company, "1001", "Sathish", terminals=["SIP/1001"])
    make_queue(company, "500")
    ingest("ingest_queue_log", path)
    before = spans(AgentSession, sathish)
    IngestCursor.objects.all().delete()

    ingest("ingest_queue_log", path)

    assert AgentEvent.objects.count() == 170
    assert spans(AgentSession, sathish) == before


def test_a_member_of_two_queues_is_logged_in_once(ingest, company, make_user, make_queue):
    agent = make_user(company, "9990", terminals=[])  # matched by the extension in Local/9990@…
    ringer = make_user(company, "9996", terminals=[])
    make_queue(company, "7100")
    make_queue(company, "7200")

    ingest("ingest_queue_log", fixtures_path(*BOOK))

    # REMOVEMEMBER of both queues at 1292284222 closes nothing (no ADDMEMBER before it); both
    # ADDMEMBER at 1292284491 and both REMOVEMEMBER at 1292284552: one span of 61 s.
    assert spans(AgentSession, agent) == [(at(1292284491), at(1292284552))]
    assert AgentEvent.objects.filter(agent_user=ringer, event="RINGNOANSWER").count() == 2


def test_chan_agent_callback_logins_make_sessions(ingest, company, make_user, make_queue):
    agent = make_user(company, "3001", terminals=["Agent/3001"])
    make_queue(company, "q1")

    ingest("ingest_queue_log", fixtures_path(*WAZO), time_zone="UTC")

    # AGENTCALLBACKLOGIN 15:27:23.896208, AGENTCALLBACKLOGOFF 15:28:06.249357 with logintime 43
    # (whole seconds of Asterisk's clock: 23 → 06).
    [(start, end)] = spans(AgentSession, agent)
    assert start == datetime(2012, 7, 3, 15, 27, 23, 896208, tzinfo=UTC)
    assert end == datetime(2012, 7, 3, 15, 28, 6, 249357, tzinfo=UTC)
    assert abs((end - start).total_seconds() - 43) < 1


@pytest.fixture
def agent(company, make_user, make_queue):
    user = make_user(company, "201", "Ana")
    make_queue(company, "q1")
    make_queue(company, "q2")
    return user


def run(path: Path, batch_size: int = 10_000) -> None:
    FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone(), batch_size=batch_size).run()


def test_pauses_by_reason_with_all_forms_and_per_queue_lines(agent, tmp_path):
    path = tmp_path / "queue_log"
    write(
        path,
        "1700000000|MANAGER|q1|PJSIP/201|ADDMEMBER|",
        "1700000000|MANAGER|q2|PJSIP/201|ADDMEMBER|",
        # Asterisk's QueuePause without a queue: PAUSEALL, then PAUSE in each queue
        "1700000100|NONE|NONE|Ana|PAUSEALL|Descanso",
        "1700000100|NONE|q1|Ana|PAUSE|Descanso",
        "1700000100|NONE|q2|Ana|PAUSE|Descanso",
        "1700000400|NONE|NONE|Ana|UNPAUSEALL|",
        "1700000400|NONE|q1|Ana|UNPAUSE|",
        "1700000400|NONE|q2|Ana|UNPAUSE|",
        # paused in one queue, then in the other with another reason, unpaused one at a time
        "1700001000|NONE|q1|Ana|PAUSE|Comida",
        "1700001600|NONE|q2|Ana|PAUSE|Reunión",
        "1700002000|NONE|q1|Ana|UNPAUSE|",
        "1700002300|NONE|q2|Ana|UNPAUSE|",
        # a pause without a reason, then leaving every queue while paused
        "1700003000|NONE|NONE|Ana|PAUSEALL|",
        "1700003060|MANAGER|q1|PJSIP/201|REMOVEMEMBER|",
        "1700003090|MANAGER|q2|PJSIP/201|REMOVEMEMBER|",
    )

    run(path)

    assert spans(AgentSession, agent) == [(at(1700000000), at(1700003090))]
    assert spans(AgentPause, agent) == [
        (at(1700000100), at(1700000400), "Descanso"),
        (at(1700001000), at(1700001600), "Comida"),
        (at(1700001600), at(1700002300), "Reunión"),
        (at(1700003000), at(1700003090), ""),
    ]


def test_a_member_added_paused_is_paused_from_then(agent, tmp_path):
    """Recent Asterisk writes ADDMEMBER|PAUSED and no PAUSE line (FORMATS.md)."""
    path = tmp_path / "queue_log"
    write(
        path,
        "1700000000|MANAGER|q1|PJSIP/201|ADDMEMBER|PAUSED",
        "1700000600|NONE|q1|PJSIP/201|UNPAUSE|",
        "1700001000|MANAGER|q2|PJSIP/201|ADDMEMBER|",
        "1700001200|MANAGER|q3|PJSIP/201|ADDMEMBER|paused",
        "1700001500|NONE|q3|PJSIP/201|UNPAUSE|",
        "1700002000|MANAGER|q1|PJSIP/201|REMOVEMEMBER|",
        "1700002000|MANAGER|q2|PJSIP/201|REMOVEMEMBER|",
        "1700002000|MANAGER|q3|PJSIP/201|REMOVEMEMBER|",
    )

    run(path)

    assert spans(AgentSession, agent) == [(at(1700000000), at(1700002000))]
    assert spans(AgentPause, agent) == [
        (at(1700000000), at(1700000600), ""),
        (at(1700001200), at(1700001500), ""),
    ]


def test_a_session_open_at_the_end_of_a_batch_is_closed_by_a_later_one(agent, tmp_path):
    path = tmp_path / "queue_log"
    write(
        path,
        "1700000000|MANAGER|q1|PJSIP/201|ADDMEMBER|",
        "1700000050|NONE|q1|Ana|PAUSE|Descanso",
    )
    run(path)
    assert spans(AgentSession, agent) == [(at(1700000000), None)]
    assert spans(AgentPause, agent) == [(at(1700000050), None, "Descanso")]

    write(
        path,
        "1700000070|MANAGER|q2|PJSIP/201|ADDMEMBER|",
        "1700000090|NONE|q1|Ana|UNPAUSE|",
    )
    run(path)
    write(path, "1700000200|MANAGER|q1|PJSIP/201|REMOVEMEMBER|")
    run(path)
    write(path, "1700000300|MANAGER|q2|PJSIP/201|REMOVEMEMBER|")
    run(path)

    assert spans(AgentSession, agent) == [(at(1700000000), at(1700000300))]
    assert spans(AgentPause, agent) == [(at(1700000050), at(1700000090), "Descanso")]


LINES = [
    "1700000000|MANAGER|q1|PJSIP/201|ADDMEMBER|",
    "1700000010|1.1|q1|NONE|ENTERQUEUE||600|1",
    "1700000020|NONE|q1|Ana|PAUSE|Descanso",
    "1700000080|NONE|q1|Ana|UNPAUSE|",
    # re-login in one second: logged in throughout
    "1700000100|MANAGER|q1|PJSIP/201|REMOVEMEMBER|",
    "1700000100|MANAGER|q1|PJSIP/201|ADDMEMBER|",
    # a login of no length: ADDMEMBER and REMOVEMEMBER in one second
    "1700000500|MANAGER|q1|PJSIP/201|REMOVEMEMBER|",
    "1700000600|MANAGER|q2|PJSIP/201|ADDMEMBER|",
    "1700000600|MANAGER|q2|PJSIP/201|REMOVEMEMBER|",
    "1700000700|MANAGER|q2|PJSIP/201|ADDMEMBER|",
    "1700000750|NONE|q2|Ana|PAUSE|Descanso",
    "1700000800|1.2|q2|NONE|ENTERQUEUE||601|1",
    "1700000900|NONE|NONE|NONE|QUEUESTART|",
    "1700000950|MANAGER|q2|PJSIP/201|REMOVEMEMBER|",
]
EXPECTED_SESSIONS = [
    (at(1700000000), at(1700000500)),
    # the restart ends it at the last line before it (the caller entering at 800)
    (at(1700000700), at(1700000800)),
]
EXPECTED_PAUSES = [
    (at(1700000020), at(1700000080), "Descanso"),
    (at(1700000750), at(1700000800), "Descanso"),
]


def test_lines_of_one_second_and_restarts(agent, tmp_path):
    path = tmp_path / "queue_log"
    write(path, *LINES)
    run(path)
    assert spans(AgentSession, agent) == EXPECTED_SESSIONS
    assert spans(AgentPause, agent) == EXPECTED_PAUSES


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_any_order_of_lines_and_batches_gives_the_same_spans(agent, tmp_path, order):
    path = tmp_path / "queue_log"
    lines = LINES[::-1] if order == "reversed" else LINES[1::2] + LINES[::2]
    write(path, *lines)
    run(path, batch_size=3)
    assert spans(AgentSession, agent) == EXPECTED_SESSIONS
    assert spans(AgentPause, agent) == EXPECTED_PAUSES


def test_a_restart_read_after_the_session_closes_it(agent, tmp_path):
    first, second = tmp_path / "queue_log", tmp_path / "queue_log-older"
    write(
        first,
        "1700000000|MANAGER|q1|PJSIP/201|ADDMEMBER|",
        "1700000100|1.1|q1|NONE|ENTERQUEUE||600|1",
        "1700005000|MANAGER|q1|PJSIP/201|REMOVEMEMBER|",
    )
    run(first)
    assert spans(AgentSession, agent) == [(at(1700000000), at(1700005000))]

    write(second, "1700000200|NONE|NONE|NONE|QUEUESTART|")
    run(second)

    assert spans(AgentSession, agent) == [(at(1700000000), at(1700000100))]


def test_lines_of_unknown_agents_are_kept_without_spans(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000000|MANAGER|q9|SIP/999|ADDMEMBER|", "1700000100|NONE|q9|x|PAUSE|")
    run(path)
    assert AgentEvent.objects.filter(agent_user__isnull=True).count() == 2
    assert not AgentSession.objects.exists()
    assert not AgentPause.objects.exists()


def store_only(path: Path, monkeypatch) -> None:
    """The lines stored, nothing derived (what a bulk read's background deriver then derives)."""
    with monkeypatch.context() as patch:
        patch.setattr(FileIngest, "_derive", lambda self: None)
        patch.setattr(FileIngest, "_derive_soon", lambda self, logfile: None)
        run(path)


def derive_leaving_spans_pending() -> None:
    for logfile in derive.pending_files(DEFAULT_PBX):
        derive.derive_pending(logfile, directory=AgentDirectory.load(DEFAULT_PBX), spans=False)


def test_spans_left_pending_are_derived_once_with_every_line_read(agent, tmp_path, monkeypatch):
    """A bulk read derives each stretch's agent lines as it goes and their spans together: a
    restart then ends a session at the last line before it of all the lines read, as a sorted
    file gives, even when that line was read in a later stretch."""
    path = tmp_path / "queue_log"
    write(
        path,
        "1700000000|MANAGER|q1|PJSIP/201|ADDMEMBER|",
        "1700000100|NONE|NONE|NONE|CONFIGRELOAD|",
        "1700000900|NONE|NONE|NONE|QUEUESTART|",
    )
    store_only(path, monkeypatch)
    derive_leaving_spans_pending()
    assert AgentEvent.objects.count() == 2
    assert not AgentSession.objects.exists()
    assert list(AgentSpansPending.objects.values_list("agent_user", "since")) == [
        (agent.pk, at(1700000000))
    ]

    write(path, "1700000800|1.2|q1|NONE|ENTERQUEUE||601|1")  # written before the restart
    store_only(path, monkeypatch)
    derive_leaving_spans_pending()
    derive.derive_pending_spans(DEFAULT_PBX)

    assert spans(AgentSession, agent) == [(at(1700000000), at(1700000800))]
    assert not AgentSpansPending.objects.exists()
    derive.derive_pending_spans(DEFAULT_PBX)  # nothing pending: nothing changes
    assert spans(AgentSession, agent) == [(at(1700000000), at(1700000800))]


def test_spans_a_crash_left_pending_are_derived_by_the_next_run(agent, tmp_path, monkeypatch):
    path = tmp_path / "queue_log"
    write(path, *LINES)
    store_only(path, monkeypatch)
    derive_leaving_spans_pending()  # then the process died before the span pass
    assert not AgentSession.objects.exists()

    run(path)  # nothing new to read

    assert spans(AgentSession, agent) == EXPECTED_SESSIONS
    assert spans(AgentPause, agent) == EXPECTED_PAUSES
    assert not AgentSpansPending.objects.exists()


def test_a_user_deleted_after_the_directory_was_loaded_is_not_left_pending(
    agent, tmp_path, monkeypatch
):
    """The background deriver loads the directory once per read: its lines still name a user
    the admin deleted meanwhile, and the stretch is derived all the same."""
    path = tmp_path / "queue_log"
    write(path, *LINES)
    store_only(path, monkeypatch)
    directory = AgentDirectory.load(DEFAULT_PBX)
    agent.delete()

    for logfile in derive.pending_files(DEFAULT_PBX):
        derive.derive_pending(logfile, directory=directory, spans=False)

    assert AgentEvent.objects.filter(event="ADDMEMBER").exists()
    assert not AgentSpansPending.objects.exists()
    assert not derive.pending_files(DEFAULT_PBX)


def test_pending_spans_of_a_deleted_user_are_dropped_by_the_next_pass(agent, tmp_path, monkeypatch):
    path = tmp_path / "queue_log"
    write(path, *LINES)
    store_only(path, monkeypatch)
    derive_leaving_spans_pending()
    agent.delete()  # touches no pending row: the span pass locks those last

    assert AgentSpansPending.objects.exists()
    derive.derive_pending_spans(DEFAULT_PBX)
    assert not AgentSpansPending.objects.exists()
    assert not AgentSession.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second connection: PostgreSQL")
def test_a_user_deleted_before_its_stretch_commits_fails_nothing(agent, tmp_path, monkeypatch):
    """The admin deletes the user, on its own connection, after the stretch checked it and before
    the stretch commits: its pending row names no one, and no constraint fails the stretch."""
    path = tmp_path / "queue_log"
    write(path, *LINES)
    store_only(path, monkeypatch)
    leave_pending = agent_activity._leave_pending

    def admin_deletes_the_user() -> None:
        try:
            PbxUser.objects.filter(pk=agent.pk).delete()
        finally:
            connections.close_all()

    def then_deleted(since, pbx):
        leave_pending(since, pbx)
        admin = threading.Thread(target=admin_deletes_the_user)
        admin.start()
        admin.join()

    monkeypatch.setattr(agent_activity, "_leave_pending", then_deleted)
    derive_leaving_spans_pending()

    assert not PbxUser.objects.filter(pk=agent.pk).exists()
    assert AgentSpansPending.objects.filter(agent_user_id=agent.pk).exists()
    assert not derive.pending_files(DEFAULT_PBX)
    derive.derive_pending_spans(DEFAULT_PBX)
    assert not AgentSpansPending.objects.exists()
    assert not AgentSession.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second connection: PostgreSQL")
@pytest.mark.parametrize("spans_every", [1_000_000, 4])
def test_the_background_deriver_derives_the_spans_it_left_pending(
    agent, tmp_path, monkeypatch, spans_every
):
    """Several stretches, lines out of order: the spans of a plain run, and nothing left pending,
    whether the span pass runs once at the end or after every few lines too."""
    monkeypatch.setattr(background, "SPANS_EVERY", spans_every)
    path = tmp_path / "queue_log"
    write(path, *(LINES[1::2] + LINES[::2]))
    FileIngest(
        path=path, kind="queue_log", time_zone=cdr_time_zone(), batch_size=2, derive_every=2
    ).run()

    assert spans(AgentSession, agent) == EXPECTED_SESSIONS
    assert spans(AgentPause, agent) == EXPECTED_PAUSES
    assert not AgentSpansPending.objects.exists()


def count_span_passes(monkeypatch) -> list[str]:
    """The PBXes of the span passes run, each once it has committed."""
    passes: list[str] = []
    span_pass = derive.derive_pending_spans

    def counted(pbx: str) -> None:
        span_pass(pbx)
        passes.append(pbx)

    monkeypatch.setattr(derive, "derive_pending_spans", counted)
    return passes


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second connection: PostgreSQL")
@pytest.mark.parametrize(("spans_every", "passes_before_finishing"), [(1_000_000, 0), (4, 1)])
def test_the_background_deriver_runs_a_span_pass_once_enough_lines_are_derived(
    agent, tmp_path, monkeypatch, spans_every, passes_before_finishing
):
    monkeypatch.setattr(background, "SPANS_EVERY", spans_every)
    passes = count_span_passes(monkeypatch)
    path = tmp_path / "queue_log"
    write(path, *LINES)  # more than 4 lines
    store_only(path, monkeypatch)

    deriver = background.BackgroundDeriver(AgentDirectory.load(DEFAULT_PBX), pbx=DEFAULT_PBX)
    try:
        deriver.poke()
        if passes_before_finishing:
            assert wait_until(lambda: passes, timeout=30)
            assert spans(AgentSession, agent) == EXPECTED_SESSIONS
        else:
            assert wait_until(lambda: not derive.pending_files(DEFAULT_PBX), timeout=30)
            assert AgentSpansPending.objects.exists()
        assert passes == [DEFAULT_PBX] * passes_before_finishing
    finally:
        deriver.finish()
    assert spans(AgentSession, agent) == EXPECTED_SESSIONS
    assert not AgentSpansPending.objects.exists()
