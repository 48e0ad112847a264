"""Two real Asterisks side by side behind one SWAN (issue 15): the same extensions and queue names
on both, one `pbx_listen` serving both, and each company reads and acts on its own PBX only.

`pbx-a` and `pbx-b` run the same config (layout `dynamic`: SWAN's terminal-register makes the
agents members) on ports of their own, each with its own AMI user and secret; SWAN's directory
names them as two `Pbx` rows whose secrets are in the environment variables `secret_env` names
(set for the listener subprocess and for this process, which makes the API's PBX calls).
Company `alpha` is on pbx-a and `beta` on pbx-b, both with users 201-205, queues q-sales and
q-support and the same members (layouts.QUEUES). Phones 201-204 are registered on A and 202-205
on B, so 201 and 205 tell the PBXes apart from the start.

Everything is judged by what each Asterisk reports (raw AMI as the `observer` user, `queue show`)
and by SWAN's REST answers per company, never by SWAN's tables. One module-scoped run per
Asterisk version; each test first puts both PBXes back as described (`two`). These tests run
before the other real-PBX tests (conftest's `pytest_collection_modifyitems`): the listener of
their `pbx_run` serves every PBX defined, so it must not run beside this module's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from tests.process.conftest import Process, database_url
from tests.realpbx import layouts, pbx
from tests.realpbx.ami import RawAmi, device_event, pause_event
from tests.realpbx.conftest import SKIP_REASON, VERSIONS, WAIT, _stop_listener, connect_resync
from tests.realpbx.helpers import call_queue, member_extension, status_per_asterisk
from tests.realpbx.layouts import DIAL_CONTEXT, LAYOUTS, NAMES, QUEUES, WEBPHONE

LAYOUT = LAYOUTS["dynamic"]
COLLEAGUE = "201"  # [from-internal] `_2XX`: Dial(PJSIP/201)
GROUPS = json.dumps({"support": ["q-support"], "sales": ["q-sales"]})
AGENTS = sorted({ext for exts in QUEUES.values() for ext in exts})  # 201-204; 205 in none
WANTED_MEMBERS = {(queue, ext) for queue, exts in QUEUES.items() for ext in exts}
RECONNECT = 90.0  # seconds: the listener's backoff doubles up to 30 s while a PBX is down


@dataclass
class Side:
    """One PBX of the two: its Asterisk, its phones, its SWAN company and an AMI observer."""

    name: str  # the Pbx row's name
    company: str  # the slug of the company on it
    registered: tuple[str, ...]  # the phones registered on it between tests
    username: str
    secret: str
    asterisk: pbx.Asterisk
    phones: pbx.Phones
    ami: RawAmi | None = None

    @property
    def secret_env(self) -> str:
        return f"SWAN_PBX_TEST_{self.name.upper().replace('-', '_')}_SECRET"

    def observe(self) -> RawAmi:
        """A fresh observer session (after a restart the old one is gone)."""
        if self.ami is not None:
            with contextlib.suppress(Exception):
                self.ami.close()
        self.ami = RawAmi(
            self.asterisk.ami_port, layouts.OBSERVER_USERNAME, layouts.OBSERVER_SECRET
        )
        return self.ami

    def members(self) -> dict[str, list[dict]]:
        """Extension → the QueueMember rows this Asterisk reports for it."""
        assert self.ami is not None
        members, _callers = self.ami.queue_status()
        by_ext: dict[str, list[dict]] = defaultdict(list)
        for member in members:
            ext = member_extension(member)
            if ext is not None:
                by_ext[ext].append(member)
        return by_ext

    def queue_view(self) -> dict[str, tuple[list[str], int]]:
        """Group → (member extensions, callers waiting), as this Asterisk reports them."""
        assert self.ami is not None
        members, callers = self.ami.queue_status()
        view = {}
        for group, queue in (("support", "q-support"), ("sales", "q-sales")):
            exts = sorted(
                {e for m in members if m["queue"] == queue and (e := member_extension(m))}
            )
            view[group] = (exts, sum(1 for c in callers if c["queue"] == queue))
        return view

    def member_lines(self, ext: str) -> list[str]:
        """The member lines of `queue show` (the CLI) for the agent `ext`."""
        return [
            line for line in self.asterisk.cli("queue show").splitlines() if f"PJSIP/{ext}" in line
        ]

    def mac(self, ext: str) -> str:
        return f"025a0{self.name[-1]}00{ext[0]:0>2}{ext[1:]}"


@dataclass
class TwoRun:
    version: str
    a: Side
    b: Side
    key: str = ""
    listener: Process | None = None
    work: Path = field(default_factory=Path)
    queues_mixed: bool = False  # a queues-status was seen mixed (QueueChecks)

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.a, self.b)

    def resyncs(self, side: Side) -> int:
        assert self.listener is not None
        return self.listener.log().count(connect_resync(side.name))


def _directory(run: TwoRun) -> str:
    """Both PBXes, their companies, users, terminals, queues and members, committed; returns an
    API key of both companies. Built with the ORM: directory_load keys queues by name alone."""
    from pbx.models import ApiKey, Company, Pbx, PbxUser, Queue, QueueMember
    from terminals.models import Terminal

    companies = []
    for side in run.sides:
        Pbx.objects.create(
            name=side.name,
            host="127.0.0.1",
            port=side.asterisk.ami_port,
            username=side.username,
            secret_env=side.secret_env,
            dial_context=DIAL_CONTEXT,
        )
        company = Company.objects.create(
            slug=side.company,
            name=side.company.title(),
            time_zone="Europe/Madrid",
            pbx_id=side.name,
        )
        queues = {
            "q-sales": Queue.objects.create(company=company, name="q-sales", alarm_waiting_calls=5),
            "q-support": Queue.objects.create(
                company=company, name="q-support", alarm_waiting_calls=2
            ),
        }
        for ext, name in NAMES.items():
            user = PbxUser.objects.create(company=company, extension=ext, name=name)
            Terminal.objects.create(
                mac=side.mac(ext),
                user=user,
                interface=f"PJSIP/{ext}",
                type=Terminal.Type.WEBPHONE if ext == WEBPHONE else Terminal.Type.DESK,
            )
            for queue, exts in QUEUES.items():
                if ext in exts:
                    QueueMember.objects.create(queue=queues[queue], user=user)
        companies.append(company)
    key = ApiKey(name="two-pbxes")
    raw = key.set_new_key()
    key.save()
    key.companies.set(companies)
    return raw


def _listener(run: TwoRun) -> Process:
    """One `pbx_listen`, told no PBX: it serves every PBX defined (no company is on the
    settings' one). Each secret only in its variable; no AMI_* at all."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AMI_", "SWAN_PBX_TEST_"))
    }
    env.update(
        {
            "DATABASE_URL": database_url(),
            "DATABASE_TEST_NAME": str(connection.settings_dict["NAME"]),
            "DJANGO_SETTINGS_MODULE": "swanproject.settings",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **{side.secret_env: side.secret for side in run.sides},
        }
    )
    return Process(
        "pbx_listen",
        [sys.executable, "manage.py", "pbx_listen", "--ping-seconds", "2"],
        env,
        run.work / "pbx_listen.log",
    )


