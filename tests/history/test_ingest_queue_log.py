"""ingest_queue_log on the real files, and incremental reading, rotation, bad and late lines."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection

from pbx.history.ingest.background import BackgroundDeriver
from pbx.history.ingest.runner import FileIngest, StopFlag, cdr_time_zone
from pbx.models.history import IngestCursor, QueueEntry, QueueLogFile, QueueLogLine
from tests.conftest import fixtures_path

pytestmark = pytest.mark.django_db

SYNKBUG = ("queue_log", "issabel_synkbug_queue_log-20220801.txt")
SLACK = ("queue_log", "asterisk2slack_fixture_queue_log_membernames.txt")


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def write(path: Path, *lines: str, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def test_it_loads_the_issabel_file_and_derives_its_entries(ingest, company, make_user, make_queue):
    path = fixtures_path(*SYNKBUG)
    sathish = make_user(company, "1001", "Sathish", terminals=["SIP/1001"])
    make_queue(company, "500")

    out, err = ingest("ingest_queue_log", path)

    # `grep -c '' file` = 543 lines, none blank; line 189 starts with a NUL run from a crash and is
    # read as the QUEUESTART that follows the NULs.
    assert "543 lines read, 543 new, 0 already stored, 0 blank, 0 malformed" in out
    assert err == ""
    assert QueueLogLine.objects.count() == 543
    # cut -d'|' -f5 | sort | uniq -c: 30 ENTERQUEUE, 27 ABANDON, 3 CONNECT, 2 COMPLETEAGENT,
    # 1 COMPLETECALLER: 30 entries, 27 abandoned, 3 answered by "Sathish" (member name).
    entries = QueueEntry.objects.filter(queue_name="500")
    assert entries.count() == 30
    abandoned = entries.filter(outcome="abandoned")
    assert abandoned.count() == 27
    # awk -F'|' '/\|ABANDON\|/ {s+=$8} END {print s}' → 591: waittime is ABANDON's third field.
    assert sum(abandoned.values_list("wait_seconds", flat=True)) == 591
    answered = {
        e.callid: (e.wait_seconds, e.talk_seconds, e.agent, e.agent_user_id, e.caller)
        for e in entries.filter(outcome="answered")
    }
    # CONNECT holdtime, COMPLETE* calltime of the three calls answered.
    assert answered == {
        "1658814295.0": (6, 7, "Sathish", sathish.pk, "1001"),
        "1658835848.0": (5, 4, "Sathish", sathish.pk, "1001"),
        "1658835903.17": (6, 11, "Sathish", sathish.pk, "1002"),
    }
    first = entries.get(callid="1658129428.1048")
    assert first.entered_at == at(1658129431)  # ENTERQUEUE's epoch, UTC
    assert first.ended_at == at(1658129459)
    assert first.company == company
    assert first.queue.name == "500"


def test_a_second_run_adds_nothing(ingest):
    path = fixtures_path(*SYNKBUG)
    ingest("ingest_queue_log", path)
    IngestCursor.objects.all().delete()  # forget the offset: the lines themselves must not repeat

    out, _ = ingest("ingest_queue_log", path)

    assert "543 lines read, 0 new, 543 already stored" in out
    assert QueueLogLine.objects.count() == 543
    assert QueueEntry.objects.count() == 30


def test_member_names_duplicates_blank_lines_and_unsorted_times(ingest, tmp_path):
    path = fixtures_path(*SLACK)

    out, _ = ingest("ingest_queue_log", path)

    # 23 lines: 2 blank, 6 exact repeats of the ENTERQUEUE line, the rest distinct.
    assert "23 lines read, 15 new, 6 already stored, 2 blank, 0 malformed" in out
    entries = {e.callid: e for e in QueueEntry.objects.all()}
    assert set(entries) == {
        "1546015415.757927",
        "1546023604.760166",
        "1546023970.760296",
        "1546027663.761192",
    }
    assert all(e.outcome == "answered" for e in entries.values())
    whole = entries["1546015415.757927"]
    assert (whole.wait_seconds, whole.talk_seconds, whole.agent) == (10, 122, "Paty Marin")
    assert whole.caller == "+13238679471"
    # Only COMPLETECALLER in the file: dated back by hold (10) and talk (406) from 1546024020.
    orphan = entries["1546023604.760166"]
    assert orphan.entered_at == at(1546024020 - 406 - 10)
    assert (orphan.agent, orphan.talk_seconds) == ("Vanessa Flores", 406)
    # CONNECT then COMPLETEAGENT four times (origposition 1, 4, 5, 6): one entry.
    assert entries["1546023970.760296"].talk_seconds == 228
    assert entries["1546023970.760296"].entered_at == at(1546023976 - 6)
    # Answered, still talking: no COMPLETE line yet.
    assert entries["1546027663.761192"].ended_at is None


def test_unmatched_agents_still_count(ingest):
    ingest("ingest_queue_log", fixtures_path(*SLACK))
    assert QueueEntry.objects.filter(agent_user__isnull=True, outcome="answered").count() == 4


def test_the_psql_dump_of_the_table_is_read_in_the_given_zone(ingest):
    path = fixtures_path("queue_log", "wazo_doc_xivo_queue_log_psql_table_rows.txt")

    out, _ = ingest("ingest_queue_log", path, time_zone="UTC")

    # 14 lines: the header and its rule carry nothing, 12 rows.
    assert "14 lines read, 12 new, 0 already stored, 2 blank, 0 malformed" in out
    entry = QueueEntry.objects.get(callid="1341401601.24")
    assert entry.entered_at == datetime(2012, 7, 4, 7, 33, 21, 165823, tzinfo=UTC)
    assert (entry.outcome, entry.wait_seconds, entry.agent) == ("answered", 2, "Agent/3001")
    # JOINEMPTY, FULL and CLOSED callers never entered the queue: no entry.
    assert not QueueEntry.objects.filter(callid__in=["1341401275.9", "1341402016.44"]).exists()
    assert QueueEntry.objects.get(callid="1341402586.51").outcome == "abandoned"


def test_entries_without_exit_are_waiting(ingest):
    ingest(
        "ingest_queue_log",
        fixtures_path("queue_log", "loway_blog_2007_missing_exit_events_ast12era.txt"),
    )
    assert list(QueueEntry.objects.values_list("outcome", flat=True).distinct()) == ["waiting"]


def test_malformed_lines_are_reported_with_numbers_and_good_lines_kept(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(
        path,
        "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1",
        "this is not a queue_log line",
        "1700000010|1.1|q1|SIP/200|CONNECT|10|1.2|3",
        "99999999999|1.3|q1|NONE|ENTERQUEUE||601|1",
        "1700000100|1.1|q1|SIP/200|COMPLETECALLER|10|90|1",
    )

    out, err = ingest("ingest_queue_log", path)

    assert "5 lines read, 3 new, 0 already stored, 0 blank, 2 malformed" in out
    assert "line 2: 1 fields, at least 5 expected: this is not a queue_log line" in err
    assert "line 4: time '99999999999' is out of range" in err
    entry = QueueEntry.objects.get()
    assert (entry.outcome, entry.wait_seconds, entry.talk_seconds) == ("answered", 10, 90)


def test_a_stamp_of_other_digits_is_a_malformed_line_not_a_failed_run(ingest, tmp_path):
    path = tmp_path / "queue_log"
    # '²' (0xB2 read as Latin-1) is a digit to str.isdigit() and not to int()
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1", "²|1.2|q1|NONE|ENTERQUEUE||601|1")

    out, err = ingest("ingest_queue_log", path)

    assert "2 lines read, 1 new, 0 already stored, 0 blank, 1 malformed" in out
    assert "line 2: time '²' is not an epoch or a date" in err


def test_it_reads_only_what_was_appended(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1")
    ingest("ingest_queue_log", path)
    assert QueueEntry.objects.get().outcome == "waiting"

    write(path, "1700000030|1.1|q1|NONE|ABANDON|1|1|30", "1700000040|2.1|q1|NONE|ENTERQUEUE||601|1")
    out, _ = ingest("ingest_queue_log", path)

    assert "2 lines read, 2 new" in out
    assert QueueEntry.objects.get(callid="1.1").outcome == "abandoned"
    cursor = IngestCursor.objects.get()
    assert (cursor.offset, cursor.line_number) == (path.stat().st_size, 3)
    assert cursor.inode == path.stat().st_ino


def test_a_line_still_being_written_waits_for_its_newline(ingest, tmp_path):
    path = tmp_path / "queue_log"
    path.write_text("1700000000|1.1|q1|NONE|ENTERQUEUE||600|1\n1700000030|1.1|q1|NONE|ABAN")
    ingest("ingest_queue_log", path)
    assert QueueLogLine.objects.count() == 1

    with path.open("a") as handle:
        handle.write("DON|1|1|30\n")
    out, _ = ingest("ingest_queue_log", path)

    assert "1 lines read, 1 new, 0 already stored, 0 blank, 0 malformed" in out
    assert QueueEntry.objects.get().outcome == "abandoned"


def test_the_exit_line_may_come_before_the_enter_line(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000100|1.1|q1|SIP/200|COMPLETEAGENT|20|60|1")
    ingest("ingest_queue_log", path)
    entry = QueueEntry.objects.get()
    assert entry.entered_at == at(1700000100 - 60 - 20)
    assert entry.caller == ""

    write(
        path,
        "1700000019|1.1|q1|NONE|ENTERQUEUE||600|1",
        "1700000040|1.1|q1|SIP/200|CONNECT|21|1.2|2",
    )
    ingest("ingest_queue_log", path)

    entry = QueueEntry.objects.get()  # corrected, not doubled
    assert entry.entered_at == at(1700000019)
    assert (entry.caller, entry.wait_seconds, entry.talk_seconds) == ("600", 21, 60)
    assert entry.answered_at == at(1700000040)


def test_lines_split_across_batches_make_one_entry(tmp_path):
    path = tmp_path / "queue_log"
    write(
        path,
        "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1",
        "1700000000|2.1|q1|NONE|ENTERQUEUE||601|1",
        "1700000005|1.1|q1|SIP/200|CONNECT|5|1.2|1",
        "1700000009|2.1|q1|NONE|EXITWITHKEY|5|1|1|9",
        "1700000050|1.1|q1|SIP/200|COMPLETECALLER|5|45|1",
    )
    ingest = FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone(), batch_size=2)
    ingest.run()

    outcomes = dict(QueueEntry.objects.values_list("callid", "outcome"))
    assert outcomes == {"1.1": "answered", "2.1": "key_press"}
    assert QueueEntry.objects.get(callid="2.1").wait_seconds == 9


def test_a_caller_entering_the_same_queue_twice_makes_two_entries(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(
        path,
        "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1",
        "1700000060|1.1|q1|NONE|EXITWITHTIMEOUT|1|1|60",
        "1700000100|1.1|q1|NONE|ENTERQUEUE||600|1",
        "1700000103|1.1|q1|NONE|EXITEMPTY|1|1|3",
        "1700000200|1.1|q2|NONE|ENTERQUEUE||600|1",
        "1700000210|1.1|q2|SIP/1|CONNECT|10|1.9|2",
        "1700000300|1.1|q2|SIP/1|BLINDTRANSFER|300|ctx|10|90|1",
    )
    ingest("ingest_queue_log", path)
    assert list(
        QueueEntry.objects.order_by("entered_at").values_list(
            "queue_name", "outcome", "wait_seconds", "talk_seconds"
        )
    ) == [("q1", "timeout", 60, 0), ("q1", "empty", 3, 0), ("q2", "transferred", 10, 90)]


def test_rotation_reads_the_rest_of_the_old_file_then_the_new_one(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1")
    ingest("ingest_queue_log", path)
    rotated = tmp_path / "queue_log-20231114"
    path.rename(rotated)
    write(rotated, "1700000030|1.1|q1|NONE|ABANDON|1|1|30")  # written before the rotation
    write(path, "1700000040|2.1|q1|NONE|ENTERQUEUE||601|1", mode="w")

    out, err = ingest("ingest_queue_log", path)

    assert "rotated; reading the rest of queue_log-20231114 first" in err
    assert "2 lines read, 2 new" in out
    assert dict(QueueEntry.objects.values_list("callid", "outcome")) == {
        "1.1": "abandoned",
        "2.1": "waiting",
    }
    cursor = IngestCursor.objects.get()
    assert (cursor.inode, cursor.offset) == (path.stat().st_ino, path.stat().st_size)


def test_truncation_reads_from_the_start(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, *[f"17000000{n:02d}|{n}.1|q1|NONE|ENTERQUEUE||600|1" for n in range(10)])
    ingest("ingest_queue_log", path)
    write(path, "1700000100|99.1|q1|NONE|ENTERQUEUE||600|1", mode="w")  # copytruncate

    out, err = ingest("ingest_queue_log", path)

    assert "truncated, reading from the start" in err
    assert "1 lines read, 1 new" in out


def test_copytruncate_reads_the_copys_unread_tail_first(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, *[f"17000000{n:02d}|{n}.1|q1|NONE|ENTERQUEUE||600|1" for n in range(3)])
    ingest("ingest_queue_log", path)
    write(path, "1700000030|1.1|q1|NONE|ABANDON|1|1|30")  # after the last read
    shutil.copy(path, tmp_path / "queue_log.1")  # logrotate's copytruncate
    write(path, "1700000100|99.1|q1|NONE|ENTERQUEUE||600|1", mode="w")

    out, err = ingest("ingest_queue_log", path)

    assert "reading the rest of queue_log.1 first (copied before the truncation)" in err
    assert "2 lines read, 2 new" in out
    assert dict(QueueEntry.objects.values_list("callid", "outcome"))["1.1"] == "abandoned"
    assert QueueLogLine.objects.count() == 5
    out, _err = ingest("ingest_queue_log", path)  # and nothing again
    assert "0 lines read" in out


def test_a_reused_inode_of_a_rotated_file_is_not_read_as_it(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(
        path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1", "1700000010|2.1|q1|NONE|ENTERQUEUE||600|1"
    )
    ingest("ingest_queue_log", path)
    # The rotated file was compressed away; another file got its inode number (simulated:
    # the cursor is pointed at that file's inode), longer than what was read.
    other = tmp_path / "full-20231114"
    write(other, "[Nov 14 10:00:00] NOTICE[123] chan_sip.c: something else entirely " * 3)
    IngestCursor.objects.update(inode=other.stat().st_ino)
    path.unlink()
    write(path, "1700000100|3.1|q1|NONE|ENTERQUEUE||600|1")

    out, err = ingest("ingest_queue_log", path)

    assert "rotated; reading the new file from the start" in err
    assert "1 lines read, 1 new, 0 already stored, 0 blank, 0 malformed" in out
    assert sorted(QueueLogLine.objects.values_list("callid", flat=True)) == ["1.1", "2.1", "3.1"]


def test_a_replaced_file_that_grew_past_the_offset_is_read_from_the_start(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1")
    ingest("ingest_queue_log", path)
    inode = path.stat().st_ino
    with path.open("r+") as handle:  # truncated and refilled in place: same inode, longer file
        handle.truncate(0)
    write(
        path, "1700000500|5.1|q1|NONE|ENTERQUEUE||605|1", "1700000600|6.1|q1|NONE|ENTERQUEUE||606|1"
    )
    assert path.stat().st_ino == inode

    out, err = ingest("ingest_queue_log", path)

    assert "starts differently" in err
    assert "2 lines read, 2 new" in out


def test_progress_is_shown_on_stderr(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, *[f"{1700000000 + n}|NONE|NONE|NONE|QUEUESTART|" for n in range(25)])
    _, err = ingest("ingest_queue_log", path, progress_every=10, batch_size=4)
    assert "10 lines read" in err
    assert "20 lines read" in err


def test_follow_picks_up_new_lines_and_stops_on_sigterm(tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1")
    ingest = FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone(), stop=StopFlag())

    def feed():
        time.sleep(0.4)
        write(path, "1700000030|1.1|q1|NONE|ABANDON|1|1|30")
        time.sleep(0.6)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=feed)
    thread.start()
    report = ingest.follow(poll_seconds=0.1)
    thread.join()

    assert report.added == 2
    assert QueueEntry.objects.get().outcome == "abandoned"
    assert IngestCursor.objects.get().offset == path.stat().st_size
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_missing_file_is_an_error(ingest, tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="is not a file"):
        ingest("ingest_queue_log", tmp_path / "nope")


def test_the_fixture_copy_behaves_like_the_original(ingest, tmp_path):
    copy = tmp_path / "queue_log"
    shutil.copy(fixtures_path(*SYNKBUG), copy)
    ingest("ingest_queue_log", copy)
    assert QueueEntry.objects.count() == 30


# -- dedupe by position, repeats, crashes (issue 12, item 8) ----------------------------------


def test_a_rotated_file_read_again_by_its_new_name_adds_nothing(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1", "1700000030|1.1|q1|NONE|ABANDON|1|1|30")
    ingest("ingest_queue_log", path)
    rotated = tmp_path / "queue_log-20231114"
    path.rename(rotated)
    write(path, "1700000040|2.1|q1|NONE|ENTERQUEUE||601|1", mode="w")
    ingest("ingest_queue_log", path)

    out, _ = ingest("ingest_queue_log", rotated)  # someone ingests the old file by name

    assert "2 lines read, 0 new, 2 already stored" in out
    assert QueueLogLine.objects.count() == 3
    assert QueueLogFile.objects.count() == 2


def test_a_file_read_while_short_is_recognised_once_it_grew(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1")
    ingest("ingest_queue_log", path)
    write(path, *[f"{1700000001 + n}|NONE|NONE|NONE|QUEUESTART|" for n in range(40)])
    assert path.stat().st_size > 1024  # past the fingerprint's KiB
    IngestCursor.objects.all().delete()

    out, _ = ingest("ingest_queue_log", path)

    assert "41 lines read, 40 new, 1 already stored" in out
    assert QueueLogFile.objects.get().fingerprint_length == 1024


def test_lines_repeated_across_batches_are_stored_once(tmp_path):
    path = tmp_path / "queue_log"
    enter = "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1"
    write(path, enter, "1700000001|NONE|NONE|NONE|QUEUESTART|", enter, "", enter)
    report = FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone(), batch_size=2).run()

    assert (report.lines, report.added, report.ignored, report.duplicates) == (5, 2, 1, 2)
    assert QueueLogLine.objects.filter(event="ENTERQUEUE").count() == 1


def test_a_repeat_of_a_line_read_by_an_earlier_run_is_found_in_the_file(ingest, tmp_path):
    path = tmp_path / "queue_log"
    enter = "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1"
    write(path, enter)
    ingest("ingest_queue_log", path)
    write(path, enter, "1700000030|1.1|q1|NONE|ABANDON|1|1|30")

    out, _ = ingest("ingest_queue_log", path)

    assert "2 lines read, 1 new, 1 already stored" in out
    assert QueueEntry.objects.get().outcome == "abandoned"


def test_a_psql_row_and_the_same_line_in_a_file_are_one_line(ingest, tmp_path):
    path = tmp_path / "queue_log"
    write(
        path,
        "1341386001|1341386001.0|q1|NONE|ENTERQUEUE||600|1",
        " 2012-07-04 07:13:21 | 1341386001.0 | q1 | NONE | ENTERQUEUE | | 600 | 1",
        " 2012-07-04 07:13:21 | 1341386001.0 | q1 | NONE | ENTERQUEUE | | 600 | 1",
    )
    out, _ = ingest("ingest_queue_log", path, time_zone="UTC")
    assert "3 lines read, 1 new, 2 already stored" in out


def test_a_batch_that_fails_stores_nothing_and_keeps_the_cursor(ingest, tmp_path, monkeypatch):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1")
    ingest("ingest_queue_log", path)
    write(path, "1700000030|1.1|q1|NONE|ABANDON|1|1|30")

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(
        "pbx.history.ingest.logfiles.advance", crash
    )  # after the lines were inserted
    with pytest.raises(RuntimeError, match="disk full"):
        ingest("ingest_queue_log", path)
    monkeypatch.undo()

    assert QueueLogLine.objects.count() == 1
    assert IngestCursor.objects.get().line_number == 1
    out, _ = ingest("ingest_queue_log", path)
    assert "1 lines read, 1 new" in out
    assert QueueEntry.objects.get().outcome == "abandoned"


def test_entries_a_crash_left_underived_are_derived_by_the_next_run(ingest, tmp_path, monkeypatch):
    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1", "1700000030|1.1|q1|NONE|ABANDON|1|1|30")

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr("pbx.history.ingest.derive._entries", crash)
    with pytest.raises(RuntimeError, match="killed"):
        ingest("ingest_queue_log", path)
    monkeypatch.undo()
    assert QueueLogLine.objects.count() == 2  # the lines and the cursor were committed
    assert not QueueEntry.objects.exists()
    assert QueueLogFile.objects.get().derived_lines == 0

    out, _ = ingest("ingest_queue_log", path)  # nothing new to read: the pending lines first

    assert "0 lines read" in out
    assert QueueEntry.objects.get().outcome == "abandoned"
    assert QueueLogFile.objects.get().derived_lines == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second connection: PostgreSQL")
def test_entries_are_derived_beside_the_ingest_on_a_second_connection(tmp_path):
    path = tmp_path / "queue_log"
    lines = []
    for n in range(300):
        lines += [
            f"{1700000000 + n}|{n}.1|q1|NONE|ENTERQUEUE||600|1",
            f"{1700000005 + n}|{n}.1|q1|SIP/200|CONNECT|5|{n}.2|1",
            f"{1700000050 + n}|{n}.1|q1|SIP/200|COMPLETECALLER|5|45|1",
        ]
    write(path, *lines)
    ingest = FileIngest(
        path=path, kind="queue_log", time_zone=cdr_time_zone(), batch_size=100, derive_every=200
    )
    threads = []
    real = BackgroundDeriver.__init__

    def spy(self, *args, **kwargs):
        threads.append(self)
        real(self, *args, **kwargs)

    with mock.patch.object(BackgroundDeriver, "__init__", spy):
        report = ingest.run()

    assert len(threads) == 1
    assert report.entries >= 300  # a call cut by a derivation's end is derived twice
    assert QueueEntry.objects.count() == 300
    assert (
        QueueEntry.objects.filter(outcome="answered", wait_seconds=5, talk_seconds=45).count()
        == 300
    )
    assert QueueLogFile.objects.get().derived_lines == 900


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
@pytest.mark.django_db(transaction=True)  # SET LOCAL lasts to the end of the outer transaction
def test_lines_commit_without_the_disk_and_derivations_with_it(tmp_path):
    """A stored batch lost to a server crash is read again with its cursor; a derivation's live
    change number, once a web worker saw it, must not be lost and handed out again."""
    from pbx.history.ingest import derive, store

    seen: dict[str, list[str]] = {"store": [], "derive": []}

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    real_store, real_changed = store.store_queue_log, derive.live_changed

    def storing(*args, **kwargs):
        result = real_store(*args, **kwargs)
        seen["store"].append(setting())
        return result

    def numbering(**kwargs):
        seen["derive"].append(setting())
        return real_changed(**kwargs)

    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1", "1700000030|1.1|q1|NONE|ABANDON|1|1|30")
    with (
        mock.patch("pbx.history.ingest.runner.store_queue_log", storing),
        mock.patch.object(derive, "live_changed", numbering),
    ):
        FileIngest(path=path, kind="queue_log", time_zone=cdr_time_zone("UTC")).run()
    assert seen == {"store": ["off"], "derive": ["on"]}
    assert QueueEntry.objects.get().outcome == "abandoned"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite lets one writer in anyway")
@pytest.mark.django_db(transaction=True)
def test_two_ingests_that_see_a_new_file_at_once_make_it_one_file(tmp_path):
    """A follower and a manual run both find the file new: the second waits for the first's
    file row, then takes it (its lines would otherwise be stored twice, under two files)."""
    from pbx.history.ingest import logfiles

    path = tmp_path / "queue_log"
    write(path, "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1")
    created, commit, found = threading.Event(), threading.Event(), {}

    def first() -> None:
        from django.db import connection as own
        from django.db import transaction

        try:
            with transaction.atomic():
                found["first"] = logfiles.identify(path, pbx="default")
                created.set()
                commit.wait(10)  # the row exists, not committed yet
        finally:
            own.close()

    def second() -> None:
        from django.db import connection as own

        try:
            found["second"] = logfiles.identify(path, pbx="default")
        finally:
            own.close()

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert created.wait(5)
    threads.append(threading.Thread(target=second))
    threads[1].start()

    def second_is_waiting() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            return cursor.fetchone()[0] == 1

    deadline = time.monotonic() + 5
    while not second_is_waiting() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert second_is_waiting(), "the second identification did not wait for the first"
    commit.set()
    for thread in threads:
        thread.join(5)
    assert found["second"].pk == found["first"].pk
    assert QueueLogFile.objects.count() == 1


def test_a_files_line_count_never_goes_back(tmp_path):
    from pbx.history.ingest import logfiles
    from pbx.history.ingest.files import RawLine

    path = tmp_path / "queue_log"
    write(path, *[f"17000000{n:02d}|{n}.1|q1|NONE|ENTERQUEUE||600|1" for n in range(12)])
    stale = logfiles.identify(path, pbx="default")
    QueueLogFile.objects.filter(pk=stale.pk).update(lines=10, size=420)  # another reader's
    assert logfiles.advance(stale, path, RawLine(7, "", 294))  # further than this one had read
    logfiles.save_advance(stale)
    assert QueueLogFile.objects.values_list("lines", "size").get(pk=stale.pk) == (10, 420)
    assert not logfiles.advance(stale, path, RawLine(7, "", 294))  # not further: nothing to save
    assert logfiles.advance(stale, path, RawLine(12, "", 504))
    logfiles.save_advance(stale)
    assert QueueLogFile.objects.values_list("lines", "size").get(pk=stale.pk) == (12, 504)
