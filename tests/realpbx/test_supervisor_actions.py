"""The dashboard's supervisor actions against a real Asterisk, judged by what Asterisk reports:
QueueStatus for pauses and memberships; for listen, whisper and barge, the supervisor's real
phone (206) ringing and answering, and a channel running ChanSpy on the agent's call."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.realpbx import pbx
from tests.realpbx.conftest import WAIT, members_of
from tests.realpbx.helpers import call_queue
from tests.realpbx.layouts import NAMES, QUEUES

# What the simulator models of a ChanSpy originate (it sends no DialBegin/DialEnd for any
# originate), compared with what Asterisk sends for the same supervisor's channel.
SPY_EVENTS = {
    "newchannel",
    "newconnectedline",
    "newstate",
    "originateresponse",
    "chanspystart",
    "chanspystop",
    "hangup",
}
SUPERVISOR_PHONE = "206"  # callcentre/pjsip.conf has endpoints 201-206; the harness runs 201-205
FLAGS = ("may_pause", "may_log_agents", "may_listen", "may_whisper", "may_barge")


@pytest.fixture
def dashboard(run, swan):
    """A supervisor of acme with every permission and phone PJSIP/206 (registered for the test),
    logged in; removed afterwards with the audit entries it wrote."""
    from dashboard.models import AuditEntry, Supervisor
    from pbx.models import Company

    user = get_user_model().objects.create_user("realpbx-supervisor", password="x")
    supervisor = Supervisor.objects.create(
        user=user, phone=f"PJSIP/{SUPERVISOR_PHONE}", **dict.fromkeys(FLAGS, True)
    )
    supervisor.companies.set(Company.objects.filter(slug="acme"))
    client = Client()
    client.force_login(user)
    run.phones.start(SUPERVISOR_PHONE)
    try:
        yield client
    finally:
        run.phones.stop(SUPERVISOR_PHONE)
        AuditEntry.objects.all().delete()
        user.delete()


def act(client: Client, action: str, extension: str, **data) -> tuple[int, dict]:
    response = client.post(
        f"/dashboard/acme/actions/{action}/",
        {"extension": extension, **data},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    return response.status_code, json.loads(response.content)


def test_pause_and_unpause_from_the_dashboard_reach_every_membership(run, swan, dashboard):
    status, body = act(dashboard, "pause", "202", reason="Almuerzo")
    assert status == 200, body
    answers = body["result"]["pbx"]
    assert {a["message"] for a in answers if a["ok"]} == {"Interface paused successfully"}
    assert all(a["action"] == "QueuePause" for a in answers)

    def all_paused():
        rows = members_of(run, "202")
        return rows if rows and all(r["paused"] == "1" for r in rows) else None

    rows = pbx.wait_until(all_paused, WAIT)
    assert rows, members_of(run, "202")
    assert sorted(r["queue"] for r in rows) == ["q-sales", "q-support"]
    assert {r["pausedreason"] for r in rows} == {"Almuerzo"}
    assert not any(r["paused"] == "1" for ext in ("201", "203") for r in members_of(run, ext))
    assert pbx.wait_until(lambda: swan.user_status("202")["status"] == "pause", WAIT)

    status, body = act(dashboard, "unpause", "202")
    assert status == 200, body
    assert pbx.wait_until(lambda: all(r["paused"] == "0" for r in members_of(run, "202")), WAIT)
    assert pbx.wait_until(lambda: swan.user_status("202")["status"] == "available", WAIT)


def test_log_out_and_in_do_what_asterisk_lets_them(run, swan, dashboard):
    before = members_of(run, "204")
    assert [r["queue"] for r in before] == ["q-support"]
    status, body = act(dashboard, "logout", "204")
    after = members_of(run, "204")
    if run.layout.static:  # Asterisk refuses to remove a queues.conf member
        assert status == 409, body
        assert "Member not dynamic" in {a["message"] for a in body["result"]["pbx"]}
        assert "Member not dynamic" in body["error-msg"]
        assert [r["location"] for r in after] == [r["location"] for r in before]
    else:
        assert status == 200, body
        assert {a["message"] for a in body["result"]["pbx"]} == {"Removed interface from queue"}
        assert after == []

    status, body = act(dashboard, "login", "204")
    assert status == 200, body
    rows = pbx.wait_until(lambda: members_of(run, "204"), WAIT)
    assert [r["queue"] for r in rows] == ["q-support"]  # once, never twice
    assert rows[0]["location"] == run.layout.interface("204")
    if not run.layout.static:
        assert rows[0]["membership"] == "dynamic"
        assert {a["message"] for a in body["result"]["pbx"]} == {"Added interface to queue"}


def _agent_leg(run, extension: str) -> dict | None:
    """The agent's PJSIP channel of the queue call, Up and bridged."""
    return next(
        (
            c
            for c in run.ami.channels()
            if c["channel"].startswith(f"PJSIP/{extension}-")
            and c["channelstatedesc"] == "Up"
            and c["bridgeid"]
        ),
        None,
    )


def _spy_channel(run, data: str) -> dict | None:
    return next(
        (
            c
            for c in run.ami.channels()
            if c["channel"].startswith(f"PJSIP/{SUPERVISOR_PHONE}-")
            and c["application"] == "ChanSpy"
            and c["applicationdata"] == data
        ),
        None,
    )


def _no_supervisor_channel(run) -> bool:
    return not any(
        c["channel"].startswith(f"PJSIP/{SUPERVISOR_PHONE}-") for c in run.ami.channels()
    )