@pytest.fixture(
    scope="module",
    params=list(VERSIONS) or [None],
    ids=[f"{version}-two-pbxes" for version in VERSIONS] or ["no-asterisk"],
)
def two_run(request, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[TwoRun]:
    if request.param is None:
        pytest.skip(SKIP_REASON)
    version = request.param
    package = pbx.unpacked(VERSIONS[version])
    work = tmp_path_factory.mktemp(f"realpbx-{version}-two-pbxes")
    with contextlib.ExitStack() as cleanup:  # every step undone, also after a failure

        def side(name: str, company: str, registered: tuple[str, ...]) -> Side:
            username, secret = f"swan-{name[-1]}", f"secret-of-{name}"
            overrides = layouts.write_overrides(
                LAYOUT, package, work / f"conf-{name}", swan_user=username, swan_secret=secret
            )
            asterisk = pbx.Asterisk(package, overrides)  # picks its ports: after A's start
            phones = pbx.Phones(asterisk)
            made = Side(name, company, registered, username, secret, asterisk, phones)
            cleanup.callback(_remove_rundir, asterisk)
            cleanup.callback(asterisk.stop)
            cleanup.callback(phones.stop_all)
            cleanup.callback(lambda: made.ami is not None and made.ami.close())
            try:
                asterisk.start()
            except pbx.AsteriskFailed as exc:
                pytest.fail(str(exc), pytrace=False)
            phones.start(*registered)
            made.observe()
            return made

        a = side("pbx-a", "alpha", ("201", "202", "203", "204"))
        b = side("pbx-b", "beta", ("202", "203", "204", "205"))
        run = TwoRun(version, a, b, work=work)
        patch = cleanup.enter_context(pytest.MonkeyPatch.context())
        for each in run.sides:  # this process's API calls read the secrets as the listener does
            patch.setenv(each.secret_env, each.secret)
        settings = override_settings(PBX_GATEWAY="pbx.gateway.ami.AmiGateway")
        settings.enable()
        cleanup.callback(settings.disable)
        with django_db_blocker.unblock():
            _no_other_listener()
            cleanup.callback(_flush, django_db_blocker)
            run.key = _directory(run)
            run.listener = _listener(run)
            cleanup.callback(_stop_listener, run.listener, django_db_blocker)
            for each in run.sides:
                run.listener.wait_for_log(re.escape(connect_resync(each.name)), timeout=60)
        yield run


def _no_other_listener() -> None:
    """Another listener on this database (a `pbx_run` one, or one a crashed run left) would
    take the new PBXes' leases, and this module's listener would wait as its standby."""
    from django.utils import timezone

    from pbx.models import ListenerLease

    held = ListenerLease.objects.exclude(holder="").filter(expires_at__gt=timezone.now())
    if held.exists():
        pytest.fail(
            "another pbx_listen is running on the test database: "
            + ", ".join(f"{lease.name} held by {lease.holder}" for lease in held),
            pytrace=False,
        )


def _remove_rundir(asterisk: pbx.Asterisk) -> None:
    if os.environ.get("SWAN_ASTERISK_KEEP"):
        sys.stderr.write(f"\nreal_pbx: kept {asterisk.rundir}\n")
    else:
        shutil.rmtree(asterisk.rundir, ignore_errors=True)


def _flush(django_db_blocker) -> None:
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


# -- SWAN's API, per company ------------------------------------------------------------------


class Swan:
    """SWAN's REST API in-process with a key of both companies; every read names the company
    (the extensions are the same in both, so without it a read is ambiguous)."""

    def __init__(self, key: str):
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {})

    def post(self, path: str, data: dict | None = None):
        return self.client.post(path, data or {}, format="json")

    def delete(self, path: str):
        return self.client.delete(path)

    def user_status(self, side: Side, ext: str) -> tuple[str, str]:
        response = self.get(f"/userStatus/{ext}", {"company": side.company})
        assert response.status_code == 200, response.content
        result = response.json()["result"]
        return result["status"], result["description"]

    def statuses(self, side: Side) -> dict[str, str]:
        response = self.get(f"/blf-users/{side.company}")
        assert response.status_code == 200, response.content
        return {row["extension"]: row["status"] for row in response.json()["result"]}

    def queues(self, side: Side) -> dict[str, tuple[list[str], int]]:
        """Group → (members, currentCalls) of queues-status for the side's company."""
        response = self.get("/queues-status", {"queues": GROUPS, "company": side.company})
        assert response.status_code == 200, response.content
        result = response.json()["result"]["queues"]
        return {g: (q["members"], q["status"]["currentCalls"]) for g, q in result.items()}

    def current_calls(self, side: Side, ext: str) -> list[dict]:
        response = self.get(f"/current-calls/{ext}", {"company": side.company})
        assert response.status_code == 200, response.content
        return response.json()["result"]

    def live_state(self, side: Side) -> str:
        return self.get(f"/blf-users/{side.company}")["X-Swan-Live-State"]

    def healthz_pbxes(self) -> dict[str, dict]:
        return self.get("/healthz").json()["checks"]["pbx"]["pbxes"]

    def wait_status(self, side: Side, ext: str, status: str, description: str | None = None):
        seen: list[tuple[str, str]] = []

        def matches() -> bool:
            seen.append(self.user_status(side, ext))
            return seen[-1][0] == status and description in (None, seen[-1][1])

        assert pbx.wait_until(matches, WAIT, interval=0.05), (
            f"{side.company}'s {ext} is {seen[-1]}, not {status} {description or ''} after {WAIT}s"
        )


