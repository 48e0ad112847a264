"""The simulator behaves like Asterisk: one scenario on both, the same events and the same SWAN.

One scripted scenario is played twice, in the `pjsip` layout, for every Asterisk version found:
on the real Asterisk (pjsua phones, `Local/sales@incoming` callers) with SWAN's listener on it,
then on the PBX simulator (`pbx.simulator`, configured as the layout: same extensions, queues,
member names, static members) with a SWAN listener connected to it over TCP. Both are driven
the way SWAN drives a PBX: SWAN's REST API (userStatus, terminal-register, call) and, for what
a phone or a caller does, the harness (real) or the model's own controls (simulator).

Compared, the real Asterisk being right:
1. for every event type the listener consumes (and the list events of its snapshot), the set
   of header names each side sent;
2. per step and per entity (a device, a queue member, a queue's callers, an agent's channel),
   the sequence of normalised key values (no uniqueids, timestamps or channel suffixes);
3. what SWAN shows after each step: userStatus of every agent, blf-users, queues-status, and at
   the end last-calls (each side's own queue_log and Master.csv ingested), and current-calls
   during the answered call.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from pbx.simulator import (
    Behaviour,
    CallCentre,
    CentreConfig,
    CompanyConfig,
    DeviceConfig,
    History,
    MemberConfig,
    QueueConfig,
    SimulatedPbx,
)
from tests.process.conftest import Process, database_url
from tests.realpbx import layouts, pbx
from tests.realpbx.ami import RawAmi
from tests.realpbx.conftest import WAIT, _start_listener, _stop_listener, connect_resync
from tests.realpbx.layouts import DIAL_CONTEXT, NAMES, QUEUES

LAYOUT = "pjsip"
pytestmark = pytest.mark.layouts(LAYOUT)  # the conftest skips the others before they start
AGENTS = tuple(NAMES)  # 201..205
DEVICES = (*AGENTS, "206")  # callcentre/pjsip.conf has 206, no phone registers it
DESTINATION = "600123456"  # [from-internal] `_X.`: answers, waits 5 s, hangs up
PAUSED = "202"  # in both queues: paused, so that q-sales rings only 201
ANSWERS = "201"
TALK_SECONDS = 2.0
ABANDON_AFTER = 2.0  # the caller gives up while 201 rings (queue timeout 10 s)
QUIET_SECONDS = 0.4  # a step is over when the PBX has said nothing for this long
CALLERS = ("600110101", "600110102")
SIM_USER, SIM_SECRET = "swan", "swan-secret"

# What the listener consumes (pbx/live/state_tables.py `_handlers`) and what its snapshot reads.
CONSUMED = (
    "DeviceStateChange",
    "QueueMemberAdded",
    "QueueMemberStatus",
    "QueueMemberPause",
    "QueueMemberRemoved",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "Newchannel",
    "Newstate",
    "NewConnectedLine",
    "Hangup",
    "FullyBooted",
)
SNAPSHOT = ("QueueMember", "QueueEntry", "CoreShowChannel", "ContactList", "DeviceStateChange")
CHANNEL_EVENTS = ("Newchannel", "Newstate", "NewConnectedLine", "Hangup")
MEMBER_EVENTS = ("QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause", "QueueMemberRemoved")
CALLER_EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon")
AGENT_CHANNEL = re.compile(r"^PJSIP/(20\d)-[0-9a-f]+$")

# -- recording ---------------------------------------------------------------------------------


class RecordingAmi(RawAmi):
    """RawAmi that also keeps the header names (as sent, with their case) of every event frame,
    unsolicited or part of a list answer: `names[event][…]`; `raw` is the unsolicited frames."""

    def __init__(self, *args, **kwargs):
        self.names: dict[str, set[str]] = defaultdict(set)
        self.list_names: dict[str, set[str]] = defaultdict(set)
        super().__init__(*args, **kwargs)

    def _route(self, text: str, at: float) -> None:
        keys = [line.partition(":")[0].strip() for line in text.split("\r\n") if ":" in line]
        lowered = {key.lower(): key for key in keys}
        frame_event = ""
        for line in text.split("\r\n"):
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == "event":
                frame_event = value.strip()
                break
        if frame_event:
            is_list = "actionid" in lowered and any(
                line.lower().startswith("actionid: t-") for line in text.split("\r\n")
            )
            (self.list_names if is_list else self.names)[frame_event].update(keys)
        super()._route(text, at)


def _device(channel: str) -> str:
    """`PJSIP/201-0000001a` → `PJSIP/201`; `Local/sales@incoming-00000003;1` → `Local/sales@incoming;1`."""
    base, _, leg = channel.partition(";")
    base = re.sub(r"-[0-9a-f]{8}$", "", base)
    return f"{base};{leg}" if leg else base


def _keep_device(device: str) -> bool:
    """The devices both sides have: the phones, FreePBX-style Custom: states, app_queue's."""
    return bool(
        re.match(r"^PJSIP/20\d$", device)
        or device.lower().startswith("custom:")
        or device.startswith("Queue:")
    )


