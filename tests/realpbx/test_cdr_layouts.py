"""Master.csv as cdr_csv writes it with each cdr.conf `[csv]` choice, read by SWAN's ingest.

cdr_csv logs 16 columns unless `loguniqueid` and `loguserfield` add theirs (Asterisk's defaults
are off; the sample cdr.conf turns both on), and `newcdrcolumns` adds peeraccount, linkedid and
sequence: 16 to 21 columns. An operator who changes cdr.conf leaves a file of several. One
Asterisk per version of its own (no listener): each choice in turn (cdr.conf written, cdr_csv
reloaded), one call each, then the one file ingested.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import shutil
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from tests.realpbx import layouts, pbx
from tests.realpbx.ami import RawAmi
from tests.realpbx.conftest import SKIP_REASON, VERSIONS, WAIT
from tests.realpbx.history import forget_history, pbx_time_zone

# (loguniqueid, loguserfield, newcdrcolumns) → the columns cdr_csv writes
CHOICES = {
    (False, False, False): 16,
    (True, False, False): 17,
    (False, True, False): 17,
    (True, True, False): 18,
    (False, False, True): 19,
    (True, False, True): 20,
    (False, True, True): 20,
    (True, True, True): 21,
}
_numbers = itertools.count(1)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _cdr_conf(loguniqueid: bool, loguserfield: bool, newcdrcolumns: bool) -> str:
    return (
        "[general]\nenable = yes\nunanswered = no\ncongestion = no\nbatch = no\n\n[csv]\n"
        f"usegmtime = no\nloguniqueid = {_yes(loguniqueid)}\nloguserfield = {_yes(loguserfield)}\n"
        f"accountlogs = no\nnewcdrcolumns = {_yes(newcdrcolumns)}\n"
    )


@pytest.fixture(
    scope="module",
    params=list(VERSIONS) or [None],
    ids=[f"{version}-cdr" for version in VERSIONS] or ["no-asterisk"],
)
def cdr_pbx(request, tmp_path_factory) -> Iterator[tuple[pbx.Asterisk, RawAmi]]:
    if request.param is None:
        pytest.skip(SKIP_REASON)
    package = pbx.unpacked(VERSIONS[request.param])
    work = tmp_path_factory.mktemp(f"realpbx-{request.param}-cdr")
    overrides = layouts.write_overrides(
        layouts.LAYOUTS["pjsip"], package, work / "conf", swan_user="swan", swan_secret="x"
    )
    asterisk = pbx.Asterisk(package, overrides)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, asterisk.rundir, ignore_errors=True)
        cleanup.callback(asterisk.stop)
        try:
            asterisk.start()
        except pbx.AsteriskFailed as exc:
            pytest.fail(str(exc), pytrace=False)
        ami = RawAmi(asterisk.ami_port, layouts.OBSERVER_USERNAME, layouts.OBSERVER_SECRET)
        cleanup.callback(ami.close)
        yield asterisk, ami


def _rows(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text()))) if path.exists() else []


def _call(asterisk: pbx.Asterisk, ami: RawAmi, choice: tuple[bool, bool, bool]) -> list[str]:
    """One call under this choice: cdr.conf written, cdr_csv reloaded; the Master.csv row of
    its first channel (the Local channel's `;1`, which runs Wait and carries the userfield)."""
    (asterisk.rundir / "etc" / "cdr.conf").write_text(_cdr_conf(*choice))
    asterisk.cli("module reload cdr_csv.so")
    number = f"60022{next(_numbers):04d}"
    ami.action(
        "Originate",
        Channel="Local/cdr-mark@incoming",
        Application="Wait",
        Data="0",
        CallerID=f"{number} <{number}>",
        Variable=f"CDR(userfield)=ticket-{number}",
        Async="true",
    )
    path = asterisk.log_dir / "cdr-csv" / "Master.csv"

    def row():
        return next((r for r in _rows(path) if r[1] == number and r[5].endswith(";1")), None)

    found = pbx.wait_until(row, WAIT, interval=0.1)
    assert found, f"no Master.csv row of {number}: {_rows(path)[-3:]}"
    return found


def test_ingest_reads_every_layout_cdr_csv_writes_in_one_file(cdr_pbx, django_db_blocker):
    asterisk, ami = cdr_pbx
    written = {choice: _call(asterisk, ami, choice) for choice in CHOICES}
    assert {choice: len(row) for choice, row in written.items()} == CHOICES

    with django_db_blocker.unblock():
        from pbx.models import CdrRecord

        forget_history()
        try:
            out = io.StringIO()
            call_command(
                "ingest_cdr",
                str(asterisk.log_dir / "cdr-csv" / "Master.csv"),
                time_zone=pbx_time_zone(),
                stdout=out,
                stderr=out,
            )
            assert " 0 malformed" in out.getvalue(), out.getvalue()
            for (uniqueid, userfield, newcolumns), row in written.items():
                number = row[1]
                stored = CdrRecord.objects.get(src=number, channel=row[5])
                assert (stored.dcontext, stored.disposition) == ("incoming", "ANSWERED")
                assert bool(stored.uniqueid) is uniqueid, (row, stored.uniqueid)
                if uniqueid:
                    assert stored.uniqueid in row
                assert stored.userfield == (f"ticket-{number}" if userfield else "")
                assert bool(stored.linkedid) is newcolumns, (row, stored.linkedid)
        finally:
            forget_history()
