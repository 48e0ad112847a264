"""Many PBXes behind one SWAN (issue 15): history is keyed per PBX, ingested per PBX source, and
read per company's PBX. Two companies on two PBXes both have queue q-ventas (and 500) and
extension 201 (and 1001); the same files read for both PBXes stay two PBXes' rows."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError
from django.utils import timezone

from pbx.directory.api_keys import CompanyScope
from pbx.gateway.frames import Frame
from pbx.history import selectors as history
from pbx.live.state_tables import LiveState
from pbx.models import (
    DEFAULT_PBX,
    AgentEvent,
    AgentSession,
    LiveChannel,
    Pbx,
    QueueCallerState,
    QueueMemberState,
)
from pbx.models.history import CdrRecord, IngestCursor, QueueEntry, QueueLogFile, QueueLogLine
from tests.conftest import fixtures_path
from tests.envelope import error, result
from tests.pbx_events import apply_frames

pytestmark = pytest.mark.django_db

SYNKBUG = ("queue_log", "issabel_synkbug_queue_log-20220801.txt")
SYNKBUG_CDR = ("cdr", "issabel_synkbug_cdr_csv_Master_18col_utc.csv")
T0 = 1_700_000_000


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def write(path: Path, *lines: str) -> Path:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    return path


@pytest.fixture
def pbx_b(db):
    return Pbx.objects.create(
        name="pbx-b", host="127.0.0.1", username="swan", secret_env="SWAN_PBX_TEST_B"
    )


@pytest.fixture
def two(make_company, make_user, make_queue, pbx_b):
    """ACME on the settings' PBX and BRAVO on pbx-b, alike: q-ventas and 500, 201 and 1001."""
    sides = {}
    for key, slug, pbx in ((DEFAULT_PBX, "acme", None), ("pbx-b", "bravo", pbx_b)):
        company = make_company(slug=slug, name=slug.upper(), pbx=pbx, time_zone="UTC")
        ana = make_user(company, "201", "Ana", terminals=["PJSIP/201"])
        sathish = make_user(company, "1001", "Sathish", terminals=["SIP/1001"])
        karthik = make_user(company, "1000", "karthik", terminals=["SIP/1000"])
        ventas = make_queue(company, "q-ventas", members=[ana])
        q500 = make_queue(company, "500", members=[sathish])
        sides[key] = {
            "company": company,
            "ana": ana,
            "sathish": sathish,
            "karthik": karthik,
            "ventas": ventas,
            "500": q500,
        }
    return sides


def test_the_two_companies_queues_have_one_name_on_two_pbxes(two):
    assert two[DEFAULT_PBX]["ventas"].pbx == DEFAULT_PBX
    assert two["pbx-b"]["ventas"].pbx == "pbx-b"


# ingest_queue_log --pbx


def test_one_queue_log_read_for_two_pbxes_is_each_pbxs_own(ingest, two, tmp_path):
    path = tmp_path / "queue_log"
    shutil.copy(fixtures_path(*SYNKBUG), path)

    out_a, err_a = ingest("ingest_queue_log", path)
    out_b, err_b = ingest("ingest_queue_log", path, pbx="pbx-b")

    # The same path is two sources: a cursor and a stored file per PBX, all lines each.
    for out in (out_a, out_b):
        assert "543 lines read, 543 new, 0 already stored" in out
    assert f"pbx=default {path}:" in out_a
    assert f"pbx=pbx-b {path}:" in out_b
    assert (err_a, err_b) == ("", "")
    assert set(IngestCursor.objects.values_list("pbx", "source")) == {
        (DEFAULT_PBX, str(path.resolve())),
        ("pbx-b", str(path.resolve())),
    }
    assert sorted(QueueLogFile.objects.values_list("pbx", "lines")) == [
        (DEFAULT_PBX, 543),
        ("pbx-b", 543),
    ]
    assert QueueLogLine.objects.count() == 2 * 543
    for key, side in two.items():
        entries = QueueEntry.objects.filter(pbx=key)
        assert entries.count() == 30
        assert set(entries.values_list("company", "queue")) == {
            (side["company"].pk, side["500"].pk)
        }
        # "Sathish" answered three calls: on each PBX, that PBX's Sathish.
        assert set(entries.filter(outcome="answered").values_list("agent_user", flat=True)) == {
            side["sathish"].pk
        }
    # The same callid on two PBXes: two calls.
    assert QueueEntry.objects.filter(callid="1658814295.0").count() == 2


