"""Events the call-centre model sends over TCP as calls come and go."""

from __future__ import annotations

import dataclasses

import pytest

from pbx.simulator import QUIET
from tests.simulator.helpers import AmiClient, make_centre, make_pbx

ALWAYS_ANSWER = dataclasses.replace(
    QUIET, answer_probability=1.0, ring_seconds=(3.0, 3.0), talk_seconds=(60.0, 60.0)
)
NEVER_ANSWER = dataclasses.replace(QUIET, answer_probability=0.0)


@pytest.fixture
def driven(tmp_path):
    """Start a simulator with a given behaviour; returns (pbx, logged-in client)."""
    started = []

    def make(behaviour):
        pbx = make_pbx(make_centre(tmp_path, behaviour=behaviour))
        pbx.start()
        client = AmiClient(pbx.port)
        client.login()
        started.append((pbx, client))
        return pbx, client

    yield make
    for pbx, client in started:
        client.close()
        pbx.stop()


def names(client: AmiClient) -> list[str]:
    return [f.event for f in client.frames if f.event and f.event != "FullyBooted"]


def test_an_answered_queue_call_from_join_to_hangup(driven):
    pbx, ami = driven(ALWAYS_ANSWER)
    pbx.centre.caller_arrives("ventas", "600111222")
    pbx.step(0)
    join = ami.wait_event("QueueCallerJoin")
    assert (join.get("Queue"), join.get("Position"), join.get("Count")) == ("ventas", "1", "1")
    assert join.get("CallerIDNum") == "600111222"
    called = ami.wait_event("AgentCalled")
    assert called.get("Channel") == join.get("Channel")
    assert called.get("DestChannel").startswith("PJSIP/200-")
    assert (called.get("MemberName"), called.get("Interface")) == ("Ana García", "PJSIP/200")
    assert ami.wait_event("DeviceStateChange", Device="PJSIP/200").get("State") == "RINGING"
    assert ami.wait_event("ExtensionStatus", Exten="200").get("StatusText") == "Ringing"
    assert ami.wait_event("QueueMemberStatus", Interface="PJSIP/200").get("Status") == "6"

    pbx.step(3)
    connect = ami.wait_event("AgentConnect")
    assert (connect.get("HoldTime"), connect.get("RingTime")) == ("3", "3")
    assert ami.wait_event("DialEnd").get("DialStatus") == "ANSWER"
    leave = ami.wait_event("QueueCallerLeave")
    assert (leave.get("Count"), leave.get("Position")) == ("0", "1")
    assert ami.wait_event("DeviceStateChange", Device="PJSIP/200", State="INUSE")
    assert ami.wait_event("QueueMemberStatus", Status="2").get("InCall") == "1"
    ami.wait_event("BridgeEnter", BridgeNumChannels="2")

    pbx.step(60)
    complete = ami.wait_event("AgentComplete")
    assert (complete.get("HoldTime"), complete.get("TalkTime")) == ("3", "60")
    assert complete.get("Reason") in {"caller", "agent"}
    done = ami.wait_event("QueueMemberStatus", Status="1", CallsTaken="1")
    assert done.get("InCall") == "0"
    ami.wait_count("Hangup", 2)
    order = names(ami)
    assert order.index("QueueCallerJoin") < order.index("AgentCalled") < order.index("DialBegin")
    assert order.index("DialEnd") < order.index("AgentConnect") < order.index("BridgeEnter")
    assert order.index("BridgeLeave") < order.index("BridgeDestroy") < order.index("Hangup")
    assert order.count("Hangup") == 2


def test_an_unanswered_agent_rings_out_and_the_next_one_is_tried(driven):
    pbx, ami = driven(NEVER_ANSWER)
    pbx.centre.caller_arrives("ventas", "600111222", patience=600)
    pbx.step(15)
    miss = ami.wait_event("AgentRingNoAnswer")
    assert (miss.get("Interface"), miss.get("RingTime")) == ("PJSIP/200", "15000")
    assert ami.wait_event("DialEnd").get("DialStatus") == "NOANSWER"
    pbx.step(5)
    assert ami.wait_event("AgentCalled", Interface="PJSIP/201")


