"""Call history on a real Asterisk: a burst of real queue calls, SWAN's real ingest of the
queue_log and Master.csv Asterisk wrote, and SWAN's figures against the test's own count of
those same files (tests/realpbx/history.py), never against what SWAN stored.

Only in layout `local` (FreePBX's Local/<ext>@from-queue/n members): its Local legs are what
makes one row per call in last-calls hard.
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from tests.realpbx import history, pbx
from tests.realpbx.helpers import call_queue
from tests.realpbx.layouts import NAMES, QUEUES

pytestmark = pytest.mark.layouts("local")

GROUPS = {"sales": ["q-sales"], "support": ["q-support"]}
ZONE = "Europe/Madrid"  # company acme
BURST_LIMIT = 45.0  # seconds for the whole test


def _support_callers(run, *, besides: str) -> int:
    return sum(
        1
        for c in run.ami.channels()
        if c["channel"].startswith("Local/support@incoming-")
        and c["channel"].endswith(";1")
        and c.get("calleridnum") != besides
    )


def _agent_channel(run, ext: str) -> str | None:
    for channel in run.ami.channels():
        if channel["channel"].startswith(f"PJSIP/{ext}-"):
            return channel["channel"]
    return None


def _burst(run) -> tuple[set[str], str]:
    """≥ 30 calls in waves; returns the callers' numbers and the transferred caller's."""
    ami = run.ami
    numbers: set[str] = set()

    def call(queue: str, seconds: int) -> str:
        number = call_queue(ami, queue, seconds=seconds)
        numbers.add(number)
        return number

    # 1. answered: everybody answers (300 ms), three waves of 2 sales + 3 support callers
    for _wave in range(3):
        for queue, count in (("sales", 2), ("support", 3)):
            for _ in range(count):
                call(queue, 3)
        assert pbx.wait_until(lambda: len(ami.channels()) > 0, 5)
        assert pbx.wait_until(lambda: not ami.channels(), 15), ami.channels()

    # 2. 201 and 202 never answer: a sales caller rings them until the member timeout
    #    (RINGNOANSWER), then 202 answers on the retry; meanwhile sales callers who hang up
    #    while waiting (ABANDON) and who hit Queue()'s 3 s timeout (EXITWITHTIMEOUT); support
    #    callers answered by 203/204, one of them blind-transferred by its agent to 205.
    for ext in ("201", "202"):
        run.phones.set_answer_after(ext, -1)
    mark = ami.mark()
    call("sales", 14)
    ami.wait_event(
        lambda e: e["event"] == "AgentCalled" and e["queue"] == "q-sales", since=mark, timeout=10
    )
    for _ in range(4):
        call("sales", 2)
    for _ in range(3):
        call("sales-timeout", 8)
    transferred = call("support", 7)
    answered_again = transfer_done = False
    support_waves = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not answered_again and any(
            e["event"] == "AgentRingNoAnswer" and e["queue"] == "q-sales" for e in ami.events[mark:]
        ):
            run.phones.set_answer_after("202", pbx.ANSWER_AFTER_MS)
            answered_again = True
        if not transfer_done:
            connect = next(
                (
                    e
                    for e in ami.events[mark:]
                    if e["event"] == "AgentConnect" and e["calleridnum"] == transferred
                ),
                None,
            )
            agent = connect and next(x for x, n in NAMES.items() if n == connect["membername"])
            channel = agent and _agent_channel(run, agent)
            if channel:
                ami.action("BlindTransfer", Channel=channel, Context="from-internal", Exten="205")
                transfer_done = True
        if transfer_done and support_waves < 4 and not _support_callers(run, besides=transferred):
            for _ in range(2):
                call("support", 2)
            support_waves += 1
            pbx.wait_until(lambda: _support_callers(run, besides=transferred), 5)
        if answered_again and support_waves == 4 and not ami.channels():
            break
        time.sleep(0.05)
    assert answered_again, "no RINGNOANSWER within 30 s"
    assert transfer_done, "the support caller to transfer was never connected"
    assert support_waves == 4, support_waves
    run.phones.set_answer_after("201", pbx.ANSWER_AFTER_MS)
    return numbers, transferred


def test_history_figures_follow_what_asterisk_wrote(run, swan):
    started = time.monotonic()
    log_dir = run.asterisk.log_dir
    queue_log = log_dir / "queue_log"
    before = set(history.stays(queue_log, QUEUES))
    numbers, transferred = _burst(run)
    rows = history.cdr_barrier(run, numbers)
    history.forget_history()
    history.ingest(run)

    # what this burst made Asterisk write: every kind of call asked for
    stays = history.stays(queue_log, QUEUES)
    ours = {key: stay for key, stay in stays.items() if key not in before}
    assert len({callid for callid, _queue in ours}) >= 30, len(ours)
    kinds = {stay.exit or ("answered" if stay.agent else "waiting") for stay in ours.values()}
    assert {"answered", "ABANDON", "EXITWITHTIMEOUT"} <= kinds, kinds
    assert "RINGNOANSWER" in history.events(queue_log)
    to_205 = [
        r
        for r in rows
        if history.device(r["dstchannel"]) == "PJSIP/205"
        and r["src"] == transferred
        and r["disposition"] == "ANSWERED"
    ]
    assert to_205, "the blind transfer to 205 left no answered CDR row"

    # queues-status: completed / abandoned per group, today
    today = history.today_start(ZONE)
    todays = {key: stay for key, stay in stays.items() if stay.entered >= today}
    result = swan.get("/queues-status", {"queues": json.dumps(GROUPS)}).json()["result"]
    for group, queues in GROUPS.items():
        mine = [stay for (_c, queue), stay in todays.items() if queue in queues]
        expected = (
            sum(1 for s in mine if s.agent),
            sum(1 for s in mine if s.exit and not s.agent),
        )
        status = result["queues"][group]["status"]
        assert (status["completed"], status["abandoned"]) == expected, (group, status)

    # user-resume: completed, totalSpeechTime and lastCall of every user
    for ext, name in NAMES.items():
        answered = [s for s in todays.values() if s.agent == name]
        talk = sum(s.talk for s in answered)
        calls = history.calls_of(rows, ext)
        user = swan.get(f"/user-resume/{ext}", {"company": "acme"}).json()["result"]["user"]
        assert user["completed"] == len(answered), (ext, user)
        minutes, seconds = (int(n) for n in re.findall(r"\d+", user["totalSpeechTime"]))
        assert (minutes, seconds) == divmod(talk, 60), (ext, user, talk)
        if not calls:
            assert user["lastCall"] is None, (ext, user)
            continue
        latest = max(min(r["start"] for r in legs) for legs in calls.values())
        candidates = {
            history.other_party(legs, ext)[1]
            for legs in calls.values()
            if min(r["start"] for r in legs) == latest
        }
        assert user["lastCall"] in candidates, (ext, user, candidates)

    # last-calls: one row per call and user, Local legs or not
    for ext in NAMES:
        calls = history.calls_of(rows, ext)
        listed = swan.get(f"/last-calls/{ext}", {"hours": 24}).json()["result"]
        ids = [row["uniqueid"] for row in listed]
        assert len(ids) == len(set(ids)), (ext, ids)
        assert set(ids) == set(calls), (ext, set(ids) ^ set(calls))
        for row in listed:
            legs = calls[row["uniqueid"]]
            expected = (*history.other_party(legs, ext), history.talk_seconds(legs, ext))
            assert (row["direction"], row["number"], row["duration"]) == expected, (ext, row, legs)
    elapsed = time.monotonic() - started
    assert elapsed <= BURST_LIMIT, f"the history test took {elapsed:.1f}s"


def test_a_member_added_paused_is_paused_in_the_history(run, swan):
    """What Asterisk writes for a member added paused, and the pause SWAN reads from it."""
    from pbx.models import AgentPause, AgentSession, PbxUser

    queue_log = run.asterisk.log_dir / "queue_log"
    name, since = NAMES["205"], time.time()
    mark = run.ami.mark()
    run.ami.action(
        "QueueAdd", Queue="q-sales", Interface="PJSIP/205", MemberName=name, Paused="true"
    )
    run.ami.wait_event(
        lambda e: e["event"] == "QueueMemberAdded" and e["membername"] == name, since=mark
    )
    time.sleep(1.2)  # a pause one second long at least: queue_log counts whole seconds
    run.ami.action("QueueRemove", Queue="q-sales", Interface="PJSIP/205")

    def lines() -> list[list[str]]:
        return [
            fields
            for fields in history.queue_log_lines(queue_log)
            if fields[2] == "q-sales"
            and fields[3] in (name, "PJSIP/205")
            and int(fields[0]) >= int(since)
        ]

    written = pbx.wait_until(lambda: [f[4] for f in lines()] == ["ADDMEMBER", "REMOVEMEMBER"], 5)
    assert written, history.queue_log_lines(queue_log)[-6:]
    added, removed = lines()
    assert added[5:] == ["PAUSED"], added  # and no PAUSE line
    history.forget_history()
    call_command("ingest_queue_log", str(queue_log), stdout=io.StringIO(), stderr=io.StringIO())

    user = PbxUser.objects.get(extension="205")
    start, end = (datetime.fromtimestamp(int(f[0]), UTC) for f in (added, removed))
    assert list(
        AgentSession.objects.filter(agent_user=user, started_at__gte=start).values_list(
            "started_at", "ended_at"
        )
    ) == [(start, end)]
    assert list(
        AgentPause.objects.filter(agent_user=user, started_at__gte=start).values_list(
            "started_at", "ended_at", "reason"
        )
    ) == [(start, end, "")]
