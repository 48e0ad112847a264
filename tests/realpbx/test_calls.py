"""click-to-call, current-calls, web-phone-username and queues-status against real calls."""

from __future__ import annotations

import json

from tests.realpbx import pbx
from tests.realpbx.conftest import WAIT
from tests.realpbx.helpers import call_queue, member_extension
from tests.realpbx.layouts import DIAL_CONTEXT, QUALIFY_SECONDS, WEBPHONE

DESTINATION = "600123456"  # [from-internal] `_X.`: answers, waits 5 s, hangs up


def test_click_to_call_rings_the_users_phone_and_dials_in_the_company_context(run, swan):
    response = swan.post(f"/call/{DESTINATION}", {"private_source": "201", "company": "acme"})
    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"success": True}
    assert run.phones.wait("201", "connected", timeout=WAIT)

    def dialled():
        return [
            c
            for c in run.ami.channels()
            if c["channel"].startswith("PJSIP/201-")
            and c["exten"] == DESTINATION
            and c["context"] == DIAL_CONTEXT
        ]

    assert pbx.wait_until(dialled, WAIT), run.ami.channels()

    def calls():
        rows = swan.get("/current-calls/201").json()["result"]
        return rows if rows and rows[0]["number"] == DESTINATION else None

    rows = pbx.wait_until(calls, WAIT)
    assert rows, swan.get("/current-calls/201").json()
    assert len(rows) == 1
    assert rows[0]["direction"] == "outgoing"
    assert rows[0]["number"] == DESTINATION

    run.phones.hangup("201")
    assert pbx.wait_until(lambda: not dialled(), WAIT)
    assert pbx.wait_until(lambda: swan.get("/current-calls/201").json()["result"] == [], WAIT)


def _web_phone(swan) -> tuple[int, dict]:
    response = swan.get(f"/web-phone-username/{WEBPHONE}")
    return response.status_code, response.json()["result"]


def _contact_reachable(run) -> bool:
    return any(
        c["endpoint"] == WEBPHONE and c["status"] in ("Reachable", "NonQualified")
        for c in run.ami.contacts()
    )


def test_web_phone_is_registered_follows_the_real_contact(run, swan):
    mac = swan.directory.terminals[WEBPHONE].mac
    assert _contact_reachable(run)
    registered = (409, {"username": mac, "is_registered": True})
    unregistered = (200, {"username": mac, "is_registered": False})
    assert pbx.wait_until(lambda: _web_phone(swan) == registered, WAIT), _web_phone(swan)

    run.phones.stop(WEBPHONE)  # graceful: un-REGISTER
    assert not _contact_reachable(run)
    assert pbx.wait_until(lambda: _web_phone(swan) == unregistered, WAIT), _web_phone(swan)

    run.phones.start(WEBPHONE)
    assert _contact_reachable(run)
    qualify = QUALIFY_SECONDS + 2  # qualify_frequency + qualify_timeout
    assert pbx.wait_until(lambda: _web_phone(swan) == registered, qualify), _web_phone(swan)

    run.phones.stop(WEBPHONE, kill=True)  # no un-REGISTER: the next qualify notices
    assert pbx.wait_until(lambda: not _contact_reachable(run), qualify + 3)
    assert pbx.wait_until(lambda: _web_phone(swan) == unregistered, 3), _web_phone(swan)


def test_the_wallboard_numbers_the_callers_as_asterisk_does_when_one_leaves(run, swan):
    """Asterisk moves the callers behind one who leaves up a place; its QueueCallerLeave does
    not say so, so SWAN renumbers them itself. Judged by QueueStatus' positions."""
    from dashboard.selectors import queue_groups
    from pbx.models import Company

    for ext in ("202", "203", "204"):
        run.phones.set_answer_after(ext, -1)  # ring, never answer: callers wait

    def asterisk() -> dict[str, int]:
        _members, callers = run.ami.queue_status()
        return {c["calleridnum"]: int(c["position"]) for c in callers if c["queue"] == "q-support"}

    def wallboard() -> dict[str, int]:
        groups = queue_groups(company=Company.objects.get(slug="acme"))
        board = next(g for g in groups if g["group"] == "q-support")
        return {c["caller"]: c["position"] for c in board["callers"]}

    for _ in range(3):
        number = call_queue(run.ami, "support")
        assert pbx.wait_until(lambda number=number: number in asterisk(), WAIT), asterisk()
    _members, callers = run.ami.queue_status()
    first = next(c for c in callers if c["queue"] == "q-support" and c["position"] == "1")
    run.ami.action("Hangup", Channel=first["channel"])
    assert pbx.wait_until(lambda: first["calleridnum"] not in asterisk(), WAIT), asterisk()
    call_queue(run.ami, "support")  # joins behind the two left
    assert pbx.wait_until(lambda: len(asterisk()) == 3, WAIT), asterisk()
    expected = asterisk()
    assert sorted(expected.values()) == [1, 2, 3]
    assert pbx.wait_until(lambda: wallboard() == expected, WAIT), (wallboard(), expected)


def test_queues_status_counts_the_callers_asterisk_has_waiting(run, swan):
    for ext in ("202", "203", "204"):
        run.phones.set_answer_after(ext, -1)  # ring, never answer: callers wait
    call_queue(run.ami, "support")
    call_queue(run.ami, "support")

    def waiting():
        _members, callers = run.ami.queue_status()
        return [c for c in callers if c["queue"] == "q-support"]

    callers = pbx.wait_until(lambda: len(waiting()) == 2 and waiting(), WAIT)
    assert callers, waiting()
    params = {"queues": json.dumps({"support": ["q-support"], "sales": ["q-sales"]})}

    def status():
        result = swan.get("/queues-status", params).json()["result"]["queues"]
        return result if result["support"]["status"]["currentCalls"] == len(callers) else None

    result = pbx.wait_until(status, WAIT)
    assert result, swan.get("/queues-status", params).json()
    members, _ = run.ami.queue_status()
    for group, queue in (("support", "q-support"), ("sales", "q-sales")):
        expected = sorted({member_extension(m) for m in members if m["queue"] == queue})
        assert result[group]["members"] == expected
    assert result["support"]["alarm"] is True  # q-support: alarm at 2 waiting
    assert result["sales"] == {**result["sales"], "alarm": False}
    assert result["sales"]["status"]["currentCalls"] == 0