@pytest.mark.layouts("pjsip", "local")
def test_listen_whisper_and_barge_ring_the_supervisor_onto_the_agents_call(run, swan, dashboard):
    from pbx.models import LiveChannel

    status, body = act(dashboard, "listen", "201")  # no call yet: nothing is originated
    assert status == 409, body
    assert body["error-msg"] == "Extension 201 is not in a call."
    assert _no_supervisor_channel(run)

    mark = run.ami.mark()
    number = call_queue(run.ami, "sales", seconds=60)
    # Who took the call, in Asterisk's words. Not the first agent phone Up: the ringall queue rings
    # 201 and 202, both phones answer, and with Local members the other one's leg is Up and bridged
    # (to its own Local channel) until the queue hangs it up.
    connect = run.ami.wait_event(
        lambda e: e["event"] == "AgentConnect" and e["calleridnum"] == number,
        since=mark,
        timeout=WAIT,
    )
    extension = next(x for x, name in NAMES.items() if name == connect["membername"])
    assert extension in QUEUES["q-sales"]  # 201 or 202 answered the ringall queue
    leg = pbx.wait_until(lambda: _agent_leg(run, extension), WAIT)
    assert leg, run.ami.channels()
    agent = leg["channel"]
    # SWAN's listener has the call (its channel Up), as the dashboard shows it
    assert pbx.wait_until(
        lambda: LiveChannel.objects.filter(channel=agent, state="Up").exists(), WAIT
    )

    for action, options in (("listen", "qES"), ("whisper", "qwES"), ("barge", "qBES")):
        mark = run.ami.mark()
        status, body = act(dashboard, action, extension)
        assert status == 200, body
        assert body["result"]["pbx"] == [
            {
                "action": "Originate",
                "target": f"PJSIP/{SUPERVISOR_PHONE} → ChanSpy {agent} ({action})",
                "ok": True,
                "message": "Originate successfully queued",
            }
        ]
        assert run.phones.wait(SUPERVISOR_PHONE, "connected", timeout=WAIT), action
        spy = pbx.wait_until(lambda data=f"{agent},{options}": _spy_channel(run, data), WAIT)
        assert spy, run.ami.channels()
        assert spy["calleridnum"] == extension
        started = run.ami.wait_event(
            lambda e: e["event"] == "ChanSpyStart" and e["spyeechannel"] == agent, since=mark
        )
        assert started["spyerchannel"] == spy["channel"]
        if action != "barge":
            run.phones.hangup(SUPERVISOR_PHONE)  # the supervisor is done listening
            assert pbx.wait_until(lambda: _no_supervisor_channel(run), WAIT)

    # E: when the agent's call ends, the supervisor's phone is hung up too
    run.phones.hangup(extension)
    assert pbx.wait_until(lambda: _no_supervisor_channel(run), WAIT), run.ami.channels()
    assert run.phones.wait(SUPERVISOR_PHONE, "idle", timeout=WAIT)
    real = [
        e.headers
        for e in run.ami.events[mark:]
        if e["event"].lower() in SPY_EVENTS
        and (e["channel"] or e["spyerchannel"]).startswith(f"PJSIP/{SUPERVISOR_PHONE}-")
    ]
    assert _shape(real) == _shape(_simulated_barge(extension)), real


def _shape(events: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """Per event of the supervisor's channel: its name, its header names (not the timestamp nor
    the ActionID, which only the originating session and manager.conf decide) and the values
    that tell what happened (states, caller ID and connected line, cause). OriginateResponse
    apart: Asterisk sends it from the originating thread, before or after the Newstate Up."""
    told = ("channelstatedesc", "calleridnum", "connectedlinenum", "response", "cause")
    ordered, responses = [], []
    for event in events:
        keys = [k.lower() for k in event if k.lower() not in ("timestamp", "actionid")]
        values = {k.lower(): v for k, v in event.items()}
        row = (values["event"], keys, tuple(values.get(k) for k in told))
        (responses if values["event"] == "OriginateResponse" else ordered).append(row)
    return ordered, responses


def _simulated_barge(extension: str) -> list[dict]:
    """The same scene on pbx.simulator: a queue call answered by `extension`, the supervisor's
    phone barging in (qBES), the agent hanging up."""
    from pbx.simulator import (
        QUIET,
        CallCentre,
        CentreConfig,
        CompanyConfig,
        DeviceConfig,
        MemberConfig,
        QueueConfig,
    )
    from pbx.simulator.callcentre import OriginateSpec

    config = CentreConfig(
        companies=(CompanyConfig("acme"),),
        devices=tuple(
            DeviceConfig(f"PJSIP/{ext}", ext, f"Agent {ext}", "acme") for ext in ("201", "206")
        ),
        queues=(QueueConfig("q-sales", "acme", (MemberConfig("PJSIP/201"),)),),
    )
    behaviour = dataclasses.replace(
        QUIET,
        answer_probability=1.0,
        ring_seconds=(1.0, 1.0),
        talk_seconds=(20.0, 20.0),
        agent_hangup_probability=1.0,
        originate_answer_seconds=(1.0, 1.0),
    )
    centre = CallCentre(config, behaviour=behaviour, seed=1)
    centre.caller_arrives("q-sales", "600110001")
    centre.step(5)
    (agent,) = [ch.name for ch in centre.channels.values() if ch.device == "PJSIP/201"]
    centre.drain_events()
    centre.originate(
        OriginateSpec(
            channel=f"PJSIP/{SUPERVISOR_PHONE}",
            application="ChanSpy",
            data=f"{agent},qBES",
            caller_id=f'"Barge {extension}" <{extension}>',
            action_id="spy",
        )
    )
    centre.step(30)
    return [
        dict(m.headers)
        for m in centre.drain_events()
        if m.event.lower() in SPY_EVENTS
        and (m.get("Channel") or m.get("SpyerChannel") or "").startswith(
            f"PJSIP/{SUPERVISOR_PHONE}-"
        )
    ]