# -- per test: both PBXes as the module describes them ----------------------------------------

_REACHABLE = ("Reachable", "NonQualified")


def _registered(side: Side) -> set[str]:
    assert side.ami is not None
    return {c["endpoint"] for c in side.ami.contacts() if c["status"] in _REACHABLE}


def _expected_devices(side: Side) -> dict[str, str]:
    return {ext: "NOT_INUSE" if ext in side.registered else "UNAVAILABLE" for ext in NAMES}


def _settled(side: Side) -> bool:
    assert side.ami is not None
    if side.ami.channels() or side.ami.queue_status()[1]:
        return False
    states = side.ami.device_states()
    members = side.members()
    return (
        all(states.get(f"PJSIP/{ext}") == state for ext, state in _expected_devices(side).items())
        and {(m["queue"], ext) for ext, rows in members.items() for m in rows} == WANTED_MEMBERS
        and not any(m["paused"] == "1" for rows in members.values() for m in rows)
    )


def _reset(run: TwoRun, swan: Swan) -> None:
    """No calls, nobody paused, each side's phones registered (and answering) and no other,
    every agent a dynamic member of its queues once; then SWAN has caught up."""
    from terminals.models import Terminal

    for side in run.sides:
        if not side.asterisk.ami_accepts():  # a failed restart test left it stopped
            side.asterisk.start()
        ami = side.ami if side.ami is not None and not side.ami._closed else side.observe()
        for channel in ami.channels():
            ami.action("Hangup", ok=False, Channel=channel["channel"])
        registered = _registered(side)
        missing = [ext for ext in side.registered if ext not in registered]
        if missing:
            side.phones.stop(*missing, kill=True)
            side.phones.start(*missing)
        extra = [ext for ext in registered if ext in NAMES and ext not in side.registered]
        if extra:
            side.phones.stop(*extra)
        states = side.phones.status()
        for ext in side.registered:
            if states.get(ext, {}).get("answer_after_ms") != pbx.ANSWER_AFTER_MS:
                side.phones.set_answer_after(ext, pbx.ANSWER_AFTER_MS)
        members = side.members()
        for ext, rows in members.items():
            for row in rows:
                if row["paused"] == "1":
                    ami.action("QueuePause", Interface=row["location"], Paused="false")
                if (row["queue"], ext) not in WANTED_MEMBERS:
                    ami.action("QueueRemove", Queue=row["queue"], Interface=row["location"])
        # SWAN's own terminal-register makes the agents members (layout `dynamic`)
        for ext in AGENTS:
            queues = {row["queue"] for row in members.get(ext, ())}
            if queues != {queue for queue, exts in QUEUES.items() if ext in exts}:
                Terminal.objects.filter(mac=side.mac(ext)).update(registered=False)
                response = swan.post(f"/terminal-register/{side.mac(ext)}")
                assert response.status_code == 200, response.content
    for side in run.sides:
        assert pbx.wait_until(lambda side=side: _settled(side), WAIT), (
            f"{side.name} did not settle: {side.ami.channels()} {side.ami.device_states()} "
            f"{dict(side.members())}"
        )
    # SWAN follows within a second or so; the tests judge what it answers
    pbx.wait_until(
        lambda: all(swan.statuses(side) == status_per_asterisk(side.ami) for side in run.sides),
        WAIT,
        0.1,
    )


