"""The AMI session over real TCP: banner, login, framing, ActionID, event filtering, stop."""

from __future__ import annotations

import socket
import time

import pytest

from pbx.simulator import Behaviour, SimulatedPbx
from tests.simulator.helpers import SECRET, USERNAME, AmiClient, make_centre, make_pbx


def test_it_greets_with_the_asterisk_20_banner(connect):
    client = connect()
    assert client.banner == b"Asterisk Call Manager/9.0.0"
    assert client.raw.startswith(b"Asterisk Call Manager/9.0.0\r\n")


def test_it_accepts_the_right_secret_and_sends_fully_booted(connect):
    client = connect()
    reply = client.login(Events="on")
    assert reply.pairs[:3] == [
        ("Response", "Success"),
        ("ActionID", reply.get("ActionID")),
        ("Message", "Authentication accepted"),
    ]
    booted = client.wait_event("FullyBooted")
    assert booted.get("Privilege") == "system,all"
    assert booted.get("Status") == "Fully Booted"


def test_it_refuses_a_wrong_secret_and_hangs_up(connect):
    client = connect()
    reply = client.login(secret="wrong")
    assert reply.get("Response") == "Error"
    assert reply.get("Message") == "Authentication failed"
    assert client.wait_closed()


def test_it_refuses_actions_before_login(connect):
    client = connect()
    reply = client.action("Ping")
    assert (reply.get("Response"), reply.get("Message")) == ("Error", "Permission denied")


def test_action_names_and_keys_ignore_case(connect):
    client = connect()
    client.send(
        ("ACTION", "LOGIN"), ("USERNAME", "tester"), ("SECRET", "s3cret"), ("actionid", "x1")
    )
    assert client.response("x1").get("Response") == "Success"
    client.send(("action", "pInG"), ("ActionId", "x2"))
    assert client.response("x2").get("Ping") == "Pong"


def test_lines_ending_in_bare_lf_are_understood(connect):
    client = connect()
    client.sock.sendall(b"Action: Login\nUsername: tester\nSecret: s3cret\nActionID: lf\n\n")
    assert client.response("lf").get("Message") == "Authentication accepted"


def test_a_frame_without_action_is_an_error(ami):
    ami.send(("ActionID", "noaction"))
    reply = ami.response("noaction")
    assert reply.get("Message") == "Missing action in request"


def test_an_unknown_action_is_an_error(ami):
    reply = ami.action("Frobnicate")
    assert reply.get("Response") == "Error"
    assert reply.get("Message").startswith("Invalid/unknown command")


def test_ping_echoes_the_action_id(ami):
    reply = ami.action("Ping", action_id="abc@host 1")
    assert reply.pairs[:3] == [
        ("Response", "Success"),
        ("ActionID", "abc@host 1"),
        ("Ping", "Pong"),
    ]
    assert float(reply.get("Timestamp")) > 0


def test_logoff_says_goodbye_and_closes(ami):
    reply = ami.action("Logoff")
    assert reply.get("Response") == "Goodbye"
    assert reply.get("Message") == "Thanks for all the fish."
    assert ami.wait_closed()


def test_events_off_at_login_silences_events_but_not_responses(pbx, connect):
    quiet, loud = connect(), connect()
    quiet.login(Events="off")
    loud.login()
    loud.action("QueuePause", ("Interface", "PJSIP/200"), ("Paused", "1"))
    loud.wait_event("QueueMemberPause")
    assert quiet.action("Ping").get("Response") == "Success"
    assert quiet.events("QueueMemberPause") == []
    assert quiet.events("FullyBooted") == []


def test_an_event_mask_keeps_only_those_classes(pbx, connect):
    client = connect()
    client.login(Events="agent")
    client.action("QueuePause", ("Interface", "PJSIP/200"), ("Paused", "1"))
    client.wait_event("QueueMemberPause")
    pbx.centre.caller_arrives("ventas", "600000001")
    pbx.step(0)
    client.wait_event("QueueCallerJoin")
    assert client.events("Newchannel") == []


def test_the_events_action_switches_events_off(pbx, ami):
    reply = ami.action("Events", ("EventMask", "off"))
    assert reply.get("Events") == "Off"
    pbx.centre.caller_arrives("ventas", "600000001")
    pbx.step(0)
    assert ami.action("Ping").get("Response") == "Success"
    assert ami.events("QueueCallerJoin") == []


def test_it_starts_on_port_zero_and_stops_within_a_second(tmp_path):
    pbx = make_pbx(make_centre(tmp_path))
    pbx.start()
    client = AmiClient(pbx.port)
    client.login()
    started = time.monotonic()
    pbx.stop()
    assert time.monotonic() - started < 1.0
    assert client.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", pbx.port), timeout=0.5)
    client.close()


def test_a_running_clock_makes_calls_happen(tmp_path):
    centre = make_centre(tmp_path, behaviour=Behaviour(call_rate=600.0))
    with SimulatedPbx(centre, username=USERNAME, secret=SECRET, speed=50.0) as pbx:
        client = AmiClient(pbx.port)
        client.login()
        assert client.wait_event("QueueCallerJoin", timeout=3.0)
        client.close()
