"""The database settings hold up with the listener writing beside the web process (SQLite, the
embedded default, and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from pbx.models import Company, UserPresence


@pytest.mark.django_db(transaction=True)
def test_it_takes_the_sqlite_write_lock_when_a_transaction_begins():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's locking only")
    other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        with transaction.atomic():
            list(Company.objects.all())  # read first, as the status services do
            # the other writer (the listener) must wait for us, not we for it: with a deferred
            # BEGIN it got the lock here and our write below failed with "database is locked"
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            Company.objects.create(slug="written", name="Written")
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
    finally:
        other.close()
    assert Company.objects.filter(slug="written").exists()


def _in_thread(target, errors: list[BaseException]) -> threading.Thread:
    def run():
        try:
            target()
        except BaseException as exc:  # the test reports it
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_read_first_still_writes_after_another_writer(company, make_user):
    """SQLite refuses at once a read transaction's upgrade to a write once another connection
    committed ("database is locked"); taking the write lock up front (IMMEDIATE) makes the
    other writer wait instead. On PostgreSQL both simply commit."""
    ana, luis = make_user(company, "201"), make_user(company, "202")
    now = timezone.now()
    UserPresence.objects.create(user=ana, changed_at=now, confirmed_at=now)
    has_read, other_wrote = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def read_then_write():
        with transaction.atomic():
            assert UserPresence.objects.filter(user=ana).exists()
            has_read.set()
            # The other writer commits meanwhile, or (IMMEDIATE) waits for this transaction.
            other_wrote.wait(timeout=0.5)
            UserPresence.objects.filter(user=ana).update(paused=True, pause_reason="Descanso")

    def write():
        has_read.wait(timeout=10)
        with transaction.atomic():
            UserPresence.objects.create(user=luis, dnd=True, changed_at=now, confirmed_at=now)
        other_wrote.set()

    threads = [_in_thread(read_then_write, errors), _in_thread(write, errors)]
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert UserPresence.objects.get(user=ana).paused is True
    assert UserPresence.objects.get(user=luis).dnd is True