def test_reading_again_adds_nothing_on_either_pbx(ingest, two, tmp_path):
    path = tmp_path / "queue_log"
    shutil.copy(fixtures_path(*SYNKBUG), path)
    ingest("ingest_queue_log", path)
    ingest("ingest_queue_log", path, pbx="pbx-b")
    IngestCursor.objects.filter(pbx="pbx-b").delete()  # B's offset lost: its lines must not repeat

    out_a, _ = ingest("ingest_queue_log", path)
    out_b, _ = ingest("ingest_queue_log", path, pbx="pbx-b")

    assert "0 lines read, 0 new" in out_a  # A's cursor: nothing new
    assert "543 lines read, 0 new, 543 already stored" in out_b  # B's file, recognised as B's
    assert QueueLogLine.objects.count() == 2 * 543
    assert QueueEntry.objects.filter(pbx=DEFAULT_PBX).count() == 30
    assert QueueEntry.objects.filter(pbx="pbx-b").count() == 30


def test_a_call_whose_lines_are_on_two_pbxes_is_two_calls(ingest, two, tmp_path):
    """ENTERQUEUE on A and CONNECT with the same callid on B never make one entry."""
    a = write(tmp_path / "a", f"{T0}|7.1|q-ventas|NONE|ENTERQUEUE||600111222|1")
    b = write(
        tmp_path / "b",
        f"{T0 + 8}|7.1|q-ventas|PJSIP/201|CONNECT|8|7.2|3",
        f"{T0 + 68}|7.1|q-ventas|PJSIP/201|COMPLETECALLER|8|60|1",
    )

    ingest("ingest_queue_log", a)
    ingest("ingest_queue_log", b, pbx="pbx-b")

    on_a = QueueEntry.objects.get(pbx=DEFAULT_PBX)
    assert (on_a.outcome, on_a.company, on_a.caller) == (
        "waiting",
        two[DEFAULT_PBX]["company"],
        "600111222",
    )
    assert on_a.agent_user is None
    on_b = QueueEntry.objects.get(pbx="pbx-b")
    assert (on_b.outcome, on_b.company, on_b.agent_user) == (
        "answered",
        two["pbx-b"]["company"],
        two["pbx-b"]["ana"],
    )
    assert on_b.caller == ""  # its ENTERQUEUE is A's
    assert on_b.entered_at == at(T0)  # dated back by its own wait: 8 s before CONNECT

    # More of A's lines re-derive A's call alone.
    write(a, f"{T0 + 30}|7.1|q-ventas|NONE|ABANDON|1|1|30")
    ingest("ingest_queue_log", a)
    assert QueueEntry.objects.get(pbx=DEFAULT_PBX).outcome == "abandoned"
    assert QueueEntry.objects.get(pbx="pbx-b").outcome == "answered"


