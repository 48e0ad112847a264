"""AMI events as typed events: every spelling Asterisk uses read in the gateway, on real traffic."""

from __future__ import annotations

import pytest

from pbx.gateway.events import (
    CallerJoined,
    CallerLeft,
    ChannelChanged,
    ChannelCreated,
    ChannelHungUp,
    DeviceStateChanged,
    MemberChanged,
    MemberRemoved,
    OtherEvent,
    PbxBooted,
    ami_flag,
    parse_event,
)
from pbx.gateway.frames import Frame, FrameParser
from tests.amireplay import Capture
from tests.conftest import fixtures_path


def recorded(name: str) -> list[Frame]:
    frames = []
    for lines in Capture.load(fixtures_path("ami", name)).events():
        frames.extend(FrameParser().feed(("\r\n".join(lines) + "\r\n\r\n").encode()))
    return frames


def event(**headers) -> Frame:
    return Frame([(key, str(value)) for key, value in headers.items()])


def test_asterisk_20_pause_and_unpause_as_recorded():
    pause, unpause = [
        parse_event(f)
        for f in recorded("issue_asterisk395_queuepause_queuememberpause_ast20.txt")
        if f.name == "QueueMemberPause"
    ]
    assert pause == MemberChanged(
        queue="main",
        interface="Local/129@intern",
        member_name="Local/129@intern",
        state_interface="PJSIP/129",
        status=1,
        paused=True,
        paused_reason="Pause1",
        in_call=False,
        calls_taken=0,
    )
    assert (unpause.paused, unpause.paused_reason) == (False, "")


def test_an_older_asterisk_member_status_with_location_and_no_paused_reason():
    statuses = [
        parse_event(f)
        for f in recorded("panoramisk_agent_not_in_pause.txt")
        if f.name == "QueueMemberStatus"
    ]
    assert statuses
    first = statuses[0]
    assert (first.queue, first.interface, first.member_name) == (
        "maisonvoyance-tous",
        "Local/id-12@agentcallback",
        "Agent/999",
    )
    assert (first.state_interface, first.status, first.paused) == ("SIP/00000", 2, True)
    assert first.paused_reason == ""


def test_a_recorded_call_gives_its_channel_events_in_order():
    typed = [parse_event(f) for f in recorded("goami2_call_sip_dial_bridge_hangup.txt")]
    typed = [e for e in typed if e is not None]
    created = [e for e in typed if isinstance(e, ChannelCreated)]
    assert created[0] == ChannelCreated(
        unique_id="1598887681.60",
        channel="SIP/9170-12-0000003c",
        linked_id="1598887681.60",
        state="Down",
        caller_id_num="9170",
        connected_line_num="<unknown>",
        exten="9898",
        context="default",
    )
    hung_up = {e.unique_id for e in typed if isinstance(e, ChannelHungUp)}
    assert {c.unique_id for c in created} <= hung_up
    assert any(isinstance(e, ChannelChanged) and e.state for e in typed)


@pytest.mark.parametrize(
    ("reason_header", "version"), [("PausedReason", "18 and later"), ("Reason", "16")]
)
def test_the_pause_reason_under_either_name(reason_header, version):
    changed = parse_event(
        event(Event="QueueMemberPause", Queue="q", Interface="PJSIP/201", Paused=1,
              **{reason_header: "Lunch"})
    )  # fmt: skip
    assert changed.paused_reason == "Lunch", version


def test_a_header_the_event_did_not_carry_is_none_not_zero():
    changed = parse_event(event(Event="QueueMemberPause", Queue="q", Interface="PJSIP/201"))
    assert (changed.status, changed.calls_taken, changed.state_interface) == (None, None, None)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (event(Event="DeviceStateChange", Device="PJSIP/201", State="inuse"),
         DeviceStateChanged("PJSIP/201", "INUSE")),
        (event(Event="DeviceStateChange", Device="Custom:DND201"),
         DeviceStateChanged("Custom:DND201", "UNKNOWN")),
        (event(Event="QueueMemberRemoved", Queue="q", Location="PJSIP/201"),
         MemberRemoved("q", "PJSIP/201")),
        (event(Event="Join", Queue="q", Uniqueid="1.1", Channel="PJSIP/t-1", CallerIDNum="600",
               Position=2), CallerJoined("q", "1.1", "PJSIP/t-1", "600", 2)),
        (event(Event="QueueCallerAbandon", Queue="q", Uniqueid="1.1"), CallerLeft("q", "1.1")),
        (event(Event="Leave", Queue="q", Uniqueid="1.1"), CallerLeft("q", "1.1")),
        (event(Event="newconnectedline", Uniqueid="1.1", ConnectedLineNum="600"),
         ChannelChanged("1.1", "", "600")),
    ],
)  # fmt: skip
def test_every_spelling_gives_one_typed_event(frame, expected):
    assert parse_event(frame) == expected


def test_events_the_live_state_does_not_use_are_other_events_still_counted():
    assert parse_event(event(Event="VarSet", Variable="x")) == OtherEvent("VarSet")
    assert parse_event(event(Event="DeviceStateChange", State="INUSE")) == OtherEvent(
        "DeviceStateChange"
    )
    assert parse_event(event(Response="Success")) == OtherEvent("")


@pytest.mark.parametrize(("uptime", "seen"), [("1234.5", 1234.5), ("", None), ("soon", None)])
def test_fully_booted_carries_the_uptime_a_restart_is_told_by(uptime, seen):
    assert parse_event(event(Event="FullyBooted", Uptime=uptime)) == PbxBooted(seen)


@pytest.mark.parametrize(("value", "flag"), [("1", True), ("true", True), (" yes", True),
                                             ("0", False), ("", False), (None, False)])  # fmt: skip
def test_asterisk_booleans(value, flag):
    assert ami_flag(value) is flag
