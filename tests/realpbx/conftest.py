"""The real-PBX harness: every Asterisk of ../shared/asterisk, in every member layout.

One Asterisk, its five pjsua phones, SWAN's real `pbx_listen` and a raw AMI observer are shared
by all tests of one (version, layout): the session-scoped `pbx_run`, parametrised over both. The
function-scoped `pbx` resets the PBX between tests (calls hung up, members unpaused, DND off,
phones registered and answering, dynamic members back) and hands the test SWAN's REST API
(in-process, Django's test client, an API key) with the AMI settings pointing at that Asterisk.

The SWAN directory (layouts.QUEUES, users 201-205) is committed once for the session, so the
listener subprocess sees it; these tests therefore run last (`pytest_collection_modifyitems`)
and the tables are flushed when they are done. Everything started is stopped at teardown, also
when a test fails: the listener (SIGTERM, then SIGKILL), the phones (phones.py stop --kill, then
by pid), Asterisk (stop.sh, then SIGKILL by its pid file).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
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
from tests.realpbx.ami import RawAmi
from tests.realpbx.layouts import LAYOUTS, NAMES, QUEUES, WEBPHONE

HERE = Path(__file__).resolve().parent
VERSIONS = pbx.tarballs()
COMBINATIONS = [(version, layout) for version in VERSIONS for layout in LAYOUTS]
SKIP_REASON = f"no Asterisk package in {pbx.SHARED_ASTERISK} (../shared/asterisk is absent)"
STATUS_LIMIT = 3.0  # seconds: each status change, after Asterisk's event (the loose bound)
STATUS_MEDIAN_LIMIT = 1.0  # seconds: the contract's bound, on the median of a test's changes
WAIT = 20.0  # seconds: generous deadlines for what the PBX does (calls, registrations)
LATENCIES: list[tuple[str, float]] = []  # every status change measured (for the summary)


def connect_resync(pbx_name: str = "default") -> str:
    """The listener's log line once it has connected to that PBX and read its state."""
    return f"listener resync pbx={pbx_name} reason=connect"


# -- collection and summary -------------------------------------------------------------------


def _is_realpbx(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).parents


def _outside_its_layouts(item: pytest.Item) -> bool:
    """`@pytest.mark.layouts("pjsip", …)`: the test does not run in the other member layouts."""
    wanted = item.get_closest_marker("layouts")
    param = getattr(item, "callspec", None) and item.callspec.params.get("pbx_run")
    return bool(wanted and param and param[1] not in wanted.args)