@pytest.fixture
def two(two_run, django_db_blocker, monkeypatch) -> Iterator[tuple[TwoRun, Swan]]:
    from pbx.api.authentication import ApiKeyRateThrottle

    # the tests poll SWAN every 50 ms: beyond one key's rate limit
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": None})
    with django_db_blocker.unblock():
        swan = Swan(two_run.key)
        _reset(two_run, swan)
        yield two_run, swan
    if two_run.listener is not None and not two_run.listener.alive():
        pytest.fail(f"pbx_listen died\n{two_run.listener.tail()}")


def _paused_rows(side: Side, ext: str) -> list[dict]:
    return [row for row in side.members()[ext] if row["paused"] == "1"]


def _member_keys(side: Side, ext: str) -> list[tuple[str, str, str, str, str]]:
    return sorted(
        (r["queue"], r["location"], r["stateinterface"], r["membership"], r["name"])
        for r in side.members()[ext]
    )


class QueuesMixed(AssertionError):
    """A company's queues-status is not its own PBX's queues."""


class QueueChecks:
    """queues-status of a company against its own PBX's QueueStatus (members and callers per
    group). A mismatch is kept and raised at the end (`verify`), so that the test's other checks
    still run. Once one was seen in this run, checks no longer wait a whole WAIT each."""

    def __init__(self, run: TwoRun, swan: Swan):
        self.run = run
        self.swan = swan
        self.mismatches: list[str] = []

    def expect(self, side: Side, when: str) -> None:
        timeout = 0 if self.run.queues_mixed else WAIT
        if not pbx.wait_until(lambda: self.swan.queues(side) == side.queue_view(), timeout):
            self.run.queues_mixed = True
            self.mismatches.append(
                f"{when}: queues-status of {side.company} says {self.swan.queues(side)}, "
                f"{side.name}'s QueueStatus {side.queue_view()}"
            )

    def verify(self) -> None:
        if self.mismatches:
            raise QueuesMixed("\n".join(self.mismatches))


