"""userStatus and blf-users follow what Asterisk reports, within a second of its event."""

from __future__ import annotations

from tests.realpbx.ami import device_event, pause_event
from tests.realpbx.conftest import members_of
from tests.realpbx.helpers import call_queue


def test_status_follows_the_phone(run, swan):
    ami = run.ami
    mark = ami.mark()
    stopping = run.phones.begin("stop", "201")  # graceful: pjsua un-REGISTERs
    event = ami.wait_event(device_event("PJSIP/201", "UNAVAILABLE"), since=mark)
    swan.wait_status("201", "unavailable", after=event.at)
    run.phones.finish(stopping)

    mark = ami.mark()
    starting = run.phones.begin("start", "201")
    event = ami.wait_event(device_event("PJSIP/201", "NOT_INUSE"), since=mark)
    swan.wait_status("201", "available", after=event.at)
    run.phones.finish(starting)

    for ext in ("201", "202"):  # q-sales rings both; nobody answers on their own
        run.phones.set_answer_after(ext, -1)
    mark = ami.mark()
    call_queue(ami, "sales")
    event = ami.wait_event(device_event("PJSIP/201", "RINGING"), since=mark)
    swan.wait_status("201", "ringing", after=event.at)

    mark = ami.mark()
    run.phones.answer("201")
    event = ami.wait_event(device_event("PJSIP/201", "INUSE"), since=mark)
    swan.wait_status("201", "busy", after=event.at)

    mark = ami.mark()
    run.phones.hangup("201")
    event = ami.wait_event(device_event("PJSIP/201", "NOT_INUSE"), since=mark)
    swan.wait_status("201", "available", after=event.at)
    swan.check_latencies()


def test_status_follows_a_pause_made_on_the_pbx(run, swan):
    ami = run.ami
    (member, *_) = members_of(run, "201")
    interface = member["location"]
    mark = ami.mark()
    ami.action("QueuePause", Interface=interface, Paused="true", Reason="Formación")
    event = ami.wait_event(pause_event(interface, True), since=mark)
    swan.wait_status("201", "pause", description="Formación", after=event.at)

    mark = ami.mark()
    ami.action("QueuePause", Interface=interface, Paused="false")
    event = ami.wait_event(pause_event(interface, False), since=mark)
    swan.wait_status("201", "available", after=event.at)
    swan.check_latencies()


def test_status_follows_a_pause_made_by_swan(run, swan):
    ami = run.ami
    (member, *_) = members_of(run, "201")
    mark = ami.mark()
    response = swan.post("/userStatus/201", {"status": "pause", "reason": "Descanso"})
    assert response.status_code == 200, response.content
    assert response.json()["result"]["status"] == "pause"
    event = ami.wait_event(pause_event(member["location"], True), since=mark)
    swan.wait_status("201", "pause", description="Descanso", after=event.at)

    mark = ami.mark()
    response = swan.post("/userStatus/201", {"status": "available"})
    assert response.status_code == 200, response.content
    event = ami.wait_event(pause_event(member["location"], False), since=mark)
    swan.wait_status("201", "available", after=event.at)
    swan.check_latencies()


def test_do_not_disturb_set_by_swan_is_busy(run, swan, request):
    ami = run.ami
    mark = ami.mark()
    response = swan.post("/userStatus/201", {"status": "busy", "reason": "Reunión"})
    assert response.status_code == 200, response.content
    assert response.json()["result"]["status"] == "busy"
    event = ami.wait_event(device_event("Custom:DND201", "BUSY"), since=mark)
    swan.wait_status("201", "busy", description="Reunión", after=event.at)

    mark = ami.mark()
    response = swan.post("/userStatus/201", {"status": "available"})
    assert response.status_code == 200, response.content
    event = ami.wait_event(device_event("Custom:DND201", "NOT_INUSE"), since=mark)
    swan.wait_status("201", "available", after=event.at)
    swan.check_latencies()


def _dnd_key(ami, ext: str) -> str | None:
    response, events = ami.action("DBGet", ok=False, Family="DND", Key=ext)
    if response.get("response", "").lower() != "success":
        return None
    return next(e["val"] for e in events if e.get("event") == "DBGetResponse")


def test_dnd_is_all_or_nothing_when_asterisk_refuses_the_device_state(run, swan):
    """Without func_devstate Asterisk refuses `DEVICE_STATE(Custom:DND…)` after the AstDB key
    was written: the key is put back, and SWAN says the change failed and what it undid. An
    `available` clears DND before it unpauses: refused, the agent stays paused too."""
    ami = run.ami
    ami.action("DBPut", Family="DND", Key="202", Val="YES")  # 202 is in DND by the dialplan's key
    for member in members_of(run, "202"):  # … and paused
        ami.action("QueuePause", Interface=member["location"], Paused="true", Queue=member["queue"])
    ami.action("ModuleLoad", Module="func_devstate.so", LoadType="unload")
    try:
        refused = swan.post("/userStatus/201", {"status": "busy", "reason": "Reunión"})
        assert refused.status_code == 409, refused.content
        assert "put back as it was" in refused.json()["error-msg"]
        assert _dnd_key(ami, "201") is None

        refused = swan.post("/userStatus/202", {"status": "available"})
        assert refused.status_code == 409, refused.content
        assert "put back as it was" in refused.json()["error-msg"]
        assert _dnd_key(ami, "202") == "YES"
        assert members_of(run, "202")
        assert all(m["paused"] == "1" for m in members_of(run, "202")), members_of(run, "202")
    finally:
        ami.action("ModuleLoad", Module="func_devstate.so", LoadType="load")
    assert swan.post("/userStatus/201", {"status": "busy"}).status_code == 200
    assert _dnd_key(ami, "201") == "YES"