def test_a_restart_ends_only_the_spans_of_its_own_pbx(ingest, two, tmp_path):
    a = write(
        tmp_path / "a",
        f"{T0}|MANAGER|q-ventas|PJSIP/201|ADDMEMBER|",
        f"{T0 + 590}|1.1|q-ventas|NONE|ENTERQUEUE||600|1",  # A is alive later than B
    )
    b = write(
        tmp_path / "b",
        f"{T0}|MANAGER|q-ventas|PJSIP/201|ADDMEMBER|",
        f"{T0 + 100}|2.1|q-ventas|NONE|ENTERQUEUE||600|1",  # B's last sign of life
        f"{T0 + 600}|NONE|NONE|NONE|QUEUESTART|",
    )

    ingest("ingest_queue_log", a)
    ingest("ingest_queue_log", b, pbx="pbx-b")

    assert list(AgentEvent.objects.filter(event="QUEUESTART").values_list("pbx", flat=True)) == [
        "pbx-b"
    ]
    a_session = AgentSession.objects.get(agent_user=two[DEFAULT_PBX]["ana"])
    assert (a_session.started_at, a_session.ended_at) == (at(T0), None)
    b_session = AgentSession.objects.get(agent_user=two["pbx-b"]["ana"])
    assert (b_session.started_at, b_session.ended_at) == (at(T0), at(T0 + 100))

    # A restart of A later ends A's span at A's own last line; B's restart did not.
    write(
        a,
        f"{T0 + 700}|3.1|q-ventas|NONE|ENTERQUEUE||600|1",
        f"{T0 + 900}|NONE|NONE|NONE|QUEUESTART|",
    )
    ingest("ingest_queue_log", a)
    # (spans are derived again: new rows)
    assert AgentSession.objects.get(agent_user=two[DEFAULT_PBX]["ana"]).ended_at == at(T0 + 700)
    assert AgentSession.objects.get(agent_user=two["pbx-b"]["ana"]).ended_at == at(T0 + 100)


def test_agent_lines_name_the_agents_of_their_pbx(ingest, two, tmp_path):
    b = write(tmp_path / "b", f"{T0}|MANAGER|q-ventas|PJSIP/201|ADDMEMBER|")
    ingest("ingest_queue_log", b, pbx="pbx-b")
    event = AgentEvent.objects.get()
    assert (event.pbx, event.agent_user, event.company) == (
        "pbx-b",
        two["pbx-b"]["ana"],
        two["pbx-b"]["company"],
    )


# the command's PBX and sources


def test_an_unknown_pbx_is_an_error_naming_it(ingest, tmp_path):
    path = write(tmp_path / "queue_log", f"{T0}|1.1|q|NONE|ENTERQUEUE||1|1")
    for command in ("ingest_queue_log", "ingest_cdr"):
        with pytest.raises(CommandError, match="Unknown PBX 'pbx-x'"):
            ingest(command, path, pbx="pbx-x")
    assert not QueueLogLine.objects.exists()
    assert not IngestCursor.objects.exists()


def test_without_a_path_the_pbxs_configured_file_is_read(ingest, two, pbx_b, tmp_path):
    pbx_b.queue_log = str(write(tmp_path / "b", f"{T0}|1.1|q-ventas|NONE|ENTERQUEUE||1|1"))
    pbx_b.save()

    out, _ = ingest("ingest_queue_log", pbx="pbx-b")

    assert "pbx=pbx-b" in out
    assert "1 lines read, 1 new" in out
    assert QueueEntry.objects.get().company == two["pbx-b"]["company"]


def test_without_a_path_a_pbx_needs_a_configured_file(ingest, pbx_b):
    with pytest.raises(CommandError, match="PBX 'pbx-b' has no queue_log file configured"):
        ingest("ingest_queue_log", pbx="pbx-b")
    with pytest.raises(CommandError, match="PBX 'pbx-b' has no CDR file configured"):
        ingest("ingest_cdr", pbx="pbx-b")
    with pytest.raises(CommandError, match="Give the PATH of the queue_log file"):
        ingest("ingest_queue_log")
    pbx_b.queue_log = "/nonexistent/queue_log"
    pbx_b.save()
    with pytest.raises(CommandError, match=r"/nonexistent/queue_log \(PBX pbx-b\) is not a file"):
        ingest("ingest_queue_log", pbx="pbx-b")


