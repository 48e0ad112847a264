"""The tests' own reading of what Asterisk wrote: queue_log and cdr-csv/Master.csv.

Deliberately simple and independent of pbx/history/ingest: the history tests compare SWAN's figures with
what this code counts in the same files.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.core.management import call_command

from tests.realpbx import pbx

# cdr_csv with loguniqueid, loguserfield and newcdrcolumns (layouts._CDR)
CDR_COLUMNS = (
    *("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp"),
    *("lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags"),
    *("uniqueid", "userfield", "peeraccount", "linkedid", "sequence"),
)
EXITS = {"ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"}
TRANSFERS = {"BLINDTRANSFER", "ATTENDEDTRANSFER", "TRANSFER"}


@dataclass
class Stay:
    """One caller's stay in one queue, as its queue_log lines tell it."""

    entered: int
    agent: str | None = None  # the member name of CONNECT
    exit: str | None = None  # ABANDON, EXITWITHTIMEOUT, … (no CONNECT)
    talk: int = 0


def queue_log_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split("|") for line in path.read_text(errors="replace").splitlines() if line]


def stays(path: Path, queues) -> dict[tuple[str, str], Stay]:
    """(callid, queue) → its stay, for the queues named."""
    result: dict[tuple[str, str], Stay] = {}
    for fields in queue_log_lines(path):
        if len(fields) < 5 or fields[2] not in queues:
            continue
        stamp, callid, queue, agent, event, *data = fields
        key = (callid, queue)
        if event == "ENTERQUEUE":
            result[key] = Stay(entered=int(stamp))
            continue
        stay = result.get(key)
        if stay is None:
            continue
        if event == "CONNECT":
            stay.agent = agent
        elif event in ("COMPLETEAGENT", "COMPLETECALLER"):
            stay.talk = int(data[1])
        elif event in TRANSFERS:
            stay.talk = int(data[-2])  # …|holdtime|calltime|origposition
        elif event in EXITS and stay.agent is None:
            stay.exit = event
    return result


def events(path: Path) -> set[str]:
    return {fields[4] for fields in queue_log_lines(path) if len(fields) >= 5}


def cdr_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    return [dict(zip(CDR_COLUMNS, row, strict=False)) for row in csv.reader(io.StringIO(text))]


def device(channel: str) -> str:
    """`PJSIP/201-0000001a` → `PJSIP/201`; `Local/201@from-queue-0000000b;2` → `Local/201@from-queue`."""
    name = channel.split(";")[0]
    return name.rsplit("-", 1)[0] if "-" in name else name


def involves(row: dict[str, str], ext: str) -> bool:
    mine = f"PJSIP/{ext}"
    return (
        device(row["channel"]) == mine
        or device(row["dstchannel"]) == mine
        or ext in (row["src"], row["dst"])
    )


def calls_of(rows: list[dict[str, str]], ext: str) -> dict[str, list[dict[str, str]]]:
    """linkedid → the rows of that call the extension took part in."""
    calls: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if involves(row, ext):
            calls[row["linkedid"] or row["uniqueid"]].append(row)
    return calls


def device_legs(legs: list[dict[str, str]], ext: str) -> list[dict[str, str]]:
    """The rows on the extension's own phone (a queue call's caller leg, an originated
    channel, carries the agent's number as src only through connected-line updates)."""
    mine = f"PJSIP/{ext}"
    on_phone = [r for r in legs if mine in (device(r["channel"]), device(r["dstchannel"]))]
    return on_phone or legs


def other_party(legs: list[dict[str, str]], ext: str) -> tuple[str, str]:
    """(direction, number) of the call for the extension: its phone placed the first row on
    it (outgoing, the number dialled) or was rung by it (incoming, the caller)."""
    first = min(device_legs(legs, ext), key=lambda row: row["start"])
    if device(first["channel"]) == f"PJSIP/{ext}" or (
        first["src"] == ext and device(first["dstchannel"]) != f"PJSIP/{ext}"
    ):
        return "outgoing", first["dst"]
    return "incoming", first["src"] or first["clid"].rpartition("<")[2].rstrip(">")


def talk_seconds(legs: list[dict[str, str]], ext: str) -> int:
    """The longest answered row on the extension's phone."""
    answered = [int(r["billsec"]) for r in device_legs(legs, ext) if r["disposition"] == "ANSWERED"]
    return max(answered, default=0)


def pbx_time_zone() -> str:
    """The zone Asterisk writes Master.csv in (usegmtime = no: the machine's local time)."""
    if os.environ.get("TZ"):
        return os.environ["TZ"].lstrip(":")
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return "UTC"
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "UTC"


def ingest(run) -> None:
    """SWAN's real ingest commands on the files of this Asterisk."""
    log_dir = run.asterisk.log_dir
    out = io.StringIO()
    call_command("ingest_queue_log", str(log_dir / "queue_log"), stdout=out, stderr=out)
    call_command(
        "ingest_cdr",
        str(log_dir / "cdr-csv" / "Master.csv"),
        time_zone=pbx_time_zone(),
        stdout=out,
        stderr=out,
    )
    assert "malformed" not in out.getvalue() or " 0 malformed" in out.getvalue(), out.getvalue()


def forget_history() -> None:
    """Earlier runs (another version's PBX) left their history in the shared test database."""
    from pbx.models import CdrRecord, IngestCursor, QueueEntry, QueueLogBlockTimes, QueueLogLine

    for model in (QueueEntry, QueueLogLine, QueueLogBlockTimes, CdrRecord, IngestCursor):
        model.objects.all().delete()


def cdr_barrier(run, numbers: set[str], timeout: float = 20.0) -> list[dict[str, str]]:
    """Waits until no channel is left and Master.csv has every call's rows.

    cdr_csv writes a CDR when it is dispatched, in order, after its channels hung up. Once
    every channel is gone, a last call (`cdr-mark`) is placed: when its row is in the file,
    every earlier call's rows are too. Every caller in `numbers` must have a row as well.
    """
    from tests.realpbx.helpers import call_queue

    assert pbx.wait_until(lambda: not run.ami.channels(), timeout), run.ami.channels()
    mark = call_queue(run.ami, "cdr-mark", seconds=0)
    path = run.asterisk.log_dir / "cdr-csv" / "Master.csv"

    def written():
        rows = cdr_rows(path)
        seen = {row["src"] for row in rows}
        return rows if mark in seen and numbers <= seen else None

    rows = pbx.wait_until(written, timeout, interval=0.1)
    assert rows, f"Master.csv lacks rows of {numbers - {r['src'] for r in cdr_rows(path)}}"
    assert pbx.wait_until(lambda: not run.ami.channels(), timeout), run.ami.channels()
    return rows


def today_start(time_zone: str) -> int:
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(time_zone))
    return int(now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC).timestamp())