# -- the tests ----------------------------------------------------------------------------------


def test_each_company_reads_its_own_pbx(two):
    run, swan = two
    a, b = run.a, run.b
    # the PBXes themselves: 201 only on A, 205 only on B
    for side in run.sides:
        assert pbx.wait_until(lambda side=side: _registered(side) == set(side.registered), WAIT), (
            side.name,
            side.ami.contacts(),
        )
    for side in run.sides:
        assert swan.statuses(side) == status_per_asterisk(side.ami), side.name
    assert swan.statuses(a) == {**dict.fromkeys(NAMES, "available"), "205": "unavailable"}
    assert swan.statuses(b) == {**dict.fromkeys(NAMES, "available"), "201": "unavailable"}
    assert swan.user_status(a, "201")[0] == "available"
    assert swan.user_status(b, "201")[0] == "unavailable"
    webphone = {
        side.name: swan.get(f"/web-phone-username/{WEBPHONE}", {"company": side.company})
        for side in run.sides
    }
    assert webphone["pbx-a"].status_code == 200  # not registered on A
    assert webphone["pbx-a"].json()["result"] == {
        "username": a.mac(WEBPHONE),
        "is_registered": False,
    }
    assert webphone["pbx-b"].status_code == 409  # registered on B
    assert webphone["pbx-b"].json()["result"] == {
        "username": b.mac(WEBPHONE),
        "is_registered": True,
    }
    for side in run.sides:
        assert swan.live_state(side) == "live"
        response = swan.get("/userStatus/202", {"company": side.company})
        assert response["X-Swan-Live-State"] == "live"
    # one process holds both PBXes' leases, and nothing else is served
    pbxes = swan.healthz_pbxes()
    assert set(pbxes) == {"pbx-a", "pbx-b"}
    assert run.listener is not None
    for name, state in pbxes.items():
        assert (state["ok"], state["connected"]) == (True, True), (name, state)
        assert f":{run.listener.pid}:" in state["listener"], (name, state)


def test_each_company_s_queues_status_lists_its_own_pbx_s_members(two):
    run, swan = two
    for side in run.sides:
        assert side.queue_view() == {
            "support": (["202", "203", "204"], 0),
            "sales": (["201", "202"], 0),
        }
    checks = QueueChecks(run, swan)
    checks.expect(run.a, "after the reset")
    checks.expect(run.b, "after the reset")
    checks.verify()