def entity_sequences(events) -> dict[str, list[tuple]]:
    """Per entity, the normalised sequence of what the listener would consume."""
    out: dict[str, list[tuple]] = defaultdict(list)
    for event in events:
        name = event.headers.get("event", "")
        h = event.headers
        if name == "DeviceStateChange":
            if _keep_device(h.get("device", "")):
                out[f"device {h['device']}"].append((h.get("state"),))
        elif name in MEMBER_EVENTS:
            out[f"member {h.get('queue')} {h.get('interface')}"].append(
                (
                    name,
                    h.get("membername"),
                    h.get("stateinterface"),
                    h.get("membership"),
                    h.get("status"),
                    h.get("paused"),
                    h.get("pausedreason"),
                )
            )
        elif name in CALLER_EVENTS:
            out[f"callers {h.get('queue')}"].append(
                (name, h.get("position"), h.get("count"), h.get("calleridnum"))
            )
        elif name in CHANNEL_EVENTS:
            match = AGENT_CHANNEL.match(h.get("channel", ""))
            if match:
                out[f"channel PJSIP/{match.group(1)}"].append(
                    (
                        name,
                        h.get("channelstatedesc"),
                        h.get("connectedlinenum"),
                        h.get("exten") if name == "Newchannel" else None,
                        h.get("cause") if name == "Hangup" else None,
                    )
                )
    return dict(out)


# -- the two sides -----------------------------------------------------------------------------


@dataclass
class Outcome:
    steps: dict[str, dict[str, list[tuple]]] = field(default_factory=dict)
    views: dict[str, dict] = field(default_factory=dict)
    names: dict[str, set[str]] = field(default_factory=dict)
    list_names: dict[str, set[str]] = field(default_factory=dict)
    snapshots: dict[str, dict] = field(default_factory=dict)
    responses: dict[str, object] = field(default_factory=dict)
    raw: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _strip_times(value):
    """SWAN's views without what depends on the clock or on ids."""
    if isinstance(value, dict):
        return {
            k: _strip_times(v)
            for k, v in value.items()
            if not re.search(r"time|date|duration|since|wait|id$|^id|uniqueid|hold|talk", k, re.I)
        }
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


