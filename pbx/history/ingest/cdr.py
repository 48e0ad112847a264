"""CDR rows from Master.csv (cdr_csv's 16 to 21 columns, cdr_custom's 19) and from a `cdr` table."""

from __future__ import annotations

import csv
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from pbx.directory.agent_matching import AgentDirectory, device_of
from pbx.history.ingest.queue_log import MalformedLine
from pbx.models.history import CdrRecord

# cdr_csv without loguniqueid and loguserfield: its defaults (the sample cdr.conf turns both on).
_CSV_BASE = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
]
_NEW_COLUMNS = ["peeraccount", "linkedid", "sequence"]  # newcdrcolumns = yes
# cdr_custom's sample line, which sites keep as Master.csv: clid first, accountcode after amaflags.
_CUSTOM_19 = [
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "accountcode",
    "uniqueid",
    "userfield",
    "sequence",
]
# A uniqueid, with the `systemname` prefix Asterisk puts before it when asterisk.conf sets one.
_UNIQUEID = re.compile(r"^(?:[\w.-]+-)?\d+\.\d+\Z")
_DATE_CELL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\Z")
_AMAFLAGS = {"1": "OMIT", "2": "BILLING", "3": "DOCUMENTATION"}
_ZERO_DATE = re.compile(r"^0000-00-00")
_LENGTHS: dict[str, int] = {
    f.name: getattr(f, "max_length", None) or 0
    for f in CdrRecord._meta.get_fields()
    if getattr(f, "max_length", None) and f.get_internal_type() == "CharField"
}


@dataclass(slots=True)
class CdrRow:
    values: dict[str, Any]
    digest: uuid.UUID


def parse_csv_line(text: str, *, local_tz: tzinfo, directory: AgentDirectory) -> CdrRow | None:
    """One Master.csv line → a row; None for a blank line. Times are the PBX's local time."""
    text = text.rstrip("\r\n")
    if not text.strip():
        return None
    try:
        cells = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise MalformedLine(f"not CSV: {exc}") from exc
    layout = csv_layout(cells)
    if layout is None:
        raise MalformedLine(f"{len(cells)} columns; 16 to 21 (cdr_csv) or 19 (cdr_custom) expected")
    return build_row(dict(zip(layout, cells, strict=True)), local_tz=local_tz, directory=directory)


def csv_layout(cells: list[str]) -> list[str] | None:
    """The column names of a Master.csv line, by its number of cells (FORMATS.md): cdr_csv's
    16 columns, then uniqueid and userfield when logged, then newcdrcolumns' three; or the
    cdr_custom sample's 19. Where a count fits two layouts, the cells tell them apart: a
    uniqueid is `<epoch>.<n>`, and cdr_custom's 9th cell is the start time (cdr_csv's is the
    application's data)."""
    count = len(cells)
    if count == 19 and _DATE_CELL.match(cells[8].strip()):
        return _CUSTOM_19
    logged = count - len(_CSV_BASE) - (len(_NEW_COLUMNS) if count >= 19 else 0)
    if logged == 2:
        extra = ["uniqueid", "userfield"]
    elif logged == 1:
        extra = ["uniqueid"] if _UNIQUEID.match(cells[16].strip()) else ["userfield"]
    elif logged == 0:
        extra = []
    else:
        return None
    return [*_CSV_BASE, *extra, *(_NEW_COLUMNS if count >= 19 else [])]


def build_row(fields: Mapping[str, Any], *, local_tz: tzinfo, directory: AgentDirectory) -> CdrRow:
    """A row from named fields (a CSV line or a table row); `calldate` stands for `start`."""
    start = _time(fields.get("start", fields.get("calldate")), local_tz, "start")
    if start is None:
        raise MalformedLine("no start time")
    values: dict[str, Any] = {
        "calldate": start,
        "answer": _time(fields.get("answer"), local_tz, "answer"),
        "end": _time(fields.get("end"), local_tz, "end"),
        "duration": _count(fields.get("duration"), "duration"),
        "billsec": _count(fields.get("billsec"), "billsec"),
    }
    for name in [
        "clid",
        "src",
        "dst",
        "dcontext",
        "channel",
        "dstchannel",
        "lastapp",
        "lastdata",
        "disposition",
        "amaflags",
        "accountcode",
        "uniqueid",
        "linkedid",
        "sequence",
        "userfield",
        "recordingfile",
    ]:
        value = fields.get(name)
        text = "" if value is None or value == "NULL" else str(value)
        if len(text) > _LENGTHS[name]:
            raise MalformedLine(f"{name} longer than {_LENGTHS[name]} characters")
        values[name] = text
    values["amaflags"] = _AMAFLAGS.get(values["amaflags"], values["amaflags"])
    values["channel_device"] = device_of(values["channel"])[: _LENGTHS["channel_device"]]
    values["dstchannel_device"] = device_of(values["dstchannel"])[: _LENGTHS["dstchannel_device"]]
    values["company_id"] = directory.company_for_devices(
        values["channel_device"], values["dstchannel_device"]
    )
    return CdrRow(values, cdr_digest(values))


# What identifies a call's row: no answer or end (the table may lack them), and the start as a
# UTC instant, so the same call read from Master.csv in UTC and from the table in local time
# hashes alike (migration 0025 recomputed the digests stored before).
DIGEST_FIELDS = (
    "uniqueid",
    "src",
    "dst",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "disposition",
    "duration",
    "billsec",
    "sequence",
)


def cdr_digest(values: Mapping[str, Any]) -> uuid.UUID:
    """The row's key among its PBX's rows, from its values as stored."""
    start = values["calldate"].astimezone(UTC).isoformat()
    key = "\x1f".join([start, *(str(values[name]) for name in DIGEST_FIELDS)])
    return uuid.UUID(bytes=hashlib.md5(key.encode("utf-8"), usedforsecurity=False).digest())


def _time(value: Any, local_tz: tzinfo, name: str) -> datetime | None:
    if value is None or value == "" or value == "NULL":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if _ZERO_DATE.match(text):
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise MalformedLine(f"{name} {text[:30]!r} is not a date") from exc
    # fold=0: in the repeated hour of a DST change the first (summer-time) instant is taken.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=local_tz)


def _count(value: Any, name: str) -> int:
    if value is None or value == "":
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise MalformedLine(f"{name} {str(value)[:20]!r} is not a whole number") from exc
    if number < 0:
        raise MalformedLine(f"{name} is negative")
    return number