def test_a_pause_through_swan_reaches_its_company_s_pbx_only(two):
    run, swan = two
    a, b = run.a, run.b
    response = swan.post(
        "/userStatus/202", {"status": "pause", "reason": "Descanso", "company": "alpha"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["result"]["status"] == "pause"
    rows = pbx.wait_until(lambda: len(_paused_rows(a, "202")) == 2 and _paused_rows(a, "202"), WAIT)
    assert rows, a.members()["202"]
    assert {(r["queue"], r["pausedreason"]) for r in rows} == {
        ("q-sales", "Descanso"),
        ("q-support", "Descanso"),
    }
    lines = a.member_lines("202")
    assert len(lines) == 2, lines
    assert all("paused" in line for line in lines), lines
    assert not _paused_rows(b, "202")
    lines = b.member_lines("202")
    assert len(lines) == 2, lines
    assert not any("paused" in line for line in lines), lines
    swan.wait_status(a, "202", "pause", "Descanso")
    assert swan.user_status(b, "202")[0] == "available"

    response = swan.post(
        "/userStatus/202", {"status": "pause", "reason": "Almuerzo", "company": "beta"}
    )
    assert response.status_code == 200, response.content
    assert pbx.wait_until(lambda: len(_paused_rows(b, "202")) == 2, WAIT), b.members()["202"]
    assert {r["pausedreason"] for r in _paused_rows(b, "202")} == {"Almuerzo"}
    assert {r["pausedreason"] for r in _paused_rows(a, "202")} == {"Descanso"}
    swan.wait_status(b, "202", "pause", "Almuerzo")
    assert swan.user_status(a, "202") == ("pause", "Descanso")

    # the same DND key on two PBXes is no clash: `available` also clears DND, on A only
    response = swan.post("/userStatus/202", {"status": "available", "company": "alpha"})
    assert response.status_code == 200, response.content
    assert pbx.wait_until(lambda: not _paused_rows(a, "202"), WAIT), a.members()["202"]
    swan.wait_status(a, "202", "available")
    assert len(_paused_rows(b, "202")) == 2
    assert swan.user_status(b, "202") == ("pause", "Almuerzo")


def test_a_phone_registering_on_one_pbx_changes_its_company_only(two):
    run, swan = two
    for side, other, ext in ((run.a, run.b, "203"), (run.b, run.a, "202")):
        mark = side.ami.mark()
        side.phones.stop(ext)  # graceful: pjsua un-REGISTERs
        side.ami.wait_event(device_event(f"PJSIP/{ext}", "UNAVAILABLE"), since=mark)
        swan.wait_status(side, ext, "unavailable")
        assert other.ami.device_states()[f"PJSIP/{ext}"] == "NOT_INUSE"
        assert swan.user_status(other, ext)[0] == "available"

        mark = side.ami.mark()
        side.phones.start(ext)
        side.ami.wait_event(device_event(f"PJSIP/{ext}", "NOT_INUSE"), since=mark)
        swan.wait_status(side, ext, "available")
        assert swan.statuses(other) == status_per_asterisk(other.ami)


def test_click_to_call_connects_the_call_on_its_company_s_pbx_only(two):
    """202 calls its colleague 201 (click-to-call: 202's phone rings, answers, then 201's):
    a call that stays up until a phone hangs up."""
    run, swan = two
    a, b = run.a, run.b
    response = swan.post(f"/call/{COLLEAGUE}", {"private_source": "202", "company": "alpha"})
    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"success": True}
    assert a.phones.wait("202", "connected", timeout=WAIT)
    assert a.phones.wait("201", "connected", timeout=WAIT)

    def dialled():
        return [
            c
            for c in a.ami.channels()
            if c["channel"].startswith("PJSIP/202-")
            and c["exten"] == COLLEAGUE
            and c["context"] == DIAL_CONTEXT
        ]

    assert pbx.wait_until(dialled, WAIT), a.ami.channels()
    assert b.ami.channels() == []
    rows = pbx.wait_until(lambda: swan.current_calls(a, "202"), WAIT)
    assert rows, swan.current_calls(a, "202")
    assert [(r["direction"], r["number"]) for r in rows] == [("outgoing", COLLEAGUE)]
    rows = pbx.wait_until(lambda: swan.current_calls(a, "201"), WAIT)
    assert [r["direction"] for r in rows or ()] == ["incoming"], rows
    swan.wait_status(a, "202", "busy")
    swan.wait_status(a, "201", "busy")
    assert swan.current_calls(b, "202") == []
    assert swan.current_calls(b, "201") == []
    assert swan.statuses(b) == status_per_asterisk(b.ami)
    assert (swan.statuses(b)["201"], swan.statuses(b)["202"]) == ("unavailable", "available")

    a.phones.hangup("202")
    assert pbx.wait_until(lambda: not a.ami.channels(), WAIT), a.ami.channels()
    assert pbx.wait_until(lambda: swan.current_calls(a, "202") == [], WAIT)
    assert pbx.wait_until(lambda: swan.current_calls(a, "201") == [], WAIT)


def test_a_queue_call_on_one_pbx_counts_in_its_company_s_queues_only(two):
    run, swan = two
    a, b = run.a, run.b
    for ext in ("202", "203", "204"):
        a.phones.set_answer_after(ext, -1)  # ring, never answer: the caller waits
    call_queue(a.ami, "support")
    assert pbx.wait_until(lambda: a.queue_view()["support"][1] == 1, WAIT), a.queue_view()
    assert b.queue_view()["support"][1] == 0
    swan.wait_status(a, "202", "ringing")
    assert swan.user_status(b, "202")[0] == "available"
    checks = QueueChecks(run, swan)
    checks.expect(a, "a caller waiting in A's q-support")
    checks.expect(b, "a caller waiting in A's q-support")
    checks.verify()


def test_terminal_register_changes_the_members_on_its_company_s_pbx_only(two):
    run, swan = two
    a, b = run.a, run.b
    checks = QueueChecks(run, swan)
    before_b = _member_keys(b, "203")
    mac = a.mac("203")
    response = swan.delete(f"/terminal-register/{mac}")
    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"success": True}
    assert a.members()["203"] == []
    assert a.member_lines("203") == []
    assert _member_keys(b, "203") == before_b
    assert len(b.member_lines("203")) == 1
    checks.expect(a, "A's 203 unregistered")
    checks.expect(b, "A's 203 unregistered")

    response = swan.post(f"/terminal-register/{mac}")
    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"success": True}
    assert _member_keys(a, "203") == [
        ("q-support", "PJSIP/203", "PJSIP/203", "dynamic", NAMES["203"])
    ]
    assert len(a.member_lines("203")) == 1
    assert _member_keys(b, "203") == before_b  # not added a second time on B
    checks.expect(a, "A's 203 registered again")
    checks.expect(b, "A's 203 registered again")
    checks.verify()