class Side(abc.ABC):
    """What the scenario needs from a PBX; `ami` is this side's own observer session."""

    name = ""
    ami: RecordingAmi

    def __init__(self, swan):
        self.swan = swan

    # the PBX part, different on each side
    @abc.abstractmethod
    def answered_call(self, out: Outcome) -> None: ...

    @abc.abstractmethod
    def abandoned_call(self) -> None: ...

    @abc.abstractmethod
    def click_to_call_done(self, mark: int) -> None: ...

    def settle(self) -> None:
        """Waits until the PBX is quiet (no event for QUIET_SECONDS), bounded."""
        deadline = time.monotonic() + 5.0
        last = self.ami.mark()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.ami.mark()
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return

    # SWAN's part, the same on both
    def views(self) -> dict:
        swan = self.swan
        params = {"queues": json.dumps({"support": ["q-support"], "sales": ["q-sales"]})}
        return {
            "userStatus": {ext: swan.user_status(ext) for ext in AGENTS},
            "blf": swan.blf(),
            "queues-status": _strip_times(swan.get("/queues-status", params).json()),
        }

    def wait_swan(self, ext: str, status: str) -> None:
        ok = pbx.wait_until(lambda: self.swan.user_status(ext)["status"] == status, WAIT, 0.05)
        assert ok, f"{self.name}: userStatus/{ext} is {self.swan.user_status(ext)}, not {status}"

    def snapshot(self, label: str, out: Outcome) -> None:
        members, callers = self.ami.queue_status()
        out.snapshots[label] = {
            "members": sorted(
                (m["queue"], m["location"], m["name"], m["membership"], m["status"], m["paused"])
                for m in members
            ),
            "callers": sorted((c["queue"], c["position"]) for c in callers),
            "devices": {
                d: s for d, s in sorted(self.ami.device_states().items()) if _keep_device(d)
            },
            "channels": sorted(
                (_device(c["channel"]), c["channelstatedesc"])
                for c in self.ami.channels()
                if AGENT_CHANNEL.match(c["channel"])
            ),
            "contacts": sorted((c["endpoint"], c["status"]) for c in self.ami.contacts()),
        }

    def step(self, label: str, out: Outcome, action) -> None:
        mark = self.ami.mark()
        action()
        self.settle()
        out.steps[label] = entity_sequences(self.ami.events[mark:])
        out.views[label] = self.views()

    def play(self) -> Outcome:
        out = self.out = Outcome()
        clear_history()
        started = time.monotonic()
        swan = self.swan
        self.settle()
        self.snapshot("idle", out)
        out.views["idle"] = self.views()

        def pause():
            response = swan.post(f"/userStatus/{PAUSED}", {"status": "pause", "reason": "Descanso"})
            out.responses["pause"] = (response.status_code, response.json()["result"]["status"])
            self.wait_swan(PAUSED, "pause")

        self.step("pause", out, pause)
        self.step("answered call", out, lambda: self.answered_call(out))
        self.step("abandoned call", out, self.abandoned_call)

        def unpause():
            response = swan.post(f"/userStatus/{PAUSED}", {"status": "available"})
            out.responses["unpause"] = response.status_code
            self.wait_swan(PAUSED, "available")

        self.step("unpause", out, unpause)

        def dnd_on():
            response = swan.post(f"/userStatus/{PAUSED}", {"status": "busy", "reason": "Reunión"})
            out.responses["dnd on"] = response.status_code
            self.wait_swan(PAUSED, "busy")

        def dnd_off():
            response = swan.post(f"/userStatus/{PAUSED}", {"status": "available"})
            out.responses["dnd off"] = response.status_code
            self.wait_swan(PAUSED, "available")

        self.step("dnd on", out, dnd_on)
        self.step("dnd off", out, dnd_off)

        mac = swan.directory.terminals["203"].mac

        def unregister():
            response = swan.delete(f"/terminal-register/{mac}")
            out.responses["terminal-register DELETE"] = (response.status_code, response.json())

        def register():
            response = swan.post(f"/terminal-register/{mac}")
            out.responses["terminal-register POST"] = (response.status_code, response.json())

        self.step("terminal-register DELETE", out, unregister)
        self.step("terminal-register POST", out, register)

        def dynamic_member():
            # 205 (in no queue) joins and leaves q-support as a dynamic member, through AMI as
            # SWAN's gateway does it in the dynamic layout (static members send no such events)
            self.ami.action(
                "QueueAdd", Queue="q-support", Interface="PJSIP/205", MemberName=NAMES["205"]
            )
            self.settle()
            self.ami.action("QueueRemove", Queue="q-support", Interface="PJSIP/205")

        self.step("dynamic member", out, dynamic_member)

        def click_to_call():
            mark = self.ami.mark()
            response = swan.post(
                f"/call/{DESTINATION}", {"private_source": ANSWERS, "company": "acme"}
            )
            out.responses["call"] = (response.status_code, response.json()["result"])
            self.click_to_call_done(mark)
            self.wait_swan(ANSWERS, "available")

        self.step("click-to-call", out, click_to_call)
        self.snapshot("end", out)
        out.names = {k: set(v) for k, v in self.ami.names.items()}
        out.list_names = {k: set(v) for k, v in self.ami.list_names.items()}
        out.raw = [dict(e.headers) for e in self.ami.events]
        out.seconds = time.monotonic() - started
        return out

    def current_calls(self, out: Outcome) -> None:
        def rows():
            found = self.swan.get(f"/current-calls/{ANSWERS}").json()["result"]
            return found if found else None

        found = pbx.wait_until(rows, WAIT, 0.05)
        assert found, f"{self.name}: no current call for {ANSWERS}"
        out.views["current-calls"] = _strip_times(found)
        self.snapshot("answered call", out)


