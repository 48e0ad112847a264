"""One queue_log ingest per PBX at a time (PostgreSQL: across hosts, by an advisory lock).

Two ingests of the same PBX at once (a `--follow` service and a manual run, say) could each take a
file they both see first as new, and store its lines twice under two file rows. The lock is the
session's: held by the ingest's connection from its first run until it ends (a follower holds it
between its polls), released when that connection closes, also when the process dies.
SQLite (one host, the embedded default): one ingest at a time is the operator's to keep.
"""

from __future__ import annotations

from django.db import connection

QUEUE_LOG_LOCK = 0x5357_414E  # "SWAN": the first key; the second is the PBX's name hashed


class IngestBusy(RuntimeError):
    """Another ingest of the PBX's queue_log holds the lock."""


class PbxIngestLock:
    """The lock of one PBX's queue_log ingest, taken by `hold` and kept until `release`."""

    def __init__(self, pbx: str) -> None:
        self.pbx = pbx
        self._holder: object | None = None  # the database connection that holds it

    def hold(self) -> None:
        """Takes the lock if this connection does not hold it yet; raises IngestBusy."""
        if connection.vendor != "postgresql":
            return
        connection.ensure_connection()
        if self._holder is connection.connection:
            return  # still ours: the same session
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [QUEUE_LOG_LOCK, self.pbx]
            )
            taken = cursor.fetchone()[0]
        if not taken:
            raise IngestBusy(
                f"another ingest of PBX {self.pbx}'s queue_log is running (on this host or "
                "another); it stores what this one would: run one at a time"
            )
        self._holder = connection.connection

    def release(self) -> None:
        if self._holder is None:
            return
        if self._holder is connection.connection and connection.is_usable():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", [QUEUE_LOG_LOCK, self.pbx]
                )
        self._holder = None  # a closed connection released it already
