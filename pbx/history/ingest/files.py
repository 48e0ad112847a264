"""Reading a growing log file from where the last run stopped, through rotation and truncation."""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pbx.models.history import IngestCursor

logger = logging.getLogger("swan.ingest")
FINGERPRINT_BYTES = 1024
READ_BYTES = 1 << 20


@dataclass(slots=True)
class RawLine:
    number: int
    text: str
    offset_after: int


@dataclass(slots=True)
class Block:
    """Complete lines read in one go: their text (newline-terminated), first number, offset after."""

    text: str
    first_number: int
    count: int
    offset_after: int

    @property
    def last(self) -> RawLine:
        """The block's last line, as far as the cursor needs it."""
        return RawLine(self.first_number + self.count - 1, "", self.offset_after)


@dataclass(slots=True)
class Segment:
    """A stretch of one file to read: the rotated-away old file's tail, or the live file."""

    path: Path
    inode: int
    offset: int
    line_number: int
    is_current: bool


def cursor_for(path: Path, *, kind: str, pbx: str) -> IngestCursor:
    """The cursor of this file as a source of this PBX (a PBX's and another's are two)."""
    source = str(path.resolve()) if path.exists() else str(path.absolute())
    cursor, _created = IngestCursor.objects.get_or_create(
        pbx=pbx, source=source, defaults={"kind": kind}
    )
    return cursor


def _fingerprint(path: Path, length: int) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(length)).hexdigest()


def plan(path: Path, cursor: IngestCursor) -> tuple[list[Segment], list[str]]:
    """What to read now, and notes on what was noticed (rotation, truncation).

    Rotation: the file at `path` has another inode. The old file is looked for beside it by its
    inode (logrotate's `queue_log-20220801` or `queue_log.1`), if it still starts as the file
    read did (an inode is reused once its file is deleted), and its unread tail is read first.
    Truncation: same inode but shorter than the offset, or its first bytes changed: read again
    from the start, after the unread tail of a file beside it that starts as the file read did
    (copytruncate's copy: what was written since the last read is only there).
    """
    notes: list[str] = []
    segments: list[Segment] = []
    stat = path.stat()
    offset, line_number = cursor.offset, cursor.line_number
    if cursor.inode is not None and cursor.inode != stat.st_ino:
        old = _find_by_inode(path.parent, cursor.inode)
        if old is not None and not _starts_as_read(old, cursor):
            old = None  # its inode now names another file
        if old is not None and old.stat().st_size > offset:
            segments.append(Segment(old, cursor.inode, offset, line_number, is_current=False))
            notes.append(f"{path} was rotated; reading the rest of {old.name} first")
        else:
            notes.append(f"{path} was rotated; reading the new file from the start")
        offset = line_number = 0
    else:
        if offset > stat.st_size:
            notes.append(
                f"{path} is shorter than the {offset} bytes already read: truncated, "
                "reading from the start"
            )
        elif offset and cursor.fingerprint and not _starts_as_read(path, cursor):
            notes.append(f"{path} starts differently than before: replaced, reading from the start")
        else:
            segments.append(Segment(path, stat.st_ino, offset, line_number, is_current=True))
            return segments, notes
        copy = _copy_of_read(path, cursor)
        if copy is not None:
            copy_inode = copy.stat().st_ino
            segments.append(Segment(copy, copy_inode, offset, line_number, is_current=False))
            notes.append(f"reading the rest of {copy.name} first (copied before the truncation)")
        offset = line_number = 0
    segments.append(Segment(path, stat.st_ino, offset, line_number, is_current=True))
    return segments, notes


def _starts_as_read(path: Path, cursor: IngestCursor) -> bool:
    """Whether the file starts with the bytes the cursor's file started with (True when the
    cursor kept none to compare)."""
    if not cursor.fingerprint:
        return True
    try:
        return _fingerprint(path, cursor.fingerprint_length) == cursor.fingerprint
    except OSError:
        return False


def _copy_of_read(path: Path, cursor: IngestCursor) -> Path | None:
    """A file beside `path`, longer than what was read, that starts as the file read did."""
    if not cursor.fingerprint or not cursor.offset:
        return None
    try:
        with os.scandir(path.parent) as entries:
            candidates = [
                Path(entry.path)
                for entry in entries
                if entry.is_file(follow_symlinks=False)
                and entry.name != path.name
                and entry.stat().st_size > cursor.offset
            ]
    except OSError:
        return None
    return next((found for found in sorted(candidates) if _starts_as_read(found, cursor)), None)