class RealSide(Side):
    name = "asterisk"

    def __init__(self, run, swan):
        super().__init__(swan)
        self.run = run
        self.ami = RecordingAmi(
            run.asterisk.ami_port, layouts.OBSERVER_USERNAME, layouts.OBSERVER_SECRET
        )

    def _call(self, number: str) -> None:
        """An outside caller dials q-sales ([incoming] `sales`) and waits, as helpers.call_queue."""
        self.ami.action(
            "Originate",
            Channel="Local/sales@incoming",
            Application="Wait",
            Data="40",
            CallerID=f"{number} <{number}>",
            Async="true",
        )

    def _caller_channel(self) -> str:
        channels = [c["channel"] for c in self.ami.channels()]
        found = [c for c in channels if c.startswith("Local/") and c.endswith(";1")]
        assert found, channels
        return found[0]

    def answered_call(self, out: Outcome) -> None:
        mark = self.ami.mark()
        self._call(CALLERS[0])
        self.ami.wait_event(lambda e: e["event"] == "AgentConnect", since=mark, timeout=WAIT)
        self.current_calls(out)
        time.sleep(TALK_SECONDS)  # the talk itself: nothing to await
        self.ami.action("Hangup", Channel=self._caller_channel())
        self.ami.wait_event(lambda e: e["event"] == "AgentComplete", since=mark, timeout=WAIT)
        self.wait_swan(ANSWERS, "available")

    def abandoned_call(self) -> None:
        self.run.phones.set_answer_after(ANSWERS, -1)
        try:
            mark = self.ami.mark()
            self._call(CALLERS[1])
            self.ami.wait_event(lambda e: e["event"] == "AgentCalled", since=mark, timeout=WAIT)
            self.wait_swan(ANSWERS, "ringing")
            self.snapshot("ringing", self.out)
            time.sleep(ABANDON_AFTER)  # the caller's patience: nothing to await
            self.ami.action("Hangup", Channel=self._caller_channel())
            self.ami.wait_event(
                lambda e: e["event"] == "QueueCallerAbandon", since=mark, timeout=WAIT
            )
            self.wait_swan(ANSWERS, "available")
        finally:
            self.run.phones.set_answer_after(ANSWERS, pbx.ANSWER_AFTER_MS)

    def click_to_call_done(self, mark: int) -> None:
        # the phone answers, `_X.` waits 5 s and hangs up
        self.ami.wait_event(
            lambda e: e["event"] == "Hangup" and e["channel"].startswith(f"PJSIP/{ANSWERS}-"),
            since=mark,
            timeout=WAIT,
        )

    def history(self) -> tuple[Path, Path]:
        return self.run.asterisk.log_dir / "queue_log", (
            self.run.asterisk.log_dir / "cdr-csv" / "Master.csv"
        )


def simulator_config() -> CentreConfig:
    """The `pjsip` layout as the simulator's configuration."""
    return CentreConfig(
        companies=(CompanyConfig("acme", "ACME", "Europe/Madrid", DIAL_CONTEXT),),
        devices=tuple(
            DeviceConfig(f"PJSIP/{ext}", ext, f"Agent {ext}", "acme", reachable=ext in AGENTS)
            for ext in DEVICES
        ),
        queues=tuple(
            QueueConfig(
                queue,
                "acme",
                tuple(
                    MemberConfig(f"PJSIP/{ext}", NAMES[ext], membership="static") for ext in exts
                ),
                strategy="ringall",
            )
            for queue, exts in QUEUES.items()
        ),
    )


