"""The plain-SQL rows of a user's newest call are the rows the querysets gave, user by user.

The querysets below are how `last_call` read them before (and `_involving` still defines which
rows are a user's): the newest involving row by time then id, the earliest row of its call, the
calls with a row since then, their rows. Rows are drawn at random (fixed seed) so that every way
a row involves a user, and every way it does not, occurs with ties, blank linkedids, a device of
the same name in another company and another PBX's rows.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Q

from pbx.history.last_call_rows import newest_call_rows
from pbx.history.selectors import _involving, devices_of, last_call
from pbx.models import Pbx, PbxUser
from pbx.models.history import CdrRecord

pytestmark = pytest.mark.django_db
START = datetime(2024, 5, 10, 8, 0, tzinfo=UTC)


def rows_by_querysets(user: PbxUser, devices: list[str]) -> list[CdrRecord]:
    involving = CdrRecord.objects.filter(_involving(user, devices))
    latest = involving.order_by("-calldate", "-pk").first()
    if latest is None:
        return []
    since = (
        involving.filter(Q(linkedid=latest.call_id) | Q(uniqueid=latest.call_id))
        .order_by("calldate")
        .values_list("calldate", flat=True)
        .first()
    )
    ids = {row.call_id for row in involving.filter(calldate__gte=since)}
    return list(involving.filter(Q(linkedid__in=ids) | Q(uniqueid__in=ids)))


@pytest.fixture
def users(make_company, make_user):
    pbx_b = Pbx.objects.create(
        name="pbx-b", host="127.0.0.1", username="swan", secret_env="SWAN_PBX_X"
    )
    acme, bravo, other = make_company(), make_company(pbx=pbx_b), make_company()
    made = [
        make_user(acme, "200", terminals=["PJSIP/200"]),
        make_user(acme, "201", terminals=["PJSIP/201", "SIP/201"]),
        make_user(acme, "202"),  # no terminal: its extension only
        make_user(acme, "203", terminals=["PJSIP/203"]),  # never called
        make_user(bravo, "200", terminals=["PJSIP/200"]),  # the same names on another PBX
        make_user(other, "201", terminals=["PJSIP/201"]),  # and in another company of the PBX
    ]
    return [PbxUser.objects.select_related("company").get(pk=user.pk) for user in made]


def random_rows(users: list[PbxUser], count: int) -> None:
    rng = random.Random(20261202)
    devices = ["PJSIP/200", "PJSIP/201", "SIP/201", "PJSIP/999", "Local/200@from-queue"]
    numbers = ["200", "201", "202", "600000001", "600000002"]
    companies = [None, *{user.company for user in users}]
    rows = []
    for n in range(count):
        call = rng.randrange(count // 3)
        company = rng.choice(companies)
        rows.append(
            CdrRecord(
                pbx=company.pbx_key
                if company and rng.random() < 0.9
                else rng.choice(["default", "pbx-b"]),
                calldate=START + timedelta(seconds=rng.randrange(count // 2)),  # many ties
                src=rng.choice(numbers),
                dst=rng.choice(numbers),
                channel_device=rng.choice(devices),
                dstchannel_device=rng.choice(devices),
                uniqueid=f"{call}.{n}",
                linkedid="" if rng.random() < 0.2 else f"{call}.0",
                billsec=rng.randrange(100),
                disposition=rng.choice(["ANSWERED", "NO ANSWER", "BUSY"]),
                company=company,
                digest=uuid.UUID(int=n),
            )
        )
    CdrRecord.objects.bulk_create(rows)


def test_every_user_gets_the_rows_the_querysets_gave(users):
    random_rows(users, 600)
    for user in users:
        devices = devices_of(user)
        expected = sorted(row.pk for row in rows_by_querysets(user, devices))
        rows = newest_call_rows(user, devices)
        assert sorted(row.pk for row in rows) == expected, user
        if expected:
            stored = {row.pk: row for row in CdrRecord.objects.filter(pk__in=expected)}
            assert all(vars_of(row) == vars_of(stored[row.pk]) for row in rows)
    never_called = users[3]
    assert newest_call_rows(never_called, devices_of(never_called)) == []
    assert last_call(user=never_called) is None


def test_a_newest_row_whose_call_began_earlier_brings_every_call_since(users):
    ana = users[0]
    calls_to_200(
        ana,
        (START, "1.2", "1.1"),
        (START + timedelta(seconds=5), "2.2", "2.1"),
        (START + timedelta(seconds=9), "1.5", "1.1"),  # the newest row: call 1.1 began first
        (START - timedelta(hours=1), "0.2", "0.1"),
    )
    rows = newest_call_rows(ana, devices_of(ana))
    assert sorted(row.uniqueid for row in rows) == ["1.2", "1.5", "2.2"]
    assert last_call(user=ana)["uniqueid"] == "2.1"


def calls_to_200(user: PbxUser, *rows: tuple[datetime, str, str]) -> None:
    """CDR rows to extension 200 of the user's company, stored in this order."""
    for at, uniqueid, linkedid in rows:
        CdrRecord.objects.create(
            pbx="default",
            company=user.company,
            dst="200",
            disposition="ANSWERED",
            calldate=at,
            uniqueid=uniqueid,
            linkedid=linkedid,
            digest=uuid.uuid4(),
        )


def vars_of(row: CdrRecord) -> dict:
    return {field.attname: getattr(row, field.attname) for field in CdrRecord._meta.concrete_fields}


def test_of_two_newest_rows_at_one_time_the_later_stored_one_decides(users):
    ana = users[0]
    newest = START + timedelta(minutes=10)
    calls_to_200(
        ana,
        (START, "5.2", "5.1"),  # the call of the first newest row began long ago
        (START + timedelta(minutes=5), "7.2", "7.1"),  # a call in between
        (newest, "5.3", "5.1"),
        (newest, "6.2", "6.1"),  # stored last: the newest row
    )
    rows = newest_call_rows(ana, devices_of(ana))
    assert sorted(row.uniqueid for row in rows) == ["5.2", "5.3", "6.2"]
    assert sorted(row.pk for row in rows) == sorted(
        r.pk for r in rows_by_querysets(ana, ["PJSIP/200"])
    )
