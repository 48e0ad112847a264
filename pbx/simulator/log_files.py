"""Writers of Asterisk's history files: queue_log lines and cdr_csv Master.csv rows."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo


def queue_log_line(
    when: float, callid: str, queue: str, agent: str, event: str, *data: object
) -> str:
    """`time|callid|queue|agent|event|data…`; events without data keep one empty field."""
    fields = [str(int(when)), callid, queue, agent, event, *(str(d) for d in data)]
    if not data:
        fields.append("")
    return "|".join(fields)


@dataclass(frozen=True)
class CdrRow:
    """One cdr_csv row; `answer` is None when the call was never answered."""

    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    start: float
    answer: float | None
    end: float
    disposition: str
    uniqueid: str
    linkedid: str
    sequence: int
    time_zone: str = "UTC"
    accountcode: str = ""
    amaflags: str = "DOCUMENTATION"
    userfield: str = ""
    peeraccount: str = ""

    @property
    def duration(self) -> int:
        return int(self.end) - int(self.start)

    @property
    def billsec(self) -> int:
        return 0 if self.answer is None else int(self.end) - int(self.answer)


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def caller_id(name: str, number: str) -> str:
    """Asterisk's merged caller id: `"Name" <number>`, or whichever part is set."""
    if name and number:
        return f'"{name}" <{number}>'
    return name or number


def cdr_line(record: CdrRow) -> str:
    """The 21 columns of cdr_csv with `loguniqueid`, `loguserfield` and `newcdrcolumns`."""
    zone = ZoneInfo(record.time_zone)

    def stamp(epoch: float) -> str:
        return _quoted(datetime.fromtimestamp(int(epoch), zone).strftime("%Y-%m-%d %H:%M:%S"))

    return ",".join(
        [
            _quoted(record.accountcode),
            _quoted(record.src),
            _quoted(record.dst),
            _quoted(record.dcontext),
            _quoted(record.clid),
            _quoted(record.channel),
            _quoted(record.dstchannel),
            _quoted(record.lastapp),
            _quoted(record.lastdata),
            stamp(record.start),
            "" if record.answer is None else stamp(record.answer),
            stamp(record.end),
            str(record.duration),
            str(record.billsec),
            _quoted(record.disposition),
            _quoted(record.amaflags),
            _quoted(record.uniqueid),
            _quoted(record.userfield),
            _quoted(record.peeraccount),
            _quoted(record.linkedid),
            str(record.sequence),
        ]
    )


class _Appender:
    """Appends whole lines and flushes each, so a tailing reader never sees half a line."""

    def __init__(self, path: Path | str | None):
        self.path = Path(path) if path else None
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def append(self, line: str) -> None:
        if self.path is None:
            return
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8", newline="")
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class History:
    """Both history files; a path of None keeps that file unwritten."""

    def __init__(self, queue_log: Path | str | None = None, cdr: Path | str | None = None):
        self._queue_log = _Appender(queue_log)
        self._cdr = _Appender(cdr)

    def queue_log(
        self, when: float, callid: str, queue: str, agent: str, event: str, *data: object
    ) -> None:
        self._queue_log.append(queue_log_line(when, callid, queue, agent, event, *data))

    def cdr(self, record: CdrRow) -> None:
        self._cdr.append(cdr_line(record))

    def close(self) -> None:
        self._queue_log.close()
        self._cdr.close()