# The people of the scenario: answer after ANSWER_AFTER_MS, the caller hangs up.
SCENARIO = Behaviour(
    call_rate=0.0,
    pauses_per_agent_hour=0.0,
    answer_probability=1.0,
    ring_seconds=(pbx.ANSWER_AFTER_MS / 1000, pbx.ANSWER_AFTER_MS / 1000),
    ring_timeout=10.0,  # queues.conf timeout
    retry_seconds=1.0,
    talk_seconds=(TALK_SECONDS, TALK_SECONDS),
    agent_hangup_probability=0.0,
    originate_answer_seconds=(pbx.ANSWER_AFTER_MS / 1000, pbx.ANSWER_AFTER_MS / 1000),
    destination_answer_probability=1.0,
    originate_talk_seconds=(5.0, 5.0),
)


class SimulatedSide(Side):
    name = "simulator"

    def __init__(self, sim: SimulatedPbx, swan, folder: Path):
        super().__init__(swan)
        self.sim = sim
        self.centre = sim.centre
        self.folder = folder
        self.ami = RecordingAmi(sim.port, SIM_USER, SIM_SECRET)
        # what start.sh and the harness's reset do on the real one, through AMI as they do
        for ext in ("201", "202", "203"):
            self.ami.action("Setvar", Variable=f"DEVICE_STATE(Custom:{ext})", Value="NOT_INUSE")
        for ext in AGENTS:
            self.ami.action("DBDel", ok=False, Family="DND", Key=ext)
            self.ami.action("Setvar", Variable=f"DEVICE_STATE(Custom:DND{ext})", Value="NOT_INUSE")

    def advance(self, seconds: float, *, tick: float = 0.1) -> None:
        """Simulated time, in ticks, each flushed to the listener."""
        left = seconds
        while left > 1e-9:
            step = min(tick, left)
            self.sim.step(step)
            left -= step
            time.sleep(0.005)

    def _arrives(self, number: str, patience: float) -> None:
        with self.sim.lock:
            self.centre.caller_arrives("q-sales", number, patience=patience)
        self.sim.step(0)

    def answered_call(self, out: Outcome) -> None:
        self._arrives(CALLERS[0], patience=60.0)
        self.advance(pbx.ANSWER_AFTER_MS / 1000 + 0.05)
        self.current_calls(out)
        self.advance(TALK_SECONDS)
        self.wait_swan(ANSWERS, "available")

    def abandoned_call(self) -> None:
        with self.sim.lock:
            self.centre.behaviour = replace(self.centre.behaviour, answer_probability=0.0)
        try:
            self._arrives(CALLERS[1], patience=ABANDON_AFTER)
            self.advance(0.05)
            self.wait_swan(ANSWERS, "ringing")
            self.snapshot("ringing", self.out)
            self.advance(ABANDON_AFTER)
            self.wait_swan(ANSWERS, "available")
        finally:
            with self.sim.lock:
                self.centre.behaviour = replace(self.centre.behaviour, answer_probability=1.0)

    def click_to_call_done(self, mark: int) -> None:
        self.advance(pbx.ANSWER_AFTER_MS / 1000 + 5.0 + 1.0)

    def history(self) -> tuple[Path, Path]:
        return self.folder / "queue_log", self.folder / "Master.csv"


# -- history: each side's own files -------------------------------------------------------------


_CALLER_LEG = re.compile(
    rb'^"[^"]*","[^"]*","[^"]*","[^"]*","(?:[^"]|"")*","Local/[^"]*;1","[^"]*","Wait"'
)


def queue_log_events(path: Path) -> list[tuple]:
    """The ingested queue_log as (queue, agent, event, text data): no times, ids or counts."""
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split("|")
        if len(fields) >= 5:
            data = tuple(f for f in fields[5:] if f and not re.fullmatch(r"[\d.]+", f))
            rows.append((fields[2], fields[3], fields[4], data))
    return rows


