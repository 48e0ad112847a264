"""userStatus POST, user-unregister and terminal-register act on the members Asterisk reports."""

from __future__ import annotations

from tests.realpbx import pbx
from tests.realpbx.conftest import WAIT, members_of
from tests.realpbx.layouts import NAMES, QUEUES


def member_lines(run, ext: str) -> list[str]:
    """The member lines of `queue show` (the CLI) for the agent `ext`."""
    return [line for line in run.asterisk.cli("queue show").splitlines() if NAMES[ext] in line]


def test_pause_and_available_reach_every_membership_of_the_user(run, swan):
    response = swan.post("/userStatus/202", {"status": "pause", "reason": "Almuerzo"})
    assert response.status_code == 200, response.content
    assert response.json()["result"]["status"] == "pause"

    def all_paused():
        rows = members_of(run, "202")
        return rows if all(r["paused"] == "1" for r in rows) else None

    rows = pbx.wait_until(all_paused, WAIT)
    assert rows, members_of(run, "202")
    assert sorted(r["queue"] for r in rows) == ["q-sales", "q-support"]
    assert {r["pausedreason"] for r in rows} == {"Almuerzo"}
    assert all("paused" in line for line in member_lines(run, "202"))
    assert not any(r["paused"] == "1" for ext in ("201", "203") for r in members_of(run, ext))

    response = swan.post("/userStatus/202", {"status": "available"})
    assert response.status_code == 200, response.content
    assert pbx.wait_until(lambda: all(r["paused"] == "0" for r in members_of(run, "202")), WAIT)
    assert not any("paused" in line for line in member_lines(run, "202"))


def test_a_user_in_no_queue_cannot_pause(run, swan):
    response = swan.post("/userStatus/205", {"status": "pause", "reason": "Almuerzo"})
    assert response.status_code == 409, response.content
    assert "205" in response.json()["error-msg"]
    members, _ = run.ami.queue_status()
    assert not any(m["paused"] == "1" for m in members)
    assert swan.user_status("205")["status"] == "available"


def test_user_unregister_removes_what_the_pbx_lets_it_remove(run, swan):
    before = members_of(run, "204")
    assert [r["queue"] for r in before] == ["q-support"]
    response = swan.post("/user-unregister/204")
    assert response.status_code == 200, response.content
    after = members_of(run, "204")
    if run.layout.static:  # Asterisk refuses to remove a queues.conf member ("Member not dynamic")
        assert response.json()["result"] == {"success": False}
        assert [r["location"] for r in after] == [r["location"] for r in before]
        assert member_lines(run, "204")
    else:
        assert response.json()["result"] == {"success": True}
        assert after == []
        assert member_lines(run, "204") == []


def test_terminal_register_adds_and_removes_the_members(run, swan):
    """Static layouts: POST keeps the one static member, DELETE is refused by the PBX (and the
    terminal stays registered); dynamic: DELETE removes the members, POST adds them back."""
    from terminals.models import Terminal

    layout = run.layout
    mac = swan.directory.terminals["203"].mac
    queues = sorted(q for q, exts in QUEUES.items() if "203" in exts)

    def register() -> None:
        response = swan.post(f"/terminal-register/{mac}")
        assert response.status_code == 200, response.content
        assert response.json()["result"] == {"success": True}
        rows = members_of(run, "203")
        assert sorted(r["queue"] for r in rows) == queues  # once in each queue, no duplicate
        for row in rows:
            assert row["location"] == layout.interface("203")
            assert row["stateinterface"] == layout.state_interface("203")
            assert row["membership"] == ("static" if layout.static else "dynamic")
        assert Terminal.objects.get(mac=mac).registered

    def unregister() -> None:
        response = swan.delete(f"/terminal-register/{mac}")
        assert response.status_code == 200, response.content
        rows = members_of(run, "203")
        if layout.static:  # "Member not dynamic": not done, and stored as still registered
            assert response.json()["result"] == {"success": False}
            assert sorted(r["queue"] for r in rows) == queues
            assert Terminal.objects.get(mac=mac).registered
        else:
            assert response.json()["result"] == {"success": True}
            assert rows == []
            assert not Terminal.objects.get(mac=mac).registered

    if layout.static:
        register()
        unregister()
    else:  # registered by the harness, as every agent of the dynamic layout
        unregister()
        register()
