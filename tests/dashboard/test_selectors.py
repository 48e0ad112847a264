"""Dashboard reads: queue figures as queues-status computes them, and today's calls per hour."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.utils import timezone

from dashboard.selectors import calls_hourly, queue_groups, queue_groups_for, snapshot_payload
from pbx.models import QueueCallerState, QueueMemberState
from pbx.models.history import QueueEntry


def _entry(queue, n: int, outcome: str, wait: int, when) -> QueueEntry:
    return QueueEntry.objects.create(
        callid=f"call-{n}",
        queue_name=queue.name,
        queue=queue,
        company=queue.company,
        caller=f"60000000{n}",
        entered_at=when,
        outcome=outcome,
        wait_seconds=wait,
        talk_seconds=30 if outcome == "answered" else 0,
    )


def test_queue_groups_carry_todays_figures_members_and_callers(company, make_user, make_queue):
    ana = make_user(company, "200", "Ana")
    queue = make_queue(company, "q-soporte", members=[ana], alarm_abandoned_ratio_below=80)
    now = timezone.now()
    _entry(queue, 1, "answered", 10, now)
    _entry(queue, 2, "answered", 30, now)
    _entry(queue, 3, "abandoned", 50, now)
    QueueMemberState.objects.create(
        queue_name="q-soporte",
        queue=queue,
        interface="PJSIP/200",
        user=ana,
        paused=True,
        paused_reason="Descanso",
        changed_at=now,
        confirmed_at=now,
    )
    QueueCallerState.objects.create(
        queue_name="q-soporte",
        queue=queue,
        unique_id="1.1",
        caller_id_num="600111222",
        position=1,
        entered_at=now,
        confirmed_at=now,
    )
    (group,) = queue_groups(company=company)
    assert group["completed"] == 2
    assert group["abandoned"] == 1
    assert group["abandonedRatio"] == 66.67
    assert group["serviceRatio"] == 50
    assert group["avgRingTime"] == 20
    assert group["maxRingTime"] == 30
    assert group["currentCalls"] == 1
    assert group["alarm"] is True
    assert group["alarm_reasons"] == ["abandoned_ratio"]
    assert group["members"] == [
        {
            "extension": "200",
            "name": "Ana",
            "paused": True,
            "paused_reason": "Descanso",
            "in_call": False,
        }
    ]
    assert group["callers"][0]["caller"] == "600111222"


def test_queue_group_members_come_users_first_by_extension_then_unknown_interfaces(
    company, make_user, make_queue
):
    queue = make_queue(company, "q-ventas")
    now = timezone.now()
    users = {ext: make_user(company, ext, f"Agente {ext}") for ext in ("1000", "201", "200")}
    for interface, user, member_name in (
        ("Local/9@from-queue/n", None, ""),
        ("PJSIP/1000", users["1000"], "x"),
        ("SIP/ext", None, "Externo"),
        ("PJSIP/201", users["201"], ""),
        ("PJSIP/200", users["200"], ""),
    ):
        QueueMemberState.objects.create(
            queue_name="q-ventas",
            queue=queue,
            interface=interface,
            member_name=member_name,
            user=user,
            in_call=interface == "PJSIP/201",
            changed_at=now,
            confirmed_at=now,
        )
    (group,) = queue_groups(company=company)
    assert [(m["extension"], m["name"], m["in_call"]) for m in group["members"]] == [
        ("200", "Agente 200", False),
        ("201", "Agente 201", True),
        ("1000", "Agente 1000", False),
        (None, "Local/9@from-queue/n", False),
        (None, "Externo", False),
    ]


def test_calls_per_hour_count_todays_entries_in_the_company_time_zone(company, make_queue):
    queue = make_queue(company, "q-soporte")
    now = timezone.now()
    _entry(queue, 1, "answered", 5, now)
    _entry(queue, 2, "timeout", 60, now)
    _entry(queue, 3, "abandoned", 9, now)
    _entry(queue, 4, "answered", 5, now - timezone.timedelta(days=2))
    hourly = calls_hourly(company=company)
    local = now.astimezone(ZoneInfo(company.time_zone))
    assert hourly["date"] == local.date().isoformat()
    assert len(hourly["hours"]) == 24
    assert hourly["hours"][local.hour] == {"hour": local.hour, "answered": 1, "abandoned": 2}
    assert sum(h["answered"] + h["abandoned"] for h in hourly["hours"]) == 3


def test_the_snapshot_takes_a_fixed_number_of_queries(
    company, make_user, make_queue, django_assert_max_num_queries
):
    users = [make_user(company, f"2{n:02d}") for n in range(10)]
    for n in range(4):
        make_queue(company, f"q-{n}", members=users)
    with django_assert_max_num_queries(14):
        snapshot = snapshot_payload(company=company)
    assert len(snapshot["users"]) == 10
    assert len(snapshot["queues"]) == 4


def test_queue_groups_say_which_threshold_is_broken_and_the_name_to_show(company, make_queue):
    queue = make_queue(
        company,
        "q-soporte",
        display_name="Soporte técnico",
        alarm_waiting_calls=1,
        alarm_wait_seconds=30,
        alarm_service_ratio_below=80,
    )
    make_queue(company, "q-ventas")
    now = timezone.now()
    _entry(queue, 1, "answered", 10, now)
    _entry(queue, 2, "answered", 30, now)
    QueueCallerState.objects.create(
        queue_name="q-soporte",
        queue=queue,
        unique_id="1.1",
        caller_id_num="600111222",
        position=1,
        entered_at=now - timezone.timedelta(seconds=45),
        confirmed_at=now,
    )
    soporte, ventas = queue_groups(company=company)
    assert soporte["display_name"] == "Soporte técnico"
    assert ventas["display_name"] == "q-ventas"  # no display name: the Asterisk name
    assert soporte["alarm_reasons"] == ["waiting_calls", "wait_seconds", "service_ratio"]
    waiting, wait, service = soporte["alarm_breaches"]
    assert waiting == {"rule": "waiting_calls", "threshold": 1, "value": 1}
    assert wait["rule"] == "wait_seconds"
    assert wait["threshold"] == 30
    assert 45 <= wait["value"] <= 50
    assert service == {"rule": "service_ratio", "threshold": 80.0, "value": 50.0}
    assert ventas["alarm_breaches"] == []


def test_the_listeners_queue_groups_read_the_same_in_a_fixed_number_of_queries(
    company, make_company, make_user, make_queue, django_assert_num_queries
):
    other = make_company(slug="otra", name="Otra", time_zone="America/Bogota")
    ana, luis = make_user(company, "200", "Ana"), make_user(other, "300", "Luis")
    queues = [
        make_queue(company, "q-soporte", members=[ana], display_name="Soporte técnico"),
        make_queue(company, "q-ventas", members=[ana]),
        make_queue(other, "q-cobros", members=[luis], alarm_waiting_calls=1),
    ]
    now = timezone.now()
    _entry(queues[0], 1, "answered", 10, now)
    _entry(queues[2], 2, "abandoned", 40, now)
    QueueCallerState.objects.create(
        queue_name="q-cobros",
        queue=queues[2],
        unique_id="1.1",
        caller_id_num="600111222",
        position=1,
        entered_at=now,
        confirmed_at=now,
    )
    # Two reads of the queues and their companies, then per company: members, callers, whether
    # the history changed and (not kept yet) today's entries. Kept the second time.
    with django_assert_num_queries(2 + 4 * 2):
        found = queue_groups_for(queue_ids=[q.pk for q in queues])
    with django_assert_num_queries(2 + 3 * 2):
        assert queue_groups_for(queue_ids=[q.pk for q in queues]) == found
    assert [(company_id, group["group"]) for company_id, group in found] == sorted(
        [(company.pk, "q-soporte"), (company.pk, "q-ventas"), (other.pk, "q-cobros")]
    )
    by_company = {company.pk: queue_groups(company=company), other.pk: queue_groups(company=other)}
    for company_id, group in found:
        (same,) = [g for g in by_company[company_id] if g["group"] == group["group"]]
        assert group == same  # what the dashboard's snapshot shows
    cobros = next(group for _company, group in found if group["group"] == "q-cobros")
    assert (cobros["currentCalls"], cobros["alarm"], cobros["abandoned"]) == (1, True, 1)