def test_all_reads_every_pbxs_configured_files_in_turn(ingest, two, pbx_b, make_company, tmp_path):
    c = Pbx.objects.create(name="pbx-c", host="10.0.0.3", username="swan", secret_env="SWAN_PBX_C")
    Pbx.objects.create(name="pbx-d", host="10.0.0.4", username="swan", secret_env="SWAN_PBX_D")
    pbx_b.queue_log = str(write(tmp_path / "b", f"{T0}|1.1|q-ventas|NONE|ENTERQUEUE||1|1"))
    pbx_b.save()
    c.queue_log = str(write(tmp_path / "c", f"{T0}|1.1|q-ventas|NONE|ENTERQUEUE||1|1"))
    c.save()
    make_company(slug="charlie", pbx=c)

    out, _ = ingest("ingest_queue_log", all=True)

    assert f"pbx=pbx-b {tmp_path / 'b'}: 1 lines read, 1 new" in out
    assert f"pbx=pbx-c {tmp_path / 'c'}: 1 lines read, 1 new" in out
    assert "pbx-d" not in out  # no file configured
    assert sorted(QueueEntry.objects.values_list("pbx", "callid")) == [
        ("pbx-b", "1.1"),
        ("pbx-c", "1.1"),
    ]
    out, _ = ingest("ingest_queue_log", all=True)
    assert out.count("0 lines read, 0 new") == 2


def test_all_takes_no_path_or_pbx_and_needs_a_configured_file(ingest, pbx_b, tmp_path):
    with pytest.raises(CommandError, match="No PBX has a queue_log file configured"):
        ingest("ingest_queue_log", all=True)
    with pytest.raises(CommandError, match="No PBX has a CDR file configured"):
        ingest("ingest_cdr", all=True)
    with pytest.raises(CommandError, match="give no PATH or --pbx"):
        ingest("ingest_queue_log", tmp_path, all=True)
    with pytest.raises(CommandError, match="give no PATH or --pbx"):
        ingest("ingest_queue_log", all=True, pbx="pbx-b")
    with pytest.raises(CommandError, match="not two of them"):
        ingest("ingest_cdr", all=True, database="cdr")


# ingest_cdr --pbx


def test_one_master_csv_read_for_two_pbxes_is_each_pbxs_own(ingest, two, tmp_path):
    path = tmp_path / "Master.csv"
    shutil.copy(fixtures_path(*SYNKBUG_CDR), path)

    out_a, _ = ingest("ingest_cdr", path, time_zone="UTC")
    out_b, _ = ingest("ingest_cdr", path, time_zone="UTC", pbx="pbx-b")
    IngestCursor.objects.all().delete()
    again_a, _ = ingest("ingest_cdr", path, time_zone="UTC")
    again_b, _ = ingest("ingest_cdr", path, time_zone="UTC", pbx="pbx-b")

    assert "pbx=default" in out_a
    assert "pbx=pbx-b" in out_b
    for out in (out_a, out_b):
        assert "736 lines read, 736 new, 0 already stored" in out
    for out in (again_a, again_b):
        assert "736 lines read, 0 new, 736 already stored" in out
    for key, side in two.items():
        rows = CdrRecord.objects.filter(pbx=key)
        assert rows.count() == 736
        # Rows on SIP/1001 are the company of that PBX's 1001, never the other's.
        assert set(rows.filter(channel_device="SIP/1001").values_list("company", flat=True)) == {
            side["company"].pk
        }
    assert CdrRecord.objects.filter(uniqueid="1655439214.5").count() == 2


# reads: each company sees its own PBX's rows only

