"""The simulator's events carry the headers real Asterisk sent in the recordings of fixtures/ami."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pytest

from pbx.simulator import Behaviour
from tests.conftest import fixtures_path
from tests.simulator.helpers import AmiClient, Frame, make_centre, make_pbx, parse_frames

# Recorded headers the simulator leaves out on purpose, each with the reason.
NOT_EXPECTED: dict[str, set[str]] = {
    # manager.conf `channelvars` adds these to every channel event: configuration, not protocol.
    "*": {"chanvariable", "destchanvariable"},
    # Asterisk <= 11 (panoramisk, PAMI recordings) called the member `Location` in member events;
    # 12+ say `Interface` there (QueueStatus rows still say `Location`, and the simulator does).
    "QueueMemberStatus": {"location", "skills"},
    "QueueMemberAdded": {"location"},
    # `Skills` comes from XiVO's patched app_queue, not from Asterisk.
    "QueueMember": {"skills"},
    # Asterisk 13-16 repeated PausedReason as `Reason`; the Asterisk 20.5 recording has no `Reason`.
    "QueueMemberPause": {"reason"},
}
# Headers that depend on the action's arguments: Originate to an application or to an extension.
VARIANT_KEYS = {"OriginateResponse": {"application", "data", "context", "exten"}}
# Recordings from Asterisk 13+ keep the header order Asterisk 20 uses; older ones do not.
ORDERED_SOURCES = ("goami2_", "issue_asterisk395_")
MUST_COMPARE = {
    "DeviceStateChange", "Newchannel", "Newstate", "DialBegin", "DialEnd", "BridgeEnter",
    "BridgeLeave", "Hangup", "QueueMemberPause", "QueueMember", "QueueParams",
    "QueueStatusComplete", "QueueMemberStatus", "QueueMemberAdded", "ExtensionStatus",
    "FullyBooted", "OriginateResponse",
}  # fmt: skip


def expected_keys(event: str, frame: Frame) -> list[str]:
    skip = NOT_EXPECTED["*"] | NOT_EXPECTED.get(event, set())
    return [k.lower() for k in frame.names() if k.lower() not in skip]


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[tuple[str, Frame]]]:
    folder = fixtures_path("ami")
    found: dict[str, list[tuple[str, Frame]]] = defaultdict(list)
    for path in sorted(folder.glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for frame in parse_frames(text, split_glued=True):
            if frame.event:
                found[frame.event].append((path.name, frame))
    return found


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> dict[str, list[Frame]]:
    """A busy two hours plus every action that produces events or list rows."""
    behaviour = dataclasses.replace(Behaviour(), call_rate=4.0, pauses_per_agent_hour=4.0)
    centre = make_centre(tmp_path_factory.mktemp("sim"), behaviour=behaviour, seed=11)
    pbx = make_pbx(centre)
    pbx.start()
    ami = AmiClient(pbx.port)
    try:
        ami.login()
        ami.action("QueueAdd", ("Queue", "ventas"), ("Interface", "PJSIP/202"))
        ami.action("QueuePause", ("Interface", "PJSIP/202"), ("Paused", "1"), ("Reason", "Comida"))
        ami.action("Setvar", ("Variable", "DEVICE_STATE(Custom:DND200)"), ("Value", "BUSY"))
        ami.action("Originate", ("Channel", "PJSIP/202"), ("Exten", "600111222"), ("Async", "1"))
        ami.action("Originate", ("Channel", "PJSIP/7"), ("Application", "Playback"), ("Async", "1"))
        for minute in range(120):
            pbx.step(60)
            if minute % 10 == 0 and centre.queues["ventas"].callers:
                ami.listing("QueueStatus")
                ami.listing("CoreShowChannels")
        for action in ("QueueStatus", "DeviceStateList", "ExtensionStateList", "PJSIPShowContacts"):
            ami.listing(action)
        ami.action("QueueRemove", ("Queue", "ventas"), ("Interface", "PJSIP/202"))
        ami.wait_event("QueueMemberRemoved")
    finally:
        ami.close()
        pbx.stop()
    found: dict[str, list[Frame]] = defaultdict(list)
    for frame in ami.frames:
        if frame.event:
            found[frame.event].append(frame)
    return found


def test_the_scenario_covers_the_recorded_event_types(recorded, simulated):
    assert set(recorded) & set(simulated) >= MUST_COMPARE
    for name in ("QueueCallerJoin", "QueueCallerAbandon", "AgentConnect", "AgentComplete",
                 "AgentRingNoAnswer", "QueueEntry", "CoreShowChannel", "ContactList"):  # fmt: skip
        assert simulated[name], name


def _kind(frame: Frame) -> bool:
    """List rows (DeviceStateList's DeviceStateChange…) carry an ActionID and no Privilege."""
    return frame.get("ActionID") is not None


def test_every_recorded_header_set_is_matched(recorded, simulated):
    compared = 0
    for event in sorted(set(recorded) & set(simulated)):
        for kind in (False, True):
            ours = [{k.lower() for k in f.names()} for f in simulated[event] if _kind(f) == kind]
            instances = [
                (source, set(expected_keys(event, frame)))
                for source, frame in recorded[event]
                if _kind(frame) == kind
            ]
            if not instances:
                continue
            assert ours, (event, "no simulated instance", kind)
            for source, keys in instances:
                assert any(keys <= mine for mine in ours), (event, source, keys - ours[0])
                compared += 1
            # Headers every recording of this event has must be in every simulated one.
            common = set.intersection(*(keys for _, keys in instances))
            common -= VARIANT_KEYS.get(event, set())
            for mine in ours:
                assert common <= mine, (event, common - mine)
    assert compared >= 50


def test_headers_come_in_the_order_of_asterisk_13_and_later(recorded, simulated):
    compared = 0
    for event in sorted(set(recorded) & set(simulated)):
        for source, frame in recorded[event]:
            if not source.startswith(ORDERED_SOURCES):
                continue
            keys = expected_keys(event, frame)
            wanted = set(keys)
            for mine in simulated[event]:
                ordered = [k.lower() for k in mine.names() if k.lower() in wanted]
                if set(ordered) == wanted:
                    assert ordered == keys, (event, source)
                    compared += 1
                    break
    assert compared >= 20


def test_queue_member_rows_say_location_and_member_events_say_interface(simulated):
    assert all(f.get("Location") and not f.get("Interface") for f in simulated["QueueMember"])
    assert all(f.get("Interface") for f in simulated["QueueMemberStatus"])
