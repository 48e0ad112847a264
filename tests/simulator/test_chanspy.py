"""ChanSpy run by an Originate, as Asterisk 20/22 run it (apps/app_chanspy.c; seen on the real
PBX of tests/realpbx: the events, their headers and order, the hang-up cause)."""

from __future__ import annotations

import dataclasses

import pytest

from pbx.simulator import QUIET, CallCentre, DeviceConfig, History
from pbx.simulator.callcentre import OriginateSpec, chanspy_arguments
from tests.simulator.helpers import START, small_config

SUPERVISOR = "PJSIP/250"
BEHAVIOUR = dataclasses.replace(
    QUIET,
    answer_probability=1.0,
    ring_seconds=(2.0, 2.0),
    talk_seconds=(30.0, 30.0),
    agent_hangup_probability=0.0,
    originate_answer_seconds=(1.0, 1.0),
)
# The header names of ChanSpyStart/Stop as Asterisk 22.10.1 and 20.20.1 send them.
CHANNEL_KEYS = [
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
]
SPY_EVENT_KEYS = [
    "Event",
    "Privilege",
    *(f"Spyer{key}" for key in CHANNEL_KEYS),
    *(f"Spyee{key}" for key in CHANNEL_KEYS),
]


@pytest.fixture
def centre(tmp_path) -> CallCentre:
    config = small_config()
    config = dataclasses.replace(
        config, devices=(*config.devices, DeviceConfig(SUPERVISOR, "250", "Marta Sup", "acme"))
    )
    return CallCentre(
        config,
        behaviour=BEHAVIOUR,
        seed=3,
        start_time=START,
        history=History(tmp_path / "queue_log", tmp_path / "Master.csv"),
    )


def answered_call(centre: CallCentre) -> str:
    """A caller in `ventas` answered by an agent; the agent's channel name."""
    centre.caller_arrives("ventas", "600111222")
    centre.step(3)
    (agent,) = [ch for ch in centre.channels.values() if ch.device in ("PJSIP/200", "PJSIP/201")]
    assert agent.state_desc == "Up"
    centre.drain_events()
    return agent.name


def spy(centre: CallCentre, data: str) -> None:
    centre.originate(
        OriginateSpec(
            channel=SUPERVISOR,
            application="ChanSpy",
            data=data,
            caller_id='"Escucha 200" <200>',
            action_id="spy-1",
        )
    )


def spy_events(centre: CallCentre) -> list:
    return [
        m
        for m in centre.drain_events()
        if SUPERVISOR in (m.get("Channel") or m.get("SpyerChannel") or "")
    ]


def test_the_supervisor_rings_answers_and_listens_until_the_agent_hangs_up(centre, tmp_path):
    cdr = tmp_path / "Master.csv"
    agent = answered_call(centre)
    spy(centre, f"{agent},qES")
    centre.step(1.05)
    events = spy_events(centre)
    assert [m.event for m in events] == [
        "Newchannel",
        "NewConnectedLine",
        "Newstate",  # Ringing
        "Newstate",  # Up (Asterisk sends OriginateResponse from another thread: either first)
        "OriginateResponse",
    ]
    connected = events[1]
    assert (connected.get("CallerIDNum"), connected.get("CallerIDName")) == ("200", "Escucha 200")
    assert (connected.get("ConnectedLineNum"), connected.get("ConnectedLineName")) == (
        "200",
        "Escucha 200",
    )
    response = events[4]
    assert (response.get("Response"), response.get("Application"), response.get("Data")) == (
        "Success",
        "ChanSpy",
        f"{agent},qES",
    )
    centre.step(0.1)  # ChanSpy's 100 ms wait for a digit, then it finds the channel
    (start,) = spy_events(centre)
    assert start.event == "ChanSpyStart"
    assert [key for key, _ in start] == SPY_EVENT_KEYS
    assert (start.get("SpyerChannelStateDesc"), start.get("SpyeeChannel")) == ("Up", agent)
    assert centre.device_states()[SUPERVISOR] == "INUSE"
    (row,) = [ch for ch in centre.channels.values() if ch.device == SUPERVISOR]
    assert (row.application, row.app_data) == ("ChanSpy", f"{agent},qES")

    centre.step(30)  # the call ends: E hangs the supervisor up too
    events = spy_events(centre)
    assert [m.event for m in events] == ["ChanSpyStop", "Hangup"]
    assert events[0].get("SpyeeChannel") == agent
    assert (events[1].get("Cause"), events[1].get("Cause-txt")) == ("0", "Unknown")
    assert centre.device_states()[SUPERVISOR] == "NOT_INUSE"
    assert not centre.spies
    spy_cdr = [line for line in cdr.read_text().splitlines() if SUPERVISOR in line]
    assert len(spy_cdr) == 1
    assert f'"ChanSpy","{agent},qES"' in spy_cdr[0]
    assert '"ANSWERED"' in spy_cdr[0]


def test_with_nothing_to_spy_on_S_hangs_up_at_once(centre):
    spy(centre, "PJSIP/200-000000ff,qES")
    centre.step(1)
    spy_events(centre)
    centre.step(0.1)
    events = spy_events(centre)
    assert [m.event for m in events] == ["Hangup"]
    assert events[0].get("Cause") == "0"
    assert SUPERVISOR not in {ch.device for ch in centre.channels.values()}


def test_without_E_or_S_it_waits_for_the_next_channel_of_the_prefix(centre):
    spy(centre, "PJSIP/20,q")
    centre.step(1.1)
    assert "ChanSpyStart" not in [m.event for m in spy_events(centre)]  # nothing to spy on yet
    assert centre.device_states()[SUPERVISOR] == "INUSE"
    centre.caller_arrives("ventas", "600111222")
    centre.step(3)  # the agent's phone rings: without `b` a ringing channel is spied on too
    (start,) = spy_events(centre)
    assert (start.event, start.get("SpyeeChannel")[:10]) == ("ChanSpyStart", "PJSIP/200-")
    centre.step(30)
    assert [m.event for m in spy_events(centre)] == ["ChanSpyStop"]  # still up, scanning
    assert SUPERVISOR in {ch.device for ch in centre.channels.values()}


def test_b_spies_only_on_bridged_channels(centre):
    centre.caller_arrives("ventas", "600111222")
    centre.step(0.5)  # ringing: the agent's channel exists, not bridged yet
    ringing = [ch for ch in centre.channels.values() if ch.name.startswith("PJSIP/20")]
    assert [ch.state_desc for ch in ringing] == ["Ringing"]
    assert not ringing[0].bridge_id
    spy(centre, "PJSIP/20,qbS")
    centre.step(1.1)
    events = spy_events(centre)
    assert [m.event for m in events][-1] == "Hangup"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("PJSIP/201-0000001a,qES", ("PJSIP/201-0000001a", "qES")),
        ("PJSIP/201,qv(-2)wE", ("PJSIP/201", "qvwE")),
        ("all,q", ("", "q")),
        ("", ("", "")),
        ("SIP/1", ("SIP/1", "")),
    ],
)
def test_chanspy_arguments(data, expected):
    assert chanspy_arguments(data) == expected