def test_one_pbx_stopped_and_started_while_the_other_stays_live(two):
    run, swan = two
    a, b = run.a, run.b
    resyncs = run.resyncs(b)
    assert run.listener is not None

    b.asterisk.stop()
    assert pbx.wait_until(lambda: swan.live_state(b) == "stale", WAIT), run.listener.tail()
    assert swan.live_state(a) == "live"
    pbxes = swan.healthz_pbxes()
    assert pbxes["pbx-a"]["ok"] is True
    assert (pbxes["pbx-b"]["ok"], pbxes["pbx-b"]["connected"]) == (False, False)
    # A's events still reach SWAN, and A's company still acts on A
    (member, *_) = a.members()["201"]
    mark = a.ami.mark()
    a.ami.action("QueuePause", Interface=member["location"], Paused="true", Reason="Formación")
    a.ami.wait_event(pause_event(member["location"], True), since=mark)
    swan.wait_status(a, "201", "pause", "Formación")
    response = swan.post(
        "/userStatus/203", {"status": "pause", "reason": "Descanso", "company": "alpha"}
    )
    assert response.status_code == 200, response.content
    assert pbx.wait_until(lambda: _paused_rows(a, "203"), WAIT), a.members()["203"]
    # B's company is told its PBX is away, and B's last known state stays readable, stale
    response = swan.post(
        "/userStatus/203", {"status": "pause", "reason": "Descanso", "company": "beta"}
    )
    assert response.status_code == 503, response.content
    assert swan.user_status(b, "203")[0] == "available"
    assert swan.live_state(a) == "live"

    b.asterisk.start()  # with no members (persistentmembers=no) and no phone registered yet
    b.observe()
    assert pbx.wait_until(lambda: run.resyncs(b) > resyncs, RECONNECT), run.listener.tail()
    assert pbx.wait_until(lambda: swan.live_state(b) == "live", WAIT)
    assert swan.healthz_pbxes()["pbx-b"]["ok"] is True

    def b_follows() -> bool:
        return swan.statuses(b) == status_per_asterisk(b.ami)

    assert pbx.wait_until(b_follows, WAIT), (swan.statuses(b), status_per_asterisk(b.ami))
    checks = QueueChecks(run, swan)
    checks.expect(b, "B back, without members")
    # B's phones and agents back: SWAN follows B's events and acts on B again
    b.phones.stop(*b.registered, kill=True)
    b.phones.start(*b.registered)
    for ext in AGENTS:
        response = swan.post(f"/terminal-register/{b.mac(ext)}")
        assert response.status_code == 200, response.content
    assert {(m["queue"], ext) for ext, rows in b.members().items() for m in rows} == WANTED_MEMBERS
    assert pbx.wait_until(b_follows, WAIT), (swan.statuses(b), status_per_asterisk(b.ami))
    assert swan.statuses(b) == {**dict.fromkeys(NAMES, "available"), "201": "unavailable"}
    checks.expect(b, "B's agents members again")
    # A went on untouched
    assert swan.user_status(a, "201") == ("pause", "Formación")
    assert swan.user_status(a, "203") == ("pause", "Descanso")
    assert swan.statuses(a) == status_per_asterisk(a.ami)
    checks.expect(a, "after B's restart")
    checks.verify()