NOW = datetime(2024, 5, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def entry(side, *, outcome="answered", wait=10, talk=60, callid="1.1", user=None):
    queue = side["ventas"]
    return QueueEntry.objects.create(
        pbx=queue.pbx,
        callid=callid,
        queue_name=queue.name,
        queue=queue,
        company=queue.company,
        entered_at=NOW - timedelta(hours=1),
        outcome=outcome,
        wait_seconds=wait,
        talk_seconds=talk,
        agent="PJSIP/201",
        agent_user=user,
    )


def live(side, *, callers: int):
    queue = side["ventas"]
    QueueMemberState.objects.create(
        pbx=queue.pbx,
        queue_name=queue.name,
        queue=queue,
        interface="PJSIP/201",
        user=side["ana"],
        changed_at=NOW,
        confirmed_at=NOW,
    )
    for n in range(callers):
        QueueCallerState.objects.create(
            pbx=queue.pbx,
            queue_name=queue.name,
            queue=queue,
            unique_id=f"{n}.9",
            entered_at=NOW - timedelta(seconds=30 * (n + 1)),
            confirmed_at=NOW,
        )


@pytest.fixture
def busy(two, frozen_now):
    """Same callids on both PBXes: A answered one call and has one caller waiting; B answered
    two, abandoned one and has three waiting."""
    a, b = two[DEFAULT_PBX], two["pbx-b"]
    entry(a, callid="1.1", user=a["ana"])
    live(a, callers=1)
    entry(b, callid="1.1", wait=40, talk=100, user=b["ana"])
    entry(b, callid="2.1", wait=40, talk=100, user=b["ana"])
    entry(b, callid="3.1", outcome="abandoned", wait=5, talk=0)
    live(b, callers=3)
    return two


def test_queues_status_counts_each_companys_own_queue(busy):
    a, b = busy[DEFAULT_PBX]["company"], busy["pbx-b"]["company"]
    groups = {"v": ["q-ventas"]}
    for company, completed, abandoned, waiting in ((a, 1, 0, 1), (b, 2, 1, 3)):
        status = history.queues_status(client=_scope(company), groups=groups, company=company.slug)
        group = status["queues"]["v"]
        assert (group["status"]["completed"], group["status"]["abandoned"]) == (
            completed,
            abandoned,
        )
        assert group["status"]["currentCalls"] == waiting
        assert group["members"] == ["201"]


def test_a_key_of_both_companies_adds_up_the_queue_of_each(busy):
    """Without `company`, q-ventas names a queue of each company the key sees: both count."""
    a, b = busy[DEFAULT_PBX]["company"], busy["pbx-b"]["company"]
    status = history.queues_status(client=_scope(a, b), groups={"v": ["q-ventas"]})
    assert status["queues"]["v"]["status"]["completed"] == 3
    assert status["queues"]["v"]["status"]["currentCalls"] == 4


def test_user_resume_counts_each_companys_own_pbx(busy):
    for key, completed, waiting in ((DEFAULT_PBX, 1, 1), ("pbx-b", 2, 3)):
        company = busy[key]["company"]
        resume = history.user_resume(
            client=_scope(company),
            extension="201",
            company=company.slug,
            groups={"v": ["q-ventas"]},
        )
        assert resume["waiting-calls"] == {"v": waiting}
        assert resume["queue"]["completed"] == completed
        assert resume["user"]["completed"] == completed


@pytest.mark.parametrize("key", [DEFAULT_PBX, "pbx-b"])
def test_the_cached_endpoints_answer_each_company_from_its_pbx(busy, api_for, key):
    company = busy[key]["company"]
    api = api_for(company)
    completed, waiting = {DEFAULT_PBX: (1, 1), "pbx-b": (2, 3)}[key]

    status = result(api.get("/queues-status", {"queues[v][]": ["q-ventas"]}))
    assert status["queues"]["v"]["status"]["completed"] == completed
    assert status["queues"]["v"]["status"]["currentCalls"] == waiting
    resume = result(
        api.get("/user-resume/201", {"company": company.slug, "queues[v][]": ["q-ventas"]})
    )
    assert resume["waiting-calls"] == {"v": waiting}
    assert resume["queue"]["completed"] == completed


def test_the_cached_queues_status_of_a_key_of_both_adds_up_each_and_follows_changes(busy, api_for):
    """The read cache keeps the two q-ventas apart: both count for a key of both companies,
    one for `company`, and a caller leaving B's queue changes B's figure only."""
    a, b = busy[DEFAULT_PBX]["company"], busy["pbx-b"]["company"]
    api = api_for(a, b)
    params = {"queues[v][]": ["q-ventas"]}

    def waiting(**more) -> int:
        answer = result(api.get("/queues-status", {**params, **more}))
        return answer["queues"]["v"]["status"]["currentCalls"]

    assert (waiting(), waiting(company=a.slug), waiting(company=b.slug)) == (4, 1, 3)
    apply_frames(
        LiveState(pbx="pbx-b"),
        [Frame([("Event", "QueueCallerLeave"), ("Queue", "q-ventas"), ("Uniqueid", "0.9")])],
    )
    assert (waiting(), waiting(company=a.slug), waiting(company=b.slug)) == (3, 1, 2)


@pytest.mark.parametrize("key", [DEFAULT_PBX, "pbx-b"])
def test_the_reports_answer_each_company_from_its_pbx(busy, api_for, key):
    company = busy[key]["company"]
    api = api_for(company)
    completed = {DEFAULT_PBX: 1, "pbx-b": 2}[key]
    report = result(
        api.get(
            "/api/reports/queues",
            {"company": company.slug, "from": "2024-05-10", "to": "2024-05-10"},
        )
    )
    by_name = {row["queue"]: row for row in report["queues"]}
    assert by_name["q-ventas"]["answered"] == completed
    assert by_name["q-ventas"]["abandoned"] == (0 if key == DEFAULT_PBX else 1)
    agents = result(
        api.get(
            "/api/reports/agents",
            {"company": company.slug, "from": "2024-05-10", "to": "2024-05-10"},
        )
    )
    assert {row["extension"]: row["answered"] for row in agents["agents"]}["201"] == completed


def _scope(*companies) -> CompanyScope:
    return CompanyScope(company_ids=frozenset(c.pk for c in companies))


# last-calls and recordings: uniqueids and devices of one PBX


@pytest.fixture
def cdr_on_b_only(ingest, two, monkeypatch, tmp_path):
    """The CDR file read for pbx-b only; now is the day of its last row."""
    monkeypatch.setattr(timezone, "now", lambda: datetime(2022, 10, 26, 12, 0, tzinfo=UTC))
    ingest("ingest_cdr", fixtures_path(*SYNKBUG_CDR), time_zone="UTC", pbx="pbx-b")
    return two


def test_last_calls_shows_only_the_calls_of_the_companys_pbx(cdr_on_b_only, api_for, ingest):
    a, b = cdr_on_b_only[DEFAULT_PBX]["company"], cdr_on_b_only["pbx-b"]["company"]
    # SIP/1000 is karthik's phone on both PBXes; only B's PBX logged calls.
    on_b = result(api_for(b).get("/last-calls/1000", {"hours": 720}))
    assert on_b
    assert {call["uniqueid"] for call in on_b} <= set(
        CdrRecord.objects.filter(pbx="pbx-b").values_list("uniqueid", flat=True)
    )
    assert result(api_for(a).get("/last-calls/1000", {"hours": 720})) == []
    # Read for A too: A answers the same calls, once each.
    ingest("ingest_cdr", fixtures_path(*SYNKBUG_CDR), time_zone="UTC")
    assert CdrRecord.objects.filter(pbx=DEFAULT_PBX).count() == 736
    assert result(api_for(a).get("/last-calls/1000", {"hours": 720})) == on_b


def test_last_calls_rows_of_no_company_on_another_pbx_are_not_shown(two, api_for, frozen_now):
    """A row no company claimed (its devices matched none) still names a device: on another
    PBX a phone of the same name is another phone."""
    CdrRecord.objects.create(
        pbx="pbx-b",
        calldate=NOW - timedelta(minutes=10),
        src="600",
        dst="201",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/201-1",
        channel_device="PJSIP/trunk",
        dstchannel_device="PJSIP/201",
        uniqueid="9.1",
        linkedid="9.1",
        disposition="ANSWERED",
        billsec=10,
        digest="00000000-0000-0000-0000-000000000001",
    )
    a, b = two[DEFAULT_PBX]["company"], two["pbx-b"]["company"]
    assert result(api_for(a).get("/last-calls/201")) == []
    [call] = result(api_for(b).get("/last-calls/201"))
    assert call["uniqueid"] == "9.1"


@pytest.fixture
def recorded(settings, tmp_path, two, frozen_now):
    """Call 500.1 on both PBXes, each answered by its own 201, each with its own audio: the
    settings' PBX's in RECORDINGS_ROOT, pbx-b's in RECORDINGS_ROOT/pbx-b."""
    settings.RECORDINGS_ROOT = tmp_path / "rec"
    files = {}
    for key, folder in ((DEFAULT_PBX, tmp_path / "rec"), ("pbx-b", tmp_path / "rec" / "pbx-b")):
        day = folder / "2024" / "05" / "10"
        day.mkdir(parents=True)
        audio = day / "in-600-201-20240510-095500-500.1.wav"
        audio.write_bytes(key.encode() * 100)
        files[key] = audio
        CdrRecord.objects.create(
            pbx=key,
            company=two[key]["company"],
            calldate=NOW - timedelta(minutes=5),
            src="600",
            dst="201",
            channel="PJSIP/trunk-1",
            dstchannel="PJSIP/201-2",
            channel_device="PJSIP/trunk",
            dstchannel_device="PJSIP/201",
            uniqueid="500.1",
            linkedid="500.1",
            disposition="ANSWERED",
            billsec=30,
            digest="00000000-0000-0000-0000-000000000002",  # one row, read from each PBX
        )
    return files


@pytest.mark.parametrize("key", [DEFAULT_PBX, "pbx-b"])
def test_a_recording_is_the_audio_of_the_call_on_the_companys_pbx(
    recorded, two, api_for, client, key
):
    data = result(api_for(two[key]["company"]).get("/recording/500.1/201"))
    response = client.get(data["path"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == recorded[key].read_bytes()


def test_a_recording_of_a_call_on_another_pbx_is_a_404(recorded, two, api_for):
    CdrRecord.objects.filter(pbx=DEFAULT_PBX).delete()
    a = two[DEFAULT_PBX]["company"]
    assert "500.1" in error(api_for(a).get("/recording/500.1/201"), 404)


def test_the_settings_pbx_never_serves_another_pbxs_folder(recorded, two, api_for, client):
    """A recordingfile of the settings' PBX that points into pbx-b's folder is not its file."""
    CdrRecord.objects.filter(pbx=DEFAULT_PBX).update(
        recordingfile=str(recorded["pbx-b"]), uniqueid="500.7", linkedid="500.7"
    )
    recorded[DEFAULT_PBX].unlink()
    data = result(api_for(two[DEFAULT_PBX]["company"]).get("/recording/500.7/201"))
    assert data["processing"] is True  # no file of its own


def test_a_live_call_on_another_pbx_is_not_the_companys(two, api_for, frozen_now):
    LiveChannel.objects.create(
        pbx="pbx-b",
        unique_id="77.1",
        linked_id="77.1",
        channel="PJSIP/201-9",
        interface="PJSIP/201",
        started_at=NOW,
        confirmed_at=NOW,
    )
    a, b = two[DEFAULT_PBX]["company"], two["pbx-b"]["company"]
    assert "77.1" in error(api_for(a).get("/recording/77.1/201"), 404)
    assert result(api_for(b).get("/recording/77.1/201"))["processing"] is True
