"""The call-centre model driven with step(): determinism, device states, pauses, membership."""

from __future__ import annotations

import dataclasses

import pytest

from pbx.simulator import QUIET, Behaviour, CallCentre, CentreConfig, MemberConfig, QueueConfig
from pbx.simulator.callcentre import MemberNotDynamic
from tests.simulator.helpers import START, make_centre, small_config

BUSY = dataclasses.replace(Behaviour(), call_rate=3.0, pauses_per_agent_hour=2.0)


def run(tmp_path, seed: int, steps: list[float]) -> tuple[list[bytes], str, str]:
    centre = make_centre(tmp_path, behaviour=BUSY, seed=seed)
    for seconds in steps:
        centre.step(seconds)
    centre.history.close()
    events = [m.encode() for m in centre.drain_events()]
    return events, (tmp_path / "queue_log").read_text(), (tmp_path / "Master.csv").read_text()


def test_the_same_seed_gives_the_same_day(tmp_path):
    first = run(tmp_path / "a", 42, [60.0] * 60)
    second = run(tmp_path / "b", 42, [60.0] * 60)
    assert first == second
    assert len(first[0]) > 500


def test_the_step_size_does_not_change_what_happens(tmp_path):
    coarse = run(tmp_path / "a", 42, [3600.0])
    fine = run(tmp_path / "b", 42, [0.5] * 7200)
    assert coarse == fine


def test_another_seed_gives_another_day(tmp_path):
    assert run(tmp_path / "a", 1, [3600.0])[1] != run(tmp_path / "b", 2, [3600.0])[1]


def test_device_states_follow_the_call(tmp_path):
    behaviour = dataclasses.replace(
        QUIET, answer_probability=1.0, ring_seconds=(4.0, 4.0), talk_seconds=(30.0, 30.0)
    )
    centre = make_centre(tmp_path, behaviour=behaviour)
    assert centre.device_states()["PJSIP/200"] == "NOT_INUSE"
    centre.caller_arrives("ventas", "600111222")
    centre.step(1)
    assert centre.device_states()["PJSIP/200"] == "RINGING"
    centre.step(4)
    assert centre.device_states()["PJSIP/200"] == "INUSE"
    assert centre.queues["ventas"].members["PJSIP/200"].in_call
    centre.step(30)
    assert centre.device_states()["PJSIP/200"] == "NOT_INUSE"
    assert centre.queues["ventas"].members["PJSIP/200"].calls_taken == 1
    changes = [
        m.get("State") for m in centre.drain_events()
        if m.event == "DeviceStateChange" and m.get("Device") == "PJSIP/200"
    ]  # fmt: skip
    assert changes == ["RINGING", "INUSE", "NOT_INUSE"]


def test_a_second_caller_rings_the_other_agent(tmp_path):
    centre = make_centre(tmp_path, behaviour=dataclasses.replace(QUIET, answer_probability=1.0))
    centre.caller_arrives("ventas", "600000001")
    centre.caller_arrives("ventas", "600000002")
    centre.step(0)
    states = centre.device_states()
    assert (states["PJSIP/200"], states["PJSIP/201"]) == ("RINGING", "RINGING")


def test_paused_agents_get_no_calls(tmp_path):
    centre = make_centre(tmp_path)
    centre.queue_pause("PJSIP/200", True, reason="Comida")
    centre.queue_pause("PJSIP/201", True, queue="ventas", reason="Descanso")
    centre.caller_arrives("ventas", "600111222")
    centre.step(10)
    assert all(ch.device == "PJSIP/trunk" for ch in centre.channels.values())
    centre.queue_pause("PJSIP/201", False, queue="ventas")
    centre.step(0)
    assert centre.device_states()["PJSIP/201"] == "RINGING"


def test_pausing_everywhere_logs_pauseall_first(tmp_path):
    centre = make_centre(tmp_path)
    centre.queue_pause("PJSIP/201", True, reason="Descanso")
    lines = [line.split("|")[1:] for line in (tmp_path / "queue_log").read_text().splitlines()]
    assert lines == [
        # Asterisk 20.20 and 22.10 log the reason with PAUSEALL too (the differential test)
        ["NONE", "NONE", "Luis Pérez", "PAUSEALL", "Descanso"],
        ["NONE", "ventas", "Luis Pérez", "PAUSE", "Descanso"],
        ["NONE", "soporte", "Luis Pérez", "PAUSE", "Descanso"],
    ]


def test_agents_pause_and_come_back_on_their_own(tmp_path):
    behaviour = dataclasses.replace(QUIET, pauses_per_agent_hour=6.0)
    centre = make_centre(tmp_path, behaviour=behaviour, seed=3)
    centre.step(4 * 3600)
    events = [line.split("|")[4:] for line in (tmp_path / "queue_log").read_text().splitlines()]
    pauses = [e for e in events if e[0] == "PAUSE"]
    assert {e[1] for e in pauses} == {"Descanso", "Comida"}
    assert any(e[0] == "UNPAUSE" for e in events)


def test_a_static_member_cannot_be_removed_as_asterisk_refuses_it():
    config = small_config()
    static = QueueConfig(
        "fijos", "acme", (MemberConfig("PJSIP/200", "Ana García", membership="static"),)
    )
    centre = CallCentre(
        CentreConfig(companies=config.companies, devices=config.devices, queues=(static,)),
        behaviour=QUIET,
        seed=1,
        start_time=START,
    )
    with pytest.raises(MemberNotDynamic):
        centre.queue_remove("fijos", "PJSIP/200")
    assert "PJSIP/200" in centre.queues["fijos"].members
    added = centre.queue_add("fijos", "PJSIP/201", member_name="Luis Pérez")
    assert added.membership == "dynamic"
    centre.queue_remove("fijos", "PJSIP/201")
    assert "PJSIP/201" not in centre.queues["fijos"].members
