"""snapshot(): list actions collected by ActionID until their Complete event."""

from __future__ import annotations

import pytest

from pbx.gateway import PbxActionFailed, PbxUnavailable
from tests.amireplay import frame_get

# No recording answers CoreShowChannels, PJSIPShowContacts or a QueueStatus with callers: these
# frames follow the event layouts of the Asterisk 20 AMI documentation.
CHANNELS = [
    ["Response: Success", "ActionID: rec", "EventList: start", "Message: Channels will follow"],
    [
        "Event: CoreShowChannel",
        "ActionID: rec",
        "Channel: PJSIP/201-00000001",
        "ChannelState: 6",
        "ChannelStateDesc: Up",
        "CallerIDNum: 201",
        "ConnectedLineNum: 600",
        "Context: from-internal",
        "Exten: 600",
        "Uniqueid: 1700000000.1",
        "Linkedid: 1700000000.0",
        "Application: Dial",
        "Duration: 00:01:05",
    ],
    ["Event: CoreShowChannelsComplete", "ActionID: rec", "EventList: Complete", "ListItems: 1"],
]
CONTACTS = [
    [
        "Response: Success",
        "ActionID: rec",
        "EventList: start",
        "Message: A listing of Contacts follows",
    ],
    [
        "Event: ContactList",
        "ActionID: rec",
        "ObjectType: contact",
        "ObjectName: 201;@c0ffee",
        "Uri: sip:201@10.0.0.5:5060",
        "Status: Reachable",
        "Endpoint: 201",
    ],
    ["Event: ContactListComplete", "ActionID: rec", "EventList: Complete", "ListItems: 1"],
]
CALLER = [
    "Event: QueueEntry",
    "Queue: Books_12",
    "Position: 1",
    "Channel: SIP/9170-12-0000003c",
    "Uniqueid: 1598887681.60",
    "CallerIDNum: 9170",
    "Wait: 12",
]


def with_id(frame, action_id="rec"):
    return [frame[0], f"ActionID: {action_id}", *frame[1:]]


def device_state_list(capture):
    """A DeviceStateList answer made of the DeviceStateChange events recorded in a call."""
    changes = capture("goami2_call_sip_dial_bridge_hangup.txt").events("DeviceStateChange")
    return [
        [
            "Response: Success",
            "ActionID: rec",
            "EventList: start",
            "Message: Device State Changes will follow",
        ],
        *(with_id(frame) for frame in changes),
        [
            "Event: DeviceStateListComplete",
            "ActionID: rec",
            "EventList: Complete",
            f"ListItems: {len(changes)}",
        ],
    ]


def test_snapshot_of_an_asterisk_11_pbx(server, gateway, capture):
    # Asterisk 11: no DeviceStateList (unknown action), QueueStatus without `EventList: start`.
    server.expect("QueueStatus", capture("panoramisk_queue_status.txt").server_frames())
    server.expect("CoreShowChannels", CHANNELS)
    snap = gateway.snapshot()
    assert snap.device_states == {}
    assert snap.contacts == []
    assert len(snap.queue_members) == 6
    last = snap.queue_members[-1]
    assert (last.queue, last.member_name, last.interface) == (
        "xxxxxxxxxxxxxxxx-tous",
        "Agent/999",
        "Local/id-12@agentcallback",
    )
    assert (last.state_interface, last.status, last.paused) == ("SIP/000000", 5, True)
    assert snap.queue_members[0].calls_taken == 2
    assert snap.queue_callers == []


def test_snapshot_of_a_newer_pbx(server, gateway, capture):
    server.expect("DeviceStateList", device_state_list(capture))
    books = dict(
        (frame_get(a, "Queue"), r) for a, r in capture("goami2_queuestatus_queues.txt").exchanges()
    )["Books_12"]
    server.expect(
        "QueueStatus", [*books[:-1], with_id(CALLER, frame_get(books[0], "ActionID")), books[-1]]
    )
    server.expect("CoreShowChannels", CHANNELS)
    server.expect("PJSIPShowContacts", CONTACTS)
    snap = gateway.snapshot()
    # the recorded call's DeviceStateChange events, last state per device
    assert snap.device_states == {
        "SIP/9170-12": "NOT_INUSE",
        "SIP/okon.ferry.sip.com": "INVALID",
    }
    assert [(m.member_name, m.interface, m.paused, m.in_call) for m in snap.queue_members] == [
        ("9921@okon.ferry.sip.com", "Local/9921-12@from-queue/n", False, False),
        ("9922@okon.ferry.sip.com", "Local/9922-12@from-queue/n", False, False),
    ]
    (caller,) = snap.queue_callers
    assert (caller.queue, caller.position, caller.caller_id_num, caller.wait_seconds) == (
        "Books_12",
        1,
        "9170",
        12,
    )
    (channel,) = snap.channels
    assert (channel.channel, channel.state, channel.duration_seconds) == (
        "PJSIP/201-00000001",
        "Up",
        65,
    )
    assert (channel.linked_id, channel.application) == ("1700000000.0", "Dial")
    (contact,) = snap.contacts
    assert (contact.aor, contact.uri, contact.status) == (
        "201",
        "sip:201@10.0.0.5:5060",
        "Reachable",
    )
    assert snap.taken_at.tzinfo is not None


def test_events_between_a_response_and_its_list_go_to_the_listener(server, gateway, capture):
    unsolicited = capture("goami2_queue_members.txt").events("DeviceStateChange")
    queue = capture("panoramisk_queue_status.txt").server_frames()
    server.expect("QueueStatus", [queue[0], *unsolicited, *queue[1:]])
    server.expect("CoreShowChannels", CHANNELS)
    heard = []
    gateway.events(heard.append)
    snap = gateway.snapshot()
    assert len(snap.queue_members) == 6
    gateway.close()
    assert [e["Device"] for e in heard] == [frame_get(f, "Device") for f in unsolicited]


@pytest.mark.parametrize(
    "key_case",
    [str.lower, lambda key: "Actionid" if key.lower() == "actionid" else key],
    ids=["lower-case keys", "Actionid"],
)
def test_list_answers_with_odd_key_case_are_matched(server, gateway, capture, key_case):
    server.expect(
        "QueueStatus", capture("panoramisk_queue_status.txt").server_frames(), key_case=key_case
    )
    server.expect("CoreShowChannels", CHANNELS, key_case=key_case)
    snap = gateway.snapshot()
    assert len(snap.queue_members) == 6
    assert snap.queue_members[-1].paused is True
    assert len(snap.channels) == 1


def test_a_list_action_refused_by_the_pbx_raises(server, gateway):
    server.expect("QueueStatus", [["Response: Error", "Message: Permission denied"]])
    with pytest.raises(PbxActionFailed, match="Permission denied"):
        gateway.snapshot()


def test_a_list_cut_before_its_complete_event_is_unavailable(server, gateway, capture):
    server.expect(
        "QueueStatus", capture("panoramisk_queue_status.txt").server_frames(), drop_after=3
    )
    with pytest.raises(PbxUnavailable, match="dropped"):
        gateway.snapshot()


def test_a_list_that_never_completes_times_out(server, gateway, capture):
    frames = capture("panoramisk_queue_status.txt").server_frames()
    server.expect("QueueStatus", frames[:-1])  # no QueueStatusComplete
    with pytest.raises(PbxUnavailable, match="no answer within"):
        gateway.snapshot()
