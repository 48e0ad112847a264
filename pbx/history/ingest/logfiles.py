"""Which stored queue_log file a file on disk is: recognised by its first KiB, whatever its name."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.db import connection, transaction

from pbx.history.ingest.files import FINGERPRINT_BYTES, RawLine
from pbx.models.history import QueueLogFile

IDENTIFY_LOCK = 0x5357_414E  # "SWAN"; with the PBX's name hashed, the key of `identify`'s lock


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
    with transaction.atomic():
        _one_identification_at_a_time(pbx)
        return _known_or_new(head, pbx)


def _one_identification_at_a_time(pbx: str) -> None:
    """Two ingests of the PBX that see a new file at once (a follower and a manual run) would
    each create it, and store its lines twice under two files: the second one waits here until
    the first one's file is committed, and then finds it. SQLite lets one writer in anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [IDENTIFY_LOCK, pbx])


def _known_or_new(head: bytes, pbx: str) -> QueueLogFile:
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


def advance(logfile: QueueLogFile, path: Path, line: RawLine) -> bool:
    """Records that the file was read up to `line`; whether that is further than before (the
    caller saves it with the batch, `save_advance`)."""
    if line.number <= logfile.lines:
        return False
    logfile.lines = line.number
    logfile.size = line.offset_after
    wanted = min(FINGERPRINT_BYTES, line.offset_after)
    if logfile.fingerprint_length < wanted:
        logfile.fingerprint = hashlib.sha256(_head(path, wanted)).hexdigest()
        logfile.fingerprint_length = wanted
    return True


def save_advance(logfile: QueueLogFile) -> None:
    """Saves how far the file was read, unless another reader of it got further meanwhile (it
    read the file under another name): a count never goes back."""
    QueueLogFile.objects.filter(pk=logfile.pk, lines__lt=logfile.lines).update(
        lines=logfile.lines,
        size=logfile.size,
        fingerprint=logfile.fingerprint,
        fingerprint_length=logfile.fingerprint_length,
    )
