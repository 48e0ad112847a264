"""queue_log and Master.csv as the model writes them, against the layouts of the real files."""

from __future__ import annotations

import csv
import dataclasses
import re
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pbx.simulator import QUIET, Behaviour
from tests.conftest import fixtures_path
from tests.simulator.helpers import START, make_centre

UNIQUEID = re.compile(r"^\d+\.\d+$")


def raw_fields(line: str) -> list[str]:
    """CSV fields with their quotes kept, to tell `"x"` from `x` and `""` from nothing."""
    fields, current, quoted = [], "", False
    for char in line.rstrip("\r\n"):
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    return fields


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Madrid"))


def fixture_queue_log_counts() -> dict[str, set[int]]:
    counts: dict[str, set[int]] = defaultdict(set)
    for name in (
        "issabel_synkbug_queue_log-20220801.txt",
        "asterisk2slack_fixture_queue_log_membernames.txt",
        "asterisk_book_3rd_ed_sample_queue_log_partial.txt",
    ):
        text = fixtures_path("queue_log", name).read_text(encoding="utf-8", errors="replace")
        for line in text.replace("\x00", "").splitlines():
            fields = line.split("|")
            if len(fields) > 4 and fields[0].isdigit():
                counts[fields[4]].add(len(fields))
    return counts


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """Three busy hours of the model's history files."""
    tmp = tmp_path_factory.mktemp("history")
    behaviour = dataclasses.replace(Behaviour(), call_rate=3.0, pauses_per_agent_hour=3.0)
    centre = make_centre(tmp, behaviour=behaviour, seed=5)
    centre.queue_add("ventas", "PJSIP/202", member_name="Marta Ruiz")
    centre.step(3 * 3600)
    centre.queue_remove("ventas", "PJSIP/202")
    centre.history.close()
    queue_log = (tmp / "queue_log").read_text(encoding="utf-8").splitlines()
    cdr = (tmp / "Master.csv").read_text(encoding="utf-8").splitlines()
    return queue_log, cdr


def test_queue_log_lines_have_the_field_counts_of_real_files(busy):
    real = fixture_queue_log_counts()
    ours: dict[str, set[int]] = defaultdict(set)
    for line in busy[0]:
        fields = line.split("|")
        ours[fields[4]].add(len(fields))
    shared = set(real) & set(ours)
    assert {"ENTERQUEUE", "CONNECT", "COMPLETECALLER", "COMPLETEAGENT", "ABANDON", "RINGNOANSWER",
            "ADDMEMBER", "REMOVEMEMBER", "UNPAUSE"} <= shared  # fmt: skip
    for event in shared:
        assert ours[event] <= real[event], event
    # Not in the fixtures: the same shapes as their counterparts there.
    assert ours["PAUSE"] == real["UNPAUSE"]
    assert ours["RINGCANCELED"] <= real["RINGNOANSWER"]


def test_queue_log_fields_mean_what_asterisk_means(busy):
    by_call: dict[str, list[list[str]]] = defaultdict(list)
    for line in busy[0]:
        fields = line.split("|")
        assert fields[0].isdigit()
        by_call[fields[1]].append(fields)
    calls = {k: v for k, v in by_call.items() if UNIQUEID.match(k)}
    assert calls
    for uniqueid, lines in calls.items():
        events = {f[4]: f for f in lines}
        enter = events["ENTERQUEUE"]
        assert enter[3] == "NONE"
        assert enter[5] == ""
        assert enter[6].isdigit()
        assert int(enter[7]) >= 1
        if "CONNECT" in events:
            connect = events["CONNECT"]
            assert int(connect[5]) == int(connect[0]) - int(enter[0])  # holdtime
            assert UNIQUEID.match(connect[6])
            assert connect[6] != uniqueid  # the member's leg
            done = events.get("COMPLETECALLER") or events.get("COMPLETEAGENT")
            if done:
                assert done[5] == connect[5]
                assert int(done[6]) == int(done[0]) - int(connect[0])  # talk time
                assert done[7] == enter[7]
        if "ABANDON" in events:
            abandon = events["ABANDON"]
            assert abandon[6] == enter[7]
            assert int(abandon[7]) == int(abandon[0]) - int(enter[0])  # wait is the third field
        for miss in (f for f in lines if f[4] == "RINGNOANSWER"):
            assert int(miss[5]) % 1000 == 0  # milliseconds


