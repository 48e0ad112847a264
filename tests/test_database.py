"""The database settings hold up with the listener writing beside the web process."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection, transaction

from pbx.models import Company


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
