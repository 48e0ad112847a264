"""The users' status rows by id in plain SQL (presence_rows_of) equal the ORM's (presence_rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pbx.live.presence import presence_rows, presence_rows_of
from pbx.models import DEFAULT_PBX, DeviceState, Pbx, PbxUser, QueueMemberState, UserPresence

pytestmark = pytest.mark.django_db


@pytest.fixture
def directory(make_company, make_user, make_queue):
    """Two companies with extension 201 on two PBXes, and users whose status comes from every
    source: terminals, queue members ringing another device, a Local member idle by its Status,
    DND and pause with reasons, no terminal at all."""
    now = timezone.now()
    pbx = Pbx.objects.create(name="pbx-b", host="127.0.0.1", port=5038, username="swan")
    here, there = make_company(slug="here"), make_company(slug="there", pbx=pbx)
    users = {
        "busy": make_user(here, "201", terminals=["PJSIP/201"]),
        "other pbx": make_user(there, "201", terminals=["PJSIP/201"]),
        "member": make_user(here, "1002", terminals=[]),
        "local": make_user(here, "30", terminals=["SIP/30"]),
        "paused": make_user(here, "205", terminals=["PJSIP/205", "PJSIP/205b"]),
        "dnd": make_user(here, "9", terminals=["PJSIP/9"]),
        "nothing": make_user(here, "7", terminals=[]),
    }
    queue = make_queue(here, "ventas", members=[users["member"], users["local"]])
    states = [
        (DEFAULT_PBX, "PJSIP/201", "INUSE", 50),
        ("pbx-b", "PJSIP/201", "NOT_INUSE", 40),
        (DEFAULT_PBX, "PJSIP/1002", "RINGING", 30),
        (DEFAULT_PBX, "PJSIP/205", "NOT_INUSE", 20),
        (DEFAULT_PBX, "PJSIP/205b", "UNAVAILABLE", 25),
        (DEFAULT_PBX, "PJSIP/9", "NOT_INUSE", 10),
    ]
    for device_pbx, interface, state, ago in states:
        DeviceState.objects.create(
            pbx=device_pbx,
            interface=interface,
            state=state,
            changed_at=now - timedelta(seconds=ago),
            confirmed_at=now,
        )
    for user, interface, state_interface, status in [
        (users["member"], "Local/1002@from-queue/n", "PJSIP/1002", 6),
        (users["local"], "Local/30@from-queue/n", "", 1),
    ]:
        QueueMemberState.objects.create(
            pbx=DEFAULT_PBX,
            queue_name="ventas",
            queue=queue,
            interface=interface,
            state_interface=state_interface,
            user=user,
            status=status,
            changed_at=now,
            confirmed_at=now,
        )
    UserPresence.objects.create(
        user=users["paused"],
        paused=True,
        pause_reason="Comida",
        changed_at=now - timedelta(seconds=5),
        confirmed_at=now,
    )
    UserPresence.objects.create(
        user=users["dnd"],
        dnd=True,
        dnd_reason="Reunión",
        changed_at=now - timedelta(seconds=60),
        confirmed_at=now,
    )
    return users


def test_the_rows_by_id_equal_the_orms_in_extension_order(directory):
    ids = [user.pk for user in directory.values()]
    rows = presence_rows_of(reversed(ids))

    def by_user(found):
        return sorted(found, key=lambda row: row.user_id)

    # (the ORM orders two users of one extension either way)
    assert by_user(rows) == by_user(presence_rows(PbxUser.objects.filter(pk__in=ids)))
    by_name = {
        name: rows[[row.user_id for row in rows].index(u.pk)] for name, u in directory.items()
    }
    assert by_name["busy"].status == "busy"
    assert by_name["other pbx"].status == "available"  # its own PBX's PJSIP/201
    assert by_name["member"].status == "ringing"  # the device its member rings
    assert by_name["local"].status == "available"  # idle Local member: its Status
    assert (by_name["paused"].status, by_name["paused"].reason) == ("pause", "Comida")
    assert (by_name["dnd"].status, by_name["dnd"].description) == ("busy", "Reunión")
    assert by_name["nothing"].status == "unavailable"
    # since: the latest change of what the status comes from, an aware time on every database
    phone = DeviceState.objects.get(pbx=DEFAULT_PBX, interface="PJSIP/201")
    assert by_name["busy"].since == phone.changed_at
    assert by_name["busy"].since.tzinfo is not None
    assert [row.extension for row in rows] == ["7", "9", "30", "201", "201", "205", "1002"]


def test_three_statements_whatever_the_number_of_users(directory, django_assert_num_queries):
    ids = [user.pk for user in directory.values()]
    with django_assert_num_queries(3):
        presence_rows_of(ids)
    with django_assert_num_queries(0):
        assert presence_rows_of([]) == []


def test_a_deleted_user_has_no_row(directory):
    gone = directory["busy"].pk
    directory["busy"].delete()
    assert presence_rows_of([gone, directory["dnd"].pk]) == presence_rows(
        PbxUser.objects.filter(pk=directory["dnd"].pk)
    )