def clear_history() -> None:
    from pbx.models import CdrRecord, IngestCursor, QueueEntry, QueueLogBlockTimes, QueueLogLine

    for model in (CdrRecord, QueueEntry, QueueLogLine, QueueLogBlockTimes, IngestCursor):
        model.objects.all().delete()


def last_calls(swan, queue_log: Path, cdr: Path, since: tuple[int, int], folder: Path) -> dict:
    """Ingests what the scenario wrote to `queue_log` and `cdr` (from the offsets in `since`)
    into empty history tables and returns last-calls of every agent."""
    folder.mkdir(parents=True, exist_ok=True)
    clear_history()
    parts = []
    for source, offset, name in ((queue_log, since[0], "queue_log"), (cdr, since[1], "cdr.csv")):
        target = folder / name
        lines = (source.read_bytes()[offset:] if source.exists() else b"").splitlines(True)
        # the harness's callers are `Local/sales@incoming` originates: their `;1` leg (lastapp
        # Wait) is the test's stand-in for a caller's phone, no part of a real trunk call
        lines = [line for line in lines if not _CALLER_LEG.search(line)]
        target.write_bytes(b"".join(lines))
        parts.append(target)
    with contextlib.redirect_stderr(sys.stderr):
        call_command("ingest_queue_log", str(parts[0]), verbosity=0)
        call_command("ingest_cdr", str(parts[1]), verbosity=0)
    params = {"queues": json.dumps({"support": ["q-support"], "sales": ["q-sales"]})}
    return {
        "queue_log": queue_log_events(parts[0]),
        **{ext: _strip_times(swan.get(f"/last-calls/{ext}").json()["result"]) for ext in AGENTS},
        "queues-status": _strip_times(swan.get("/queues-status", params).json()["result"]),
    }


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# -- the test ----------------------------------------------------------------------------------


def _start_sim_listener(port: int, log: Path) -> Process:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_TEST_NAME": str(connection.settings_dict["NAME"]),
        "DJANGO_SETTINGS_MODULE": "swanproject.settings",
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": str(port),
        "AMI_USERNAME": SIM_USER,
        "AMI_SECRET": SIM_SECRET,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    process = Process(
        "pbx_listen-simulator",
        [sys.executable, "manage.py", "pbx_listen", "--ping-seconds", "2"],
        env,
        log,
    )
    try:
        process.wait_for_log(re.escape(connect_resync()), timeout=60)
    except BaseException:  # not left running: it would take the next listeners' leases
        process.kill()
        raise
    return process


@dataclass
class Played:
    real: Outcome
    sim: Outcome
    real_calls: dict
    sim_calls: dict


PLAYED: dict[str, Played] = {}


