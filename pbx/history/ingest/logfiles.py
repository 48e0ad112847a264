"""Which stored queue_log file a file on disk is: recognised by its first KiB, whatever its name."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pbx.history.ingest.files import FINGERPRINT_BYTES, RawLine
from pbx.models.history import QueueLogFile


def _head(path: Path, length: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(length)


def identify(path: Path, *, pbx: str) -> QueueLogFile | None:
    """The PBX's file stored under this file's first bytes, or a new one; None for an empty file.

    A file is the same file when its first min(size, 1 KiB) bytes hash the same, or when a file
    read while it was shorter is a prefix of it: logrotate's renamed file, a copy, the same file
    read again after its cursor was lost. The lines it already gave are not stored again. Only
    the PBX's own files are candidates: two PBXes' logs may well start alike.
    """
    head = _head(path, FINGERPRINT_BYTES)
    if not head:
        return None
    digest = hashlib.sha256(head).hexdigest()
    files = QueueLogFile.objects.filter(pbx=pbx)
    known = files.filter(fingerprint=digest, fingerprint_length=len(head)).first()
    if known is not None:
        return known
    # Files that were shorter than 1 KiB when they were read: is one of them a prefix of this one?
    shorter = files.filter(fingerprint_length__lt=len(head), fingerprint_length__gt=0)
    for length in sorted(set(shorter.values_list("fingerprint_length", flat=True)), reverse=True):
        prefix = hashlib.sha256(head[:length]).hexdigest()
        known = shorter.filter(fingerprint_length=length, fingerprint=prefix).first()
        if known is not None:
            return known
    return QueueLogFile.objects.create(pbx=pbx, fingerprint=digest, fingerprint_length=len(head))


def advance(logfile: QueueLogFile, path: Path, line: RawLine) -> None:
    """Records that the file was read up to `line` (saved with the batch, by the caller)."""
    if line.number <= logfile.lines:
        return
    logfile.lines = line.number
    logfile.size = line.offset_after
    wanted = min(FINGERPRINT_BYTES, line.offset_after)
    if logfile.fingerprint_length < wanted:
        logfile.fingerprint = hashlib.sha256(_head(path, wanted)).hexdigest()
        logfile.fingerprint_length = wanted
