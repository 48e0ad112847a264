"""The PBX stopped and started again: reads say stale meanwhile, then equal Asterisk's again."""

from __future__ import annotations

import json

from tests.realpbx import pbx
from tests.realpbx.ami import pause_event
from tests.realpbx.conftest import WAIT, connect_resync, members_of
from tests.realpbx.helpers import call_queue, member_extension, status_per_asterisk

QUEUES_PARAM = {"queues": json.dumps({"support": ["q-support"], "sales": ["q-sales"]})}


def _live_state(swan) -> str:
    return swan.get("/userStatus/201")["X-Swan-Live-State"]


def _swan_view(swan) -> tuple[dict, dict]:
    statuses = {ext: row["status"] for ext, row in swan.blf().items()}
    queues = swan.get("/queues-status", QUEUES_PARAM).json()["result"]["queues"]
    return statuses, {g: (q["members"], q["status"]["currentCalls"]) for g, q in queues.items()}


def _asterisk_view(run) -> tuple[dict, dict]:
    members, callers = run.ami.queue_status()
    queues = {}
    for group, queue in (("support", "q-support"), ("sales", "q-sales")):
        exts = sorted({member_extension(m) for m in members if m["queue"] == queue})
        queues[group] = (exts, sum(1 for c in callers if c["queue"] == queue))
    return status_per_asterisk(run.ami), queues


def test_reads_go_stale_while_the_pbx_is_gone_and_match_it_once_back(run, swan):
    ami = run.ami
    for ext in ("202", "203", "204"):
        run.phones.set_answer_after(ext, -1)
    (member, *_) = members_of(run, "201")
    mark = ami.mark()
    ami.action("QueuePause", Interface=member["location"], Paused="true", Reason="Formación")
    ami.wait_event(pause_event(member["location"], True), since=mark)
    call_queue(ami, "support")
    assert pbx.wait_until(lambda: _swan_view(swan) == _asterisk_view(run), WAIT), (
        _swan_view(swan),
        _asterisk_view(run),
    )
    assert _live_state(swan) == "live"
    resyncs = run.listener.log().count(connect_resync())

    run.asterisk.stop()
    assert pbx.wait_until(lambda: _live_state(swan) == "stale", WAIT), run.listener.tail()
    response = swan.get("/blf-users/acme")
    assert response.status_code == 200  # the last known state, marked stale
    assert response["X-Swan-Live-State"] == "stale"

    run.asterisk.start()  # pauses, dynamic members and callers are gone (persistentmembers=no)
    run.observe()
    assert pbx.wait_until(lambda: run.listener.log().count(connect_resync()) > resyncs, 60), (
        run.listener.tail()
    )
    assert pbx.wait_until(lambda: _live_state(swan) == "live", WAIT)
    assert pbx.wait_until(lambda: _swan_view(swan) == _asterisk_view(run), WAIT), (
        _swan_view(swan),
        _asterisk_view(run),
    )
