"""The listener's plain-SQL reads and writes (pbx/plain_sql.py) give and leave what the ORM would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pbx.models import LiveChannel, QueueMemberState, UserPresence
from pbx.plain_sql import delete_rows, insert_rows, rows_where, rows_where_any

pytestmark = pytest.mark.django_db


def _member(queue: str, interface: str, **fields) -> QueueMemberState:
    now = timezone.now()
    return QueueMemberState(
        pbx="default",
        queue_name=queue,
        interface=interface,
        changed_at=fields.pop("changed_at", now),
        confirmed_at=now,
        **fields,
    )


def _fields(row) -> dict:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


def test_rows_are_read_as_the_orm_reads_them(company, make_user):
    user = make_user(company, "201")
    earlier = timezone.now() - timedelta(hours=3)
    QueueMemberState.objects.bulk_create(
        [
            _member("ventas", "PJSIP/201", user=user, paused=True, paused_reason="Comida",
                    changed_at=earlier),
            _member("ventas", "PJSIP/202", in_call=True),
            _member("soporte", "PJSIP/201"),
            _member("soporte", "PJSIP/203"),
        ]
    )  # fmt: skip
    QueueMemberState.objects.create(**{**_fields(_member("ventas", "PJSIP/201")), "pbx": "b"})
    found = rows_where(
        QueueMemberState,
        {"pbx": "default"},
        {"queue_name": ["ventas"], "interface": ["PJSIP/201", "PJSIP/202"]},
    )
    expected = QueueMemberState.objects.filter(
        pbx="default", queue_name="ventas", interface__in=["PJSIP/201", "PJSIP/202"]
    )
    by_pk = {row.pk: _fields(row) for row in expected}
    assert {row.pk: _fields(row) for row in found} == by_pk
    paused = next(row for row in found if row.interface == "PJSIP/201")
    assert paused.paused is True  # a bool on SQLite too, not 1
    assert paused.changed_at == earlier
    assert paused.changed_at.tzinfo is not None
    assert not paused._state.adding  # a stored row: saving it updates


def test_rows_of_several_pbxes_are_read_each_by_its_own_names(django_assert_num_queries):
    """The same names on two PBXes: each PBX's names match its own rows only."""
    for pbx in ("a", "b"):
        QueueMemberState.objects.bulk_create(
            [
                QueueMemberState(**{**_fields(_member(q, i)), "pbx": pbx, "id": None})
                for q in ("ventas", "soporte")
                for i in ("PJSIP/201", "PJSIP/202")
            ]
        )
    with django_assert_num_queries(1):
        found = rows_where_any(
            QueueMemberState,
            [
                ({"pbx": "a"}, {"queue_name": ["ventas"], "interface": ["PJSIP/201"]}),
                ({"pbx": "b"}, {"queue_name": ["ventas", "soporte"], "interface": ["PJSIP/202"]}),
                ({"pbx": "c"}, {"queue_name": [], "interface": ["PJSIP/201"]}),  # matches nothing
            ],
        )
    assert sorted((r.pbx, r.queue_name, r.interface) for r in found) == [
        ("a", "ventas", "PJSIP/201"),
        ("b", "soporte", "PJSIP/202"),
        ("b", "ventas", "PJSIP/202"),
    ]


def test_an_empty_list_reads_nothing_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert rows_where(LiveChannel, {"pbx": "default"}, {"unique_id": []}) == []
        assert rows_where_any(LiveChannel, [({"pbx": "a"}, {"unique_id": []})]) == []
        insert_rows(LiveChannel, [])
        delete_rows(LiveChannel, [])


