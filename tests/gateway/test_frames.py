"""The AMI frame parser on recorded traffic: line ends, repeats, key case, banners, Follows."""

from __future__ import annotations

import pytest

from pbx.gateway.frames import Frame, FrameParser, encode_action
from tests.conftest import fixtures_path


def parse(name: str, chunk: int | None = None) -> tuple[FrameParser, list[Frame]]:
    data = fixtures_path("ami", name).read_bytes() + b"\r\n\r\n"
    parser = FrameParser()
    if chunk is None:
        return parser, parser.feed(data)
    frames = []
    for start in range(0, len(data), chunk):
        frames.extend(parser.feed(data[start : start + chunk]))
    return parser, frames


def test_it_keeps_every_repeated_chanvariable_in_order():
    _, frames = parse("goami2_call_sip_dial_bridge_hangup.txt")
    newchannel = frames[1]
    assert newchannel.name == "Newchannel"
    assert newchannel.get_all("ChanVariable") == ["realm=", "SIPDOMAIN=", "SIPCALLID="]
    assert ("ChanVariable", "SIPCALLID=") in newchannel.pairs
    # 129 ChanVariable lines in the file (grep -c), none lost across frames
    assert sum(len(f.get_all("ChanVariable")) for f in frames) == 129


def test_it_parses_crlf_and_lf_captures_alike():
    _, crlf = parse("goami2_queue_members.txt")
    _, lf = parse("issue_asterisk395_queuepause_queuememberpause_ast20.txt")
    assert crlf[1]["Message"] == "Interface unpaused successfully"
    assert lf[1]["PausedReason"] == "Pause1"
    assert lf[3]["PausedReason"] == ""  # `PausedReason: ` on unpause


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_it_gives_the_same_frames_however_the_bytes_arrive(chunk):
    _, whole = parse("goami2_call_sip_dial_bridge_hangup.txt")
    _, pieces = parse("goami2_call_sip_dial_bridge_hangup.txt", chunk)
    assert [f.pairs for f in pieces] == [f.pairs for f in whole]


def test_key_lookup_ignores_case():
    _, (event,) = parse("issue_pami17_queuememberadded_lowercase_keys.txt")
    assert event.name == "QueueMemberAdded"
    assert event["Location"] == "Local/7279@from-queue/n"
    assert event.get("MemberName") == "Local/7279@from-queue/n"
    assert "PAUSED" in event


def test_the_banner_is_read_even_with_a_frame_straight_after_it():
    parser, frames = parse("panoramisk_login_failed.txt")
    assert parser.banner == "Asterisk Call Manager/1.3"
    assert frames[0]["Action"] == "login"


def test_values_keep_colons_equals_and_xml():
    _, frames = parse("panoramisk_sip_notify.txt")
    assert frames[0].get_all("Variable")[4] == 'Content=<?xml version="1.0" encoding="UTF-8"?>'


def test_old_command_output_is_kept_until_end_command():
    _, frames = parse("panoramisk_command_core_show_version.txt")
    answer = frames[1]
    assert answer["Response"] == "Follows"
    assert answer["ActionID"] == "action/transaction_uid/1/1"
    assert answer.get_all("Output")[0].startswith("Asterisk 11.11.0+xivo.14.15")


def test_an_event_with_a_response_header_stays_an_event():
    _, (event,) = parse("issue_jade6_originateresponse_failure_channelid_with_spaces.txt")
    assert event.is_event
    assert event["Response"] == "Failure"
    assert event["Uniqueid"] == "test 12 123 1236"


def test_encoding_refuses_control_characters():
    assert encode_action([("Action", "Ping")]) == b"Action: Ping\r\n\r\n"
    with pytest.raises(ValueError, match="control character"):
        encode_action([("Action", "QueuePause"), ("Reason", "lunch\r\nAction: Hangup")])
    with pytest.raises(ValueError, match="control character"):
        encode_action([("Action", "QueuePause"), ("Reason", "lunch\x85Action: Hangup")])