def test_pauses_carry_their_reasons_and_member_changes_come_from_the_manager(busy):
    lines = [line.split("|") for line in busy[0]]
    reasons = {f[5] for f in lines if f[4] == "PAUSE"}
    assert reasons
    assert reasons <= {"Descanso", "Comida"}
    assert all(f[5] == "" for f in lines if f[4] == "UNPAUSE")
    assert all(f[1:3] == ["NONE", "NONE"] for f in lines if f[4] in ("PAUSEALL", "UNPAUSEALL"))
    members = [f for f in lines if f[4] in ("ADDMEMBER", "REMOVEMEMBER")]
    assert [(f[1], f[2], f[3], f[4], f[5]) for f in members] == [
        ("MANAGER", "ventas", "PJSIP/202", "ADDMEMBER", ""),
        ("MANAGER", "ventas", "PJSIP/202", "REMOVEMEMBER", ""),
    ]


def test_master_csv_rows_quote_like_cdr_csv(busy):
    real = fixtures_path("cdr", "issabel_synkbug_cdr_csv_Master_18col_utc.csv")
    real_rows = [raw_fields(line) for line in real.read_text(errors="replace").splitlines() if line]
    assert {len(r) for r in real_rows} == {18}
    quoted_in_real = [{r[i].startswith('"') for r in real_rows if r[i]} for i in range(18)]
    ours = [raw_fields(line) for line in busy[1]]
    assert {len(r) for r in ours} == {21}
    for row in ours:
        for i in range(18):
            if row[i]:
                assert {row[i].startswith('"')} <= quoted_in_real[i], (i, row[i])
        assert row[18].startswith('"')
        assert row[19].startswith('"')
        assert row[20].isdigit()  # sequence: an unquoted integer
        assert row[12].isdigit()
        assert row[13].isdigit()
    unanswered = [r for r in ours if r[14] == '"NO ANSWER"']
    assert unanswered
    assert all(r[10] == "" for r in unanswered)
    assert all(r[13] == "0" for r in unanswered)
    assert all(r[10].startswith('"') for r in ours if r[14] == '"ANSWERED"')


def test_master_csv_parses_and_adds_up(busy):
    rows = list(csv.reader(busy[1]))
    madrid = ZoneInfo("Europe/Madrid")
    sequences = [int(r[20]) for r in rows]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)
    for r in rows:
        start, end = (local(r[i]) for i in (9, 11))
        assert int(r[12]) == int((end - start).total_seconds())
        if r[10]:
            answer = local(r[10])
            assert int(r[13]) == int((end - answer).total_seconds())
        assert r[19]  # linkedid
        assert r[15] == "DOCUMENTATION"
    # Times are the PBX's local time (Europe/Madrid here): a caller's uniqueid is the start epoch.
    queue_rows = [r for r in rows if r[7] == "Queue" and r[14] == "ANSWERED"]
    first = queue_rows[0]
    epoch = int(first[16].split(".")[0])
    assert first[9] == datetime.fromtimestamp(epoch, madrid).strftime("%Y-%m-%d %H:%M:%S")


def test_lines_are_flushed_as_they_happen(tmp_path):
    centre = make_centre(tmp_path, behaviour=dataclasses.replace(QUIET, answer_probability=1.0))
    centre.caller_arrives("ventas", "600111222")
    centre.step(0)
    assert "ENTERQUEUE||600111222|1" in (tmp_path / "queue_log").read_text()
    centre.step(600)
    assert '"600111222"' in (tmp_path / "Master.csv").read_text()
    assert (tmp_path / "queue_log").read_text().startswith(str(int(START)))