@pytest.fixture
def played(pbx_run, request, django_db_blocker, tmp_path_factory) -> Played:
    """Plays the scenario on this version's Asterisk and on the simulator (once per version)."""
    if pbx_run.layout.name != LAYOUT:
        pytest.skip(f"the differential test runs in the {LAYOUT} layout")
    if pbx_run.version in PLAYED:
        return PLAYED[pbx_run.version]
    run, swan = request.getfixturevalue("pbx_env")
    work = tmp_path_factory.mktemp(f"differential-{run.version}")
    real = RealSide(run, swan)
    queue_log, cdr = real.history()
    since = (_size(queue_log), _size(cdr))
    try:
        real_out = real.play()
    finally:
        real.ami.close()
    time.sleep(0.5)  # cdr_csv writes at hangup; let the last rows land
    real_calls = last_calls(swan, queue_log, cdr, since, work / "real-history")

    # SWAN's listener moves to the simulator: the real one stops (releasing its lease)
    _stop_listener(run.listener, django_db_blocker)
    run.listener = None
    history = History(str(work / "queue_log"), str(work / "Master.csv"))
    centre = CallCentre(
        simulator_config(), behaviour=SCENARIO, seed=11, start_time=time.time(), history=history
    )
    centre.timestamp_events = True  # as the package's manager.conf: timestampevents = yes
    sim = SimulatedPbx(centre, port=0, username=SIM_USER, secret=SIM_SECRET, speed=0)
    sim.start()
    listener = None
    side = None
    try:
        with override_settings(AMI_PORT=sim.port, AMI_USERNAME=SIM_USER, AMI_SECRET=SIM_SECRET):
            side = SimulatedSide(sim, swan, work)
            listener = _start_sim_listener(sim.port, work / "pbx_listen-simulator.log")
            side.wait_swan(PAUSED, "available")
            sim_out = side.play()
            history.close()
            sim_calls = last_calls(swan, *side.history(), (0, 0), work / "sim-history")
    finally:
        if side is not None:
            side.ami.close()
        if listener is not None:
            _stop_listener(listener, django_db_blocker)
        sim.stop()
        # back to the real Asterisk for the tests after this one
        run.listener = _start_listener(run, work)
    PLAYED[run.version] = Played(real_out, sim_out, real_calls, sim_calls)
    dump = work / "differential.json"
    dump.write_text(
        json.dumps(
            {
                "real": _jsonable(real_out),
                "sim": _jsonable(sim_out),
                "real_calls": real_calls,
                "sim_calls": sim_calls,
            },
            indent=1,
            default=list,
        )
    )
    sys.stderr.write(
        f"\nreal_pbx: differential {run.version}: asterisk {real_out.seconds:.1f}s, "
        f"simulator {sim_out.seconds:.1f}s ({dump})\n"
    )
    return PLAYED[run.version]


def _jsonable(out: Outcome) -> dict:
    return {
        "steps": out.steps,
        "views": out.views,
        "names": {k: sorted(v) for k, v in out.names.items()},
        "list_names": {k: sorted(v) for k, v in out.list_names.items()},
        "snapshots": out.snapshots,
        "responses": out.responses,
        "raw": out.raw,
    }


def _differences(real: dict, sim: dict) -> dict:
    return {
        key: {"asterisk": real.get(key), "simulator": sim.get(key)}
        for key in sorted(set(real) | set(sim))
        if real.get(key) != sim.get(key)
    }


@pytest.mark.parametrize("event", CONSUMED)
def test_event_header_names(played, event):
    real, sim = played.real.names.get(event), played.sim.names.get(event)
    assert real is not None, f"the scenario made Asterisk send no {event}"
    assert sim == real, {
        "only asterisk": real - (sim or set()),
        "only simulator": (sim or set()) - real,
    }


@pytest.mark.parametrize("event", SNAPSHOT)
def test_snapshot_header_names(played, event):
    real, sim = played.real.list_names.get(event), played.sim.list_names.get(event)
    assert real is not None, f"the scenario made Asterisk list no {event}"
    assert sim == real, {
        "only asterisk": real - (sim or set()),
        "only simulator": (sim or set()) - real,
    }


STEPS = (
    "pause",
    "answered call",
    "abandoned call",
    "unpause",
    "dnd on",
    "dnd off",
    "terminal-register DELETE",
    "terminal-register POST",
    "dynamic member",
    "click-to-call",
)


@pytest.mark.parametrize("step", STEPS)
def test_event_sequences(played, step):
    assert _differences(played.real.steps[step], played.sim.steps[step]) == {}


@pytest.mark.parametrize("label", ["idle", "answered call", "ringing", "end"])
def test_snapshots(played, label):
    assert _differences(played.real.snapshots[label], played.sim.snapshots[label]) == {}


@pytest.mark.parametrize("step", ["idle", "current-calls", *STEPS])
def test_what_swan_shows(played, step):
    real, sim = played.real.views[step], played.sim.views[step]
    if isinstance(real, dict):
        assert _differences(real, sim) == {}
    else:
        assert sim == real


def test_swan_responses(played):
    assert _differences(played.real.responses, played.sim.responses) == {}


def test_last_calls(played):
    assert _differences(played.real_calls, played.sim_calls) == {}
