"""What the differential test (tests/realpbx/test_simulator_differential.py) found Asterisk 20.20
and 22.10 do differently, fixed in the simulator; these run on the simulator alone."""

from __future__ import annotations

import dataclasses

from pbx.simulator import QUIET
from pbx.simulator.callcentre import OriginateSpec
from tests.simulator.helpers import make_centre

ANSWERS = dataclasses.replace(
    QUIET, answer_probability=1.0, ring_seconds=(1.0, 1.0), talk_seconds=(3.0, 3.0)
)
NEVER = dataclasses.replace(QUIET, answer_probability=0.0, ring_timeout=10.0)


def devices(events) -> list[tuple[str, str]]:
    return [(e.get("Device"), e.get("State")) for e in events if e.event == "DeviceStateChange"]


def of_channel(events, prefix: str) -> list:
    return [e for e in events if (e.get("Channel") or "").startswith(prefix)]


def test_queue_devices_are_listed_from_the_start():
    states = make_centre().device_states()
    assert states["Queue:ventas_avail"] == "NOT_INUSE"
    assert states["Queue:ventas_pause_PJSIP/200"] == "NOT_INUSE"
    assert states["Queue:soporte_pause_PJSIP/201"] == "NOT_INUSE"
    assert "Queue:ventas" not in states  # no caller yet


def test_pause_and_unpause_change_the_queue_pause_devices():
    centre = make_centre()
    centre.queue_pause("PJSIP/201", True, reason="Descanso")
    assert devices(centre.drain_events()) == [
        ("Queue:ventas_pause_PJSIP/201", "INUSE"),
        ("Queue:soporte_pause_PJSIP/201", "INUSE"),
    ]  # 200 and 202 are still available: the _avail devices do not change
    centre.queue_pause("PJSIP/200", True)
    assert devices(centre.drain_events()) == [
        ("Queue:ventas_pause_PJSIP/200", "INUSE"),
        ("Queue:ventas_avail", "INUSE"),  # nobody left in ventas
    ]
    centre.queue_pause("PJSIP/200", False)
    assert devices(centre.drain_events()) == [
        ("Queue:ventas_pause_PJSIP/200", "NOT_INUSE"),
        ("Queue:ventas_avail", "NOT_INUSE"),
    ]


def test_an_added_member_gets_its_pause_device():
    centre = make_centre()
    centre.queue_add("soporte", "PJSIP/200", member_name="Ana García", paused=True)
    assert ("Queue:soporte_pause_PJSIP/200", "INUSE") in devices(centre.drain_events())
    assert centre.device_states()["Queue:soporte_pause_PJSIP/200"] == "INUSE"


def test_a_caller_rings_the_queue_device_and_busy_agents_empty_avail():
    centre = make_centre(behaviour=ANSWERS)
    centre.queue_pause("PJSIP/201", True)
    centre.drain_events()
    centre.caller_arrives("ventas", "600111222", patience=60)
    centre.step(5)
    seen = [d for d in devices(centre.drain_events()) if d[0].startswith("Queue:ventas")]
    assert seen == [
        ("Queue:ventas", "RINGING"),  # a caller joined
        ("Queue:ventas_avail", "INUSE"),  # 200 rings, 201 is paused
        ("Queue:ventas", "NOT_INUSE"),  # the caller left the queue for 200
        ("Queue:ventas_avail", "NOT_INUSE"),  # 200 hung up
    ]


def test_setting_a_custom_state_it_already_has_sends_nothing():
    centre = make_centre()
    centre.set_custom_state("Custom:DND200", "BUSY")
    centre.set_custom_state("Custom:DND200", "BUSY")
    assert devices(centre.drain_events()) == [("Custom:DND200", "BUSY")]


def test_the_agent_leg_gets_its_connected_line_when_it_rings():
    centre = make_centre(behaviour=ANSWERS)
    centre.caller_arrives("ventas", "600111222", patience=60)
    centre.step(0.5)
    leg = of_channel(centre.drain_events(), "PJSIP/200-")
    assert [e.event for e in leg] == ["Newchannel", "Newstate", "NewConnectedLine"]
    created, ringing, connected = leg
    assert (created.get("Exten"), created.get("ConnectedLineNum")) == ("s", "<unknown>")
    assert ringing.get("ChannelStateDesc") == "Ringing"
    assert connected.get("ConnectedLineNum") == "600111222"
    assert connected.get("Exten") == "900100100"  # the caller's exten


def test_a_ring_the_caller_cancels_hangs_up_with_cause_0():
    centre = make_centre(behaviour=NEVER)
    centre.caller_arrives("ventas", "600111222", patience=3)
    centre.step(5)
    hangups = [e for e in of_channel(centre.drain_events(), "PJSIP/20") if e.event == "Hangup"]
    assert [(e.get("Cause"), e.get("Cause-txt")) for e in hangups] == [("0", "Unknown")]


def test_an_originated_channel_says_the_number_dialled_as_connected_line():
    centre = make_centre(behaviour=ANSWERS)
    centre.originate(
        OriginateSpec(
            "PJSIP/200", context="from-internal", exten="600123456", caller_id="600123456"
        )
    )
    centre.step(5)
    leg = of_channel(centre.drain_events(), "PJSIP/200-")
    names = [e.event for e in leg]
    assert names[:4] == ["Newchannel", "NewConnectedLine", "Newstate", "Newstate"]
    assert (leg[0].get("Exten"), leg[0].get("CallerIDNum")) == ("s", "200")
    assert leg[1].get("ConnectedLineNum") == "600123456"
    assert leg[1].get("ChannelStateDesc") == "Down"


def test_pauseall_logs_the_reason(tmp_path):
    centre = make_centre(tmp_path)
    centre.queue_pause("PJSIP/200", True, reason="Comida")
    centre.history.close()
    first = (tmp_path / "queue_log").read_text().splitlines()[0]
    assert first.split("|")[2:] == ["NONE", "Ana García", "PAUSEALL", "Comida"]


def test_timestamp_events_put_the_timestamp_after_privilege():
    centre = make_centre()
    centre.timestamp_events = True
    centre.set_custom_state("Custom:DND200", "BUSY")
    (event,) = centre.drain_events()
    assert [key for key, _ in event][:4] == ["Event", "Privilege", "Timestamp", "Device"]
    assert float(event.get("Timestamp")) == centre.now


def test_contacts_list_qualify_2xx_only():
    from pbx.simulator.ami_actions import Context, SessionState, pjsip_show_contacts
    from pbx.simulator.protocol import AmiMessage

    ctx = Context(make_centre(), SessionState(), lambda _u, _s: True, lambda: 0)
    frames = pjsip_show_contacts(ctx, AmiMessage([("Action", "PJSIPShowContacts")]))
    contacts = [f for f in frames if f.event == "ContactList"]
    assert contacts
    assert all(f.get("Qualify2xxOnly") == "false" for f in contacts)