def pytest_itemcollected(item):
    """`real_pbx` from collection on, so that `-m real_pbx` (or `not real_pbx`) selects them:
    pytest deselects by mark before the reordering hook below runs."""
    if _is_realpbx(item):
        item.add_marker(pytest.mark.real_pbx)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """Marks these tests `real_pbx` and runs them last: their directory rows are committed."""
    ours = [item for item in items if _is_realpbx(item)]
    if not ours:
        return
    deselected = [item for item in ours if _outside_its_layouts(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        ours = [item for item in ours if item not in deselected]
    for item in ours:
        item.add_marker(pytest.mark.real_pbx)
        # declares the database to pytest-django's django_db_setup; `_django_db_marker` below
        # keeps it from wrapping the test in a transaction or flushing after it
        item.add_marker(pytest.mark.django_db)
    others = [item for item in items if not _is_realpbx(item)]
    # Tests with PBXes of their own (test_two_pbxes.py) first: `pbx_run`'s listener serves every
    # PBX defined, so it must not be running yet beside theirs.
    ours.sort(key=lambda item: "pbx_run" in item.fixturenames)
    items[:] = others + ours


def _version_of(nodeid: str) -> str | None:
    for version in VERSIONS:
        if f"[{version}-" in nodeid or f"-{version}-" in nodeid:
            return version
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """`real_pbx: 22.10.1 ran 36 passed, 4 xfailed; …` and, with SWAN_REALPBX_SUMMARY, a JSON
    file that .ci/run reads (it fails when a package is present and no test ran on it)."""
    counts: dict[str, Counter] = {version: Counter() for version in VERSIONS}
    for outcome, reports in terminalreporter.stats.items():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            if "tests/realpbx/" not in nodeid or getattr(report, "when", "call") == "teardown":
                continue
            version = _version_of(nodeid)
            if version is None:
                continue
            ran = outcome in ("passed", "failed", "xfailed", "xpassed") and report.when == "call"
            if ran or outcome in ("error", "skipped"):
                counts[version][outcome] += 1
    parts = []
    for version, counter in counts.items():
        ran = sum(counter[k] for k in ("passed", "failed", "xfailed", "xpassed"))
        detail = ", ".join(f"{n} {k}" for k, n in sorted(counter.items())) or "nothing"
        parts.append(f"{version} ran {ran}: {detail}")
    if counts:
        terminalreporter.write_line("real_pbx: " + "; ".join(parts))
    if LATENCIES:
        ordered = sorted(latency for _label, latency in LATENCIES)
        slowest = max(LATENCIES, key=lambda item: item[1])
        terminalreporter.write_line(
            f"real_pbx: status after Asterisk's event: n={len(ordered)} "
            f"p50={statistics.median(ordered) * 1000:.0f}ms "
            f"p95={ordered[int(0.95 * (len(ordered) - 1))] * 1000:.0f}ms "
            f"max={ordered[-1] * 1000:.0f}ms ({slowest[0]})"
        )
    summary = os.environ.get("SWAN_REALPBX_SUMMARY")
    if summary:
        Path(summary).write_text(
            json.dumps(
                {
                    "packages": sorted(VERSIONS),
                    "versions": {
                        version: {
                            "ran": sum(
                                counter[k] for k in ("passed", "failed", "xfailed", "xpassed")
                            ),
                            **counter,
                        }
                        for version, counter in counts.items()
                    },
                },
                indent=1,
            )
        )


@pytest.fixture(autouse=True)
def _django_db_marker():
    """Overrides pytest-django's: these tests use committed rows and no per-test transaction
    (the listener subprocess must see them; `pbx_env` opens database access itself)."""


# -- the SWAN directory -----------------------------------------------------------------------


def directory_document() -> dict:
    """Company `acme`: users 201-205 with a terminal `PJSIP/<ext>` each (205's a webphone)."""
    users = []
    for ext, name in NAMES.items():
        users.append(
            {
                "extension": ext,
                "name": name,
                "queues": [queue for queue, members in QUEUES.items() if ext in members],
                "terminals": [
                    {
                        "mac": f"02:5a:00:00:0{ext[0]}:{ext[1:]}",
                        "type": "webphone" if ext == WEBPHONE else "desk",
                        "interface": f"PJSIP/{ext}",
                    }
                ],
            }
        )
    return {
        "companies": [
            {
                "slug": "acme",
                "name": "ACME",
                "time_zone": "Europe/Madrid",
                "dial_context": layouts.DIAL_CONTEXT,
                "queues": [
                    {"name": "q-sales", "alarm": {"waiting_calls": 5}},
                    {"name": "q-support", "alarm": {"waiting_calls": 2}},
                ],
                "users": users,
            }
        ]
    }


@dataclass
class Directory:
    key: str
    users: dict  # extension → PbxUser
    terminals: dict  # extension → Terminal


@pytest.fixture(scope="session")
def swan_directory(django_db_setup, django_db_blocker) -> Iterator[Directory]:
    """The directory, committed (the listener subprocess reads it); flushed at the end."""
    from pbx.directory.loading import directory_load
    from pbx.models import ApiKey, Company, PbxUser
    from terminals.models import Terminal

    with django_db_blocker.unblock():
        directory_load(directory_document())
        key = ApiKey(name="realpbx")
        raw = key.set_new_key()
        key.save()
        key.companies.set(Company.objects.filter(slug="acme"))
        users = {u.extension: u for u in PbxUser.objects.filter(company__slug="acme")}
        terminals = {t.user.extension: t for t in Terminal.objects.select_related("user")}
    try:
        yield Directory(key=raw, users=users, terminals=terminals)
    finally:
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


# -- one Asterisk per (version, layout) ------------------------------------------------------


@dataclass
class PbxRun:
    """What a (version, layout) runs: Asterisk, phones, SWAN's listener, an AMI observer."""

    version: str
    layout: layouts.Layout
    asterisk: pbx.Asterisk
    phones: pbx.Phones
    ami: RawAmi | None = None
    listener: Process | None = None
    settings: override_settings | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def observe(self) -> RawAmi:
        """A fresh observer session (after a PBX restart the old one is gone)."""
        if self.ami is not None:
            with contextlib.suppress(Exception):
                self.ami.close()
        self.ami = RawAmi(
            self.asterisk.ami_port, layouts.OBSERVER_USERNAME, layouts.OBSERVER_SECRET
        )
        return self.ami


def _start_listener(run: PbxRun, log_dir: Path) -> Process:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_TEST_NAME": str(connection.settings_dict["NAME"]),
        "DJANGO_SETTINGS_MODULE": "swanproject.settings",
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": str(run.asterisk.ami_port),
        "AMI_USERNAME": pbx.AMI_USERNAME,
        "AMI_SECRET": pbx.AMI_SECRET,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    process = Process(
        "pbx_listen",
        [sys.executable, "manage.py", "pbx_listen", "--ping-seconds", "2"],
        env,
        log_dir / "pbx_listen.log",
    )
    try:
        process.wait_for_log(re.escape(connect_resync()), timeout=60)
    except BaseException:  # not left running: it would take the next listeners' leases
        process.kill()
        raise
    return process


def _stop_listener(listener: Process, django_db_blocker) -> None:
    """SIGTERM (it releases its lease, so the next one is active at once), else SIGKILL."""
    from pbx.models import ListenerLease

    if listener.alive():
        listener.popen.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            listener.popen.wait(timeout=10)
    listener.kill()
    with django_db_blocker.unblock():
        ListenerLease.objects.all().delete()


@pytest.fixture(
    scope="session",
    params=COMBINATIONS or [None],
    ids=[f"{version}-{layout}" for version, layout in COMBINATIONS] or ["no-asterisk"],
)
def pbx_run(request, swan_directory, django_db_blocker, tmp_path_factory) -> Iterator[PbxRun]:
    if request.param is None:
        pytest.skip(SKIP_REASON)
    version, layout_name = request.param
    started = time.monotonic()
    package = pbx.unpacked(VERSIONS[version])
    unpacked = time.monotonic()
    work = tmp_path_factory.mktemp(f"realpbx-{version}-{layout_name}")
    layout = LAYOUTS[layout_name]
    asterisk = pbx.Asterisk(
        package,
        layouts.write_overrides(
            layout,
            package,
            work / "conf",
            swan_user=pbx.AMI_USERNAME,
            swan_secret=pbx.AMI_SECRET,
        ),
    )
    run = PbxRun(version, layout, asterisk, pbx.Phones(asterisk))
    try:
        try:
            asterisk.start()
        except pbx.AsteriskFailed as exc:
            pytest.fail(str(exc), pytrace=False)
        booted = time.monotonic()
        run.phones.start(*pbx.EXTENSIONS)
        registered = time.monotonic()
        run.observe()
        run.settings = override_settings(
            AMI_HOST="127.0.0.1",
            AMI_PORT=asterisk.ami_port,
            AMI_USERNAME=pbx.AMI_USERNAME,
            AMI_SECRET=pbx.AMI_SECRET,
            PBX_GATEWAY="pbx.gateway.ami.AmiGateway",
        )
        run.settings.enable()
        with django_db_blocker.unblock():
            run.listener = _start_listener(run, work)
        run.timings = {
            "unpack": unpacked - started,
            "boot": booted - unpacked,
            "phones": registered - booted,
            "listener": time.monotonic() - registered,
        }
        yield run
    finally:
        if run.settings is not None:
            run.settings.disable()
        if run.listener is not None:
            _stop_listener(run.listener, django_db_blocker)
        if run.ami is not None:
            with contextlib.suppress(Exception):
                run.ami.close()
        run.phones.stop_all()
        asterisk.stop()
        if os.environ.get("SWAN_ASTERISK_KEEP"):
            sys.stderr.write(f"\nreal_pbx: kept {asterisk.rundir} and {work}\n")
        else:
            shutil.rmtree(asterisk.rundir, ignore_errors=True)


# -- per test: a clean PBX and SWAN's API ------------------------------------------------------


class Swan:
    """SWAN's REST API in-process, and the status checks measured against Asterisk's events."""

    def __init__(self, run: PbxRun, directory: Directory):
        self.run = run
        self.directory = directory
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {directory.key}")
        self.latencies: list[float] = []

    # the API
    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {})

    def post(self, path: str, data: dict | None = None):
        return self.client.post(path, data or {}, format="json")

    def delete(self, path: str):
        return self.client.delete(path)

    def user_status(self, ext: str) -> dict:
        response = self.get(f"/userStatus/{ext}")
        assert response.status_code == 200, response.content
        return response.json()["result"]

    def blf(self) -> dict[str, dict]:
        response = self.get("/blf-users/acme")
        assert response.status_code == 200, response.content
        return {row["extension"]: row for row in response.json()["result"]}

    def wait_status(
        self, ext: str, status: str, *, after: float, description: str | None = None
    ) -> float:
        """Polls userStatus until it says `status` (and `description`); returns the seconds
        since `after` (when the observer saw Asterisk's event) and checks blf-users agrees."""
        seen: dict = {}

        def matches() -> bool:
            seen.update(self.user_status(ext))
            return seen["status"] == status and description in (None, seen["description"])

        ok = pbx.wait_until(matches, WAIT, interval=0.02)
        latency = max(0.0, time.monotonic() - after)
        assert ok, f"userStatus/{ext} is {seen}, not {status} {description or ''} after {WAIT}s"
        row = self.blf()[ext]
        assert (row["status"], row["description"]) == (seen["status"], seen["description"])
        self.latencies.append(latency)
        LATENCIES.append((f"{self.run.version}-{self.run.layout.name} {ext}->{status}", latency))
        assert latency <= STATUS_LIMIT, f"{ext} became {status} {latency:.2f}s after the event"
        return latency

    def check_latencies(self) -> None:
        if self.latencies:
            median = statistics.median(self.latencies)
            assert median <= STATUS_MEDIAN_LIMIT, (
                f"status followed Asterisk in {median:.2f}s (median of {self.latencies})"
            )


def _members_of(ami: RawAmi) -> dict[str, list[dict]]:
    """Extension → the QueueMember rows Asterisk reports for it."""
    members, _callers = ami.queue_status()
    by_ext: dict[str, list[dict]] = defaultdict(list)
    for member in members:
        for ext in NAMES:
            if member.get("name") == NAMES[ext] or ext in member.get("location", ""):
                by_ext[ext].append(member)
                break
    return by_ext


def reset(run: PbxRun, swan: Swan) -> None:
    """Back to the start: no calls, no callers, nobody paused, no DND, phones registered and
    answering after ANSWER_AFTER_MS, exactly the layout's members; then SWAN has caught up."""
    ami = run.ami
    if ami is None or ami._closed:
        ami = run.observe()
    for channel in ami.channels():
        ami.action("Hangup", ok=False, Channel=channel["channel"])
    states = run.phones.status()
    missing = [ext for ext in pbx.EXTENSIONS if not states.get(ext, {}).get("registered")]
    if missing:
        run.phones.stop(*missing, kill=True)
        run.phones.start(*missing)
    for ext in pbx.EXTENSIONS:
        if states.get(ext, {}).get("answer_after_ms") != pbx.ANSWER_AFTER_MS:
            run.phones.set_answer_after(ext, pbx.ANSWER_AFTER_MS)
        ami.action("DBDel", ok=False, Family="DND", Key=ext)
        ami.action("Setvar", Variable=f"DEVICE_STATE(Custom:DND{ext})", Value="NOT_INUSE")
    members = _members_of(ami)
    wanted = {(queue, ext) for queue, exts in QUEUES.items() for ext in exts}
    for ext, rows in members.items():
        for row in rows:
            if row.get("paused") == "1":
                ami.action("QueuePause", Interface=row["location"], Paused="false")
            if row.get("membership") == "dynamic" and (
                run.layout.static or (row["queue"], ext) not in wanted
            ):
                ami.action("QueueRemove", Queue=row["queue"], Interface=row["location"])
    from terminals.models import Terminal

    Terminal.objects.update(registered=False, registered_at=None)
    if not run.layout.static:
        # layout (c): SWAN's own terminal-register puts the agents in their queues
        for ext in sorted({ext for exts in QUEUES.values() for ext in exts}):
            terminal = swan.directory.terminals[ext]
            response = swan.post(f"/terminal-register/{terminal.mac}")
            assert response.status_code == 200, response.content
    idle = pbx.wait_until(
        lambda: not ami.channels() and not ami.queue_status()[1] and _all_idle(run), WAIT
    )
    assert idle, f"the PBX did not settle: {ami.channels()} {ami.device_states()}"
    # SWAN follows within a second or so; a layout SWAN does not understand yet never does,
    # so this waits a bounded time and the tests judge.
    pbx.wait_until(
        lambda: all(row["status"] == "available" for row in swan.blf().values()), 5.0, 0.1
    )


def _all_idle(run: PbxRun) -> bool:
    states = run.ami.device_states()
    return all(states.get(f"PJSIP/{ext}") == "NOT_INUSE" for ext in pbx.EXTENSIONS)


@pytest.fixture
def pbx_env(
    request, pbx_run, swan_directory, django_db_blocker, monkeypatch
) -> Iterator[tuple[PbxRun, Swan]]:
    """The PBX of this (version, layout), reset, with SWAN's API; DB access without a
    transaction (the listener writes from its own process)."""
    from pbx.api.authentication import ApiKeyRateThrottle

    # the tests poll SWAN every 20 ms: far beyond one key's rate limit (1200/min)
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": None})
    with django_db_blocker.unblock():
        swan = Swan(pbx_run, swan_directory)
        reset(pbx_run, swan)
        yield pbx_run, swan
    if pbx_run.listener is not None and not pbx_run.listener.alive():
        pytest.fail(f"pbx_listen died\n{pbx_run.listener.tail()}")


@pytest.fixture
def run(pbx_env) -> PbxRun:
    return pbx_env[0]


@pytest.fixture
def swan(pbx_env) -> Swan:
    return pbx_env[1]


def members_of(run: PbxRun, ext: str) -> list[dict]:
    """The QueueMember rows Asterisk reports for the agent `ext`."""
    return _members_of(run.ami)[ext]
