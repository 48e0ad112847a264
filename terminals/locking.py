"""One change of a terminal's registration at a time, each on the state the one before left.

terminal-register POST and DELETE (and a supervisor's log in) each read `registered`, make their
PBX calls and store what the PBX did. Two at once both read the flag before either stored it:
the later store compared with its stale copy, skipped its save, and the flag said the opposite
of the PBX. No transaction spans PBX calls (a database failure must not hide what the PBX did),
so a lock that is no transaction serialises them: a PostgreSQL advisory lock (every process), or
on SQLite, the embedded default's single process, a lock of the process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection
from django.utils.translation import gettext as _

from pbx.errors import NotFound
from terminals.models import Terminal

# pg_advisory_lock(int, int)'s first key: "SWTR". The second is the terminal's id, folded to int4.
_LOCK_CLASS = 0x5357_5452
_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()


@contextmanager
def terminal_changing(terminal: Terminal) -> Iterator[None]:
    """Waits for any other change of this terminal, then re-reads its registration (NotFound if
    it was deleted meanwhile)."""
    if connection.vendor == "postgresql":
        key = [_LOCK_CLASS, terminal.pk & 0x7FFF_FFFF]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
        try:
            _reread(terminal)
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
            except DatabaseError:
                pass  # the connection is gone, and its session's locks with it
        return
    with _process_locks_guard:
        lock = _process_locks.setdefault(terminal.pk, threading.Lock())
    with lock:
        _reread(terminal)
        yield


def _reread(terminal: Terminal) -> None:
    try:
        terminal.refresh_from_db(fields=["registered", "registered_at"])
    except Terminal.DoesNotExist:
        raise NotFound(_("Terminal %(mac)s not found.") % {"mac": terminal.mac}) from None