def _find_by_inode(directory: Path, inode: int) -> Path | None:
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and entry.inode() == inode:
                    return Path(entry.path)
    except OSError:
        return None
    return None


def read_lines(segment: Segment) -> Iterator[RawLine]:
    """Complete lines from the segment's offset; a last line without its newline waits."""
    number = segment.line_number
    offset = segment.offset
    with segment.path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            if not raw.endswith(b"\n"):
                return  # Asterisk is still writing it
            offset += len(raw)
            number += 1
            yield RawLine(number, _decode(raw), offset)


def read_blocks(segment: Segment, size: Callable[[int], int]) -> Iterator[Block]:
    """Like read_lines, `size(lines read so far)` complete lines at a time, as whole texts."""
    number = segment.line_number
    offset = segment.offset
    complete: list[bytes] = []
    partial = b""  # the last line, still without its newline
    with segment.path.open("rb") as handle:
        handle.seek(offset)
        while True:
            wanted = size(number - segment.line_number)
            while len(complete) < wanted and (chunk := handle.read(READ_BYTES)):
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                complete.extend(lines)
            if not complete:
                return  # a partial line waits: Asterisk is still writing it
            raws, complete = complete[:wanted], complete[wanted:]
            data = b"\n".join(raws) + b"\n"
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = "".join(_decode(raw) + "\n" for raw in raws)
            offset += len(data)
            yield Block(text, number + 1, len(raws), offset)
            number += len(raws)


def read_ahead(blocks: Iterator[Block], depth: int = 2) -> Iterator[tuple[Block, list[str]]]:
    """The blocks with their lines (block_lines), read and split on a thread ahead of the caller.

    The next block is read from the file while the database stores this one. Stopping early
    (an error, a stop request) stops the reader too.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item: object) -> bool:
        """Queues `item` unless the caller stopped reading: a full queue must not hang the join."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for block in blocks:
                if not offer((block, block_lines(block))):
                    return
            offer(done)
        except BaseException as exc:  # the caller raises it
            offer(exc)

    reader = threading.Thread(target=read, name="queue_log-read", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def lines_before(segment: Segment, count: int) -> list[str]:
    """Up to `count` lines that end where the segment starts, oldest first (the repeats window)."""
    if segment.offset == 0 or count <= 0:
        return []
    size = 64 * 1024
    with segment.path.open("rb") as handle:
        while True:
            start = max(0, segment.offset - size)
            handle.seek(start)
            raws = handle.read(segment.offset - start).split(b"\n")[:-1]
            if len(raws) > count or start == 0:
                return [clean(_decode(raw)) for raw in raws[-count:]]
            size *= 4


def clean(text: str) -> str:
    """A line as it is compared and parsed: no NUL bytes (a crash), no carriage return."""
    return text.replace("\x00", "").rstrip("\r")


def block_lines(block: Block) -> list[str]:
    """The block's lines, cleaned as `clean` does, without a Python loop for ordinary text."""
    text = block.text[:-1]
    if "\x00" in text:
        text = text.replace("\x00", "")
    lines = text.split("\n")
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    return lines


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Caller names from old phones arrive in Latin-1; keep them readable.
        return raw.decode("latin-1")


def advance(cursor: IngestCursor, segment: Segment, line: RawLine) -> None:
    """Moves the cursor past `line` (called once a batch, with its last line)."""
    cursor.inode = segment.inode
    cursor.offset = line.offset_after
    cursor.line_number = line.number
    wanted = min(FINGERPRINT_BYTES, line.offset_after)
    if segment.is_current and cursor.fingerprint_length < wanted:
        cursor.fingerprint = _fingerprint(segment.path, wanted)
        cursor.fingerprint_length = wanted


def start_segment(cursor: IngestCursor, segment: Segment) -> None:
    """Points the cursor at the start of a segment (the live file after a rotation)."""
    if (cursor.inode, cursor.offset) != (segment.inode, segment.offset):
        cursor.inode = segment.inode
        cursor.offset = segment.offset
        cursor.line_number = segment.line_number
        cursor.fingerprint = ""
        cursor.fingerprint_length = 0