def test_a_caller_who_waits_too_long_abandons(driven):
    pbx, ami = driven(QUIET)
    for interface in ("PJSIP/200", "PJSIP/201"):
        pbx.centre.queue_pause(interface, True, queue="ventas")
    pbx.centre.caller_arrives("ventas", "600111222", patience=42)
    pbx.step(42)
    abandon = ami.wait_event("QueueCallerAbandon")
    assert (abandon.get("Position"), abandon.get("OriginalPosition"), abandon.get("HoldTime")) == (
        "1",
        "1",
        "42",
    )
    assert ami.wait_event("QueueCallerLeave").get("Count") == "0"
    hangup = ami.wait_event("Hangup")
    assert (hangup.get("Cause"), hangup.get("Cause-txt")) == ("16", "Normal Clearing")


def test_async_originate_rings_the_source_then_dials_the_destination(driven):
    pbx, ami = driven(ALWAYS_ANSWER)
    reply = ami.action(
        "Originate",
        ("Channel", "PJSIP/200"),
        ("Context", "from-internal"),
        ("Exten", "201"),
        ("Priority", "1"),
        ("Async", "true"),
        action_id="orig-1",
    )
    assert (reply.get("Response"), reply.get("Message")) == (
        "Success",
        "Originate successfully queued",
    )
    ringing = ami.wait_event("Newstate", ChannelStateDesc="Ringing")
    assert ringing.get("Channel").startswith("PJSIP/200-")
    pbx.step(5)
    response = ami.wait_event("OriginateResponse")
    assert response.pairs[:5] == [
        ("Event", "OriginateResponse"),
        ("Privilege", "call,all"),
        ("ActionID", "orig-1"),
        ("Response", "Success"),
        ("Channel", ringing.get("Channel")),  # the channel's name once it exists (manager.c)
    ]
    assert (response.get("Reason"), response.get("Exten")) == ("4", "201")
    dial = ami.wait_event("DialBegin")
    assert dial.get("Channel") == ringing.get("Channel")
    assert dial.get("DestChannel").startswith("PJSIP/201-")
    pbx.step(3)
    assert ami.wait_event("DialEnd").get("DialStatus") == "ANSWER"
    assert ami.wait_event("DeviceStateChange", Device="PJSIP/201", State="INUSE")
    pbx.step(120)
    assert len(ami.wait_count("Hangup", 2)) == 2


def test_originate_to_an_unknown_device_fails_like_asterisk(pbx, ami):
    reply = ami.action(
        "Originate",
        ("Channel", "PJSIP/999"),
        ("Application", "Playback"),
        ("Data", "demo-congrats"),
        ("Async", "yes"),
        action_id="orig-2",
    )
    assert reply.get("Response") == "Success"
    failure = ami.wait_event("OriginateResponse")
    assert ami.frames.index(reply) < ami.frames.index(failure)
    assert [(k, v) for k, v in failure.pairs[2:]] == [
        ("ActionID", "orig-2"),
        ("Response", "Failure"),
        ("Channel", "PJSIP/999"),
        ("Application", "Playback"),
        ("Data", "demo-congrats"),
        ("Reason", "0"),
        ("Uniqueid", "<null>"),
        ("CallerIDNum", "<unknown>"),
        ("CallerIDName", "<unknown>"),
    ]


def test_originate_keeps_a_caller_chosen_channel_id(pbx, ami):
    ami.action(
        "Originate",
        ("Channel", "PJSIP/202"),
        ("Exten", "200"),
        ("Context", "from-internal"),
        ("Async", "true"),
        ("ChannelId", "click 42"),
    )
    assert ami.wait_event("Newchannel").get("Uniqueid") == "click 42"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ((("Channel", "sip:arabbit@example.com"),), "Invalid channel"),
        ((), "Channel not specified"),
        ((("Channel", "PJSIP/999"), ("Exten", "200"), ("Async", "false")), "Originate failed"),
        ((("Channel", "PJSIP/200"), ("Priority", "first")), "Invalid priority"),
    ],
)
def test_originate_errors(ami, headers, message):
    reply = ami.action("Originate", *headers)
    assert (reply.get("Response"), reply.get("Message")) == ("Error", message)
