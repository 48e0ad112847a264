"""Writers at once on the embedded default (SQLite) and on PostgreSQL: none is refused."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from pbx.models import UserPresence

pytestmark = pytest.mark.django_db(transaction=True)


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