def test_an_insert_leaves_a_clashing_row_alone_or_replaces_the_fields_named(company, make_user):
    ana, luis = make_user(company, "200"), make_user(company, "201")
    then = timezone.now() - timedelta(minutes=5)
    UserPresence.objects.create(
        user=ana, dnd=True, dnd_reason="Reunión", changed_at=then, confirmed_at=then
    )
    now = timezone.now()
    insert_rows(
        UserPresence,
        [
            UserPresence(user=ana, dnd=False, changed_at=now, confirmed_at=now),
            UserPresence(user=luis, paused=True, pause_reason="Café", changed_at=now,
                         confirmed_at=now),
        ],
        conflict=["user"],
    )  # fmt: skip
    kept = UserPresence.objects.get(user=ana)
    assert (kept.dnd, kept.dnd_reason, kept.changed_at) == (True, "Reunión", then)
    added = UserPresence.objects.get(user=luis)
    assert (added.paused, added.pause_reason, added.changed_at) == (True, "Café", now)

    insert_rows(
        UserPresence,
        [UserPresence(user=ana, dnd=False, dnd_reason="", changed_at=now, confirmed_at=now)],
        conflict=["user"],
        update=["dnd", "changed_at"],
    )
    replaced = UserPresence.objects.get(user=ana)
    assert (replaced.dnd, replaced.changed_at) == (False, now)
    assert replaced.dnd_reason == "Reunión"  # not named: left as stored
    assert UserPresence.objects.count() == 2


def test_deleting_by_primary_key_deletes_those_rows_only():
    now = timezone.now()
    rows = [
        LiveChannel.objects.create(
            pbx="default", unique_id=f"17000.{n}", channel=f"PJSIP/20{n}-1", started_at=now,
            confirmed_at=now,
        )
        for n in range(3)
    ]  # fmt: skip
    delete_rows(LiveChannel, [rows[0].pk, rows[2].pk])
    assert list(LiveChannel.objects.values_list("unique_id", flat=True)) == ["17000.1"]


def test_pipelined_statements_are_all_written_and_an_error_still_raises(company, make_user):
    from django.db import IntegrityError, connection, transaction

    from pbx.plain_sql import pipelined

    ana = make_user(company, "200")
    now = timezone.now()
    with transaction.atomic(), pipelined():
        if connection.vendor == "postgresql":
            assert connection.connection.pgconn.pipeline_status != 0  # on (or aborted)
        insert_rows(UserPresence, [UserPresence(user=ana, changed_at=now, confirmed_at=now)])
        assert rows_where(UserPresence, {}, {"user": [ana.pk]})  # a read waits for the insert
    assert UserPresence.objects.filter(user=ana).exists()

    def clashing_write() -> None:
        with transaction.atomic(), pipelined():
            UserPresence.objects.filter(user=ana).update(pause_reason="Café")
            insert_rows(UserPresence, [UserPresence(user=ana, changed_at=now, confirmed_at=now)])

    with pytest.raises(IntegrityError):  # Django's, as the listener catches it
        clashing_write()
    assert UserPresence.objects.get(user=ana).pause_reason == ""  # rolled back, all of it


def test_statements_read_together_give_each_its_own_rows_in_order(company, make_user):
    from django.db import transaction

    from pbx.plain_sql import Select, pipelined, read_together, select_where_any

    ana, bea = make_user(company, "200"), make_user(company, "201")
    now = timezone.now()
    QueueMemberState.objects.bulk_create(
        [_member("ventas", "PJSIP/200", user=ana), _member("soporte", "PJSIP/201", user=bea)]
    )
    with transaction.atomic(), pipelined():
        # A read sent after a write, before anything is fetched, still sees the write.
        insert_rows(UserPresence, [UserPresence(user=bea, changed_at=now, confirmed_at=now)])
        members, nothing, presence, counted = read_together(
            [
                select_where_any(
                    QueueMemberState, [({"pbx": "default"}, {"queue_name": ["ventas"]})]
                ),
                select_where_any(QueueMemberState, [({}, {"queue_name": []})]),  # no statement
                select_where_any(UserPresence, [({}, {"user": [ana.pk, bea.pk]})]),
                Select("SELECT COUNT(*) FROM pbx_queuememberstate", (), lambda rows: rows[0][0]),
            ]
        )
    assert [(row.queue_name, row.user_id) for row in members] == [("ventas", ana.pk)]
    assert nothing == []
    assert [row.user_id for row in presence] == [bea.pk]
    assert counted == 2


def test_a_failing_statement_read_together_raises_as_the_database_error(company):
    from django.db import DatabaseError, transaction

    from pbx.plain_sql import Select, pipelined, read_together

    with pytest.raises(DatabaseError), transaction.atomic(), pipelined():
        read_together([Select("SELECT 1", ()), Select("SELECT * FROM no_such_table", ())])
