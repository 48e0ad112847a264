"""Migration 0025: stored CDR digests are made from the start in UTC, and the copies of one call
that the zone's offset had kept apart are one row again."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pbx.history.ingest.cdr import DIGEST_FIELDS, cdr_digest
from pbx.models.history import CdrRecord
from tests.history.migrating import migrate

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")
BEFORE = [("pbx", "0024_pbx_secret_env_prefix")]
AFTER = [("pbx", "0025_cdr_digest_utc")]
START = datetime(2022, 6, 17, 4, 15, 3, tzinfo=UTC)
CALL = {
    "uniqueid": "1655439303.12",
    "src": "1001",
    "dst": "1002",
    "channel": "SIP/1001-00000002",
    "dstchannel": "SIP/1002-00000003",
    "lastapp": "Dial",
    "lastdata": "SIP/1002,,trIb",
    "disposition": "ANSWERED",
    "duration": 24,
    "billsec": 19,
    "sequence": "",
}


def _old_digest(start: datetime, values: dict) -> uuid.UUID:
    """As ingest made it before 0025: the start with the offset of the zone it was read in."""
    key = "\x1f".join([start.isoformat(), *(str(values[name]) for name in DIGEST_FIELDS)])
    return uuid.UUID(bytes=hashlib.md5(key.encode("utf-8"), usedforsecurity=False).digest())


@pytest.mark.django_db(transaction=True)
def test_digests_are_made_again_from_utc_and_a_call_stored_twice_is_kept_once():
    old = migrate(BEFORE)
    record = old.get_model("pbx", "CdrRecord")
    new_york = START.astimezone(ZoneInfo("America/New_York"))
    other = {**CALL, "uniqueid": "1655439400.13", "billsec": 7}
    rows = [
        ("default", START, CALL),  # read from Master.csv in UTC
        ("default", new_york, CALL),  # the same call, from the CDR table in local time
        ("default", START, other),
        ("pbx-b", new_york, CALL),  # the same values on another PBX: another call
    ]
    for pbx, start, values in rows:
        record.objects.create(pbx=pbx, calldate=start, digest=_old_digest(start, values), **values)
    first = record.objects.order_by("pk").first().pk

    migrate(AFTER)

    kept = CdrRecord.objects.order_by("pk")
    assert [(r.pbx, r.uniqueid) for r in kept] == [
        ("default", "1655439303.12"),
        ("default", "1655439400.13"),
        ("pbx-b", "1655439303.12"),
    ]
    assert kept[0].pk == first
    for row in kept:
        values = {name: getattr(row, name) for name in ("calldate", *DIGEST_FIELDS)}
        assert row.digest == cdr_digest(values)
    assert kept[0].digest == kept[2].digest  # unique per PBX only
