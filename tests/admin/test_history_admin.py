"""The call history in the admin, and the terminals list's registration and live device state."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pbx.models import DeviceState
from pbx.models.history import CdrRecord, QueueEntry
from terminals.models import Terminal

ENTRIES = "/admin/pbx/queueentry/"
CDRS = "/admin/pbx/cdrrecord/"
TERMINALS = "/admin/terminals/terminal/"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def history(company, make_user, make_queue):
    """Two queues, two agents; an answered, an abandoned and yesterday's call, with their CDRs."""
    ana, luis = make_user(company, "200", "Ana"), make_user(company, "201", "Luis")
    soporte = make_queue(company, "q-soporte", members=[ana], display_name="Soporte técnico")
    ventas = make_queue(company, "q-ventas", members=[luis])
    now = timezone.now()
    rows = {
        "answered": (soporte, ana, now, "1.1", "ANSWERED", "PJSIP/200"),
        "abandoned": (soporte, None, now, "1.2", "NO ANSWER", ""),
        "yesterday": (ventas, luis, now - timedelta(days=1), "1.3", "ANSWERED", "PJSIP/201"),
    }
    for outcome, (queue, agent, when, callid, disposition, device) in rows.items():
        QueueEntry.objects.create(
            callid=callid,
            queue_name=queue.name,
            queue=queue,
            company=company,
            caller=f"6001112{callid[-1]}",
            entered_at=when,
            outcome="abandoned" if outcome == "abandoned" else "answered",
            agent=device,
            agent_user=agent,
        )
        CdrRecord.objects.create(
            calldate=when,
            src=f"6001112{callid[-1]}",
            dst=agent.extension if agent else "s",
            dstchannel=f"{device}-0000001" if device else "",
            dstchannel_device=device,
            disposition=disposition,
            uniqueid=callid,
            linkedid=callid,
            company=company,
            digest=uuid.uuid4(),
        )
    return {"ana": ana, "luis": luis, "soporte": soporte, "ventas": ventas}


def _today(field: str) -> dict[str, str]:
    """The parameters of the date filter's "Today" link."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return {f"{field}__gte": str(start), f"{field}__lt": str(start + timedelta(days=1))}


def _callers(response) -> list[str]:
    return sorted(row.caller for row in response.context["cl"].result_list)


def _cdr_callids(response) -> list[str]:
    return sorted(row.uniqueid for row in response.context["cl"].result_list)


def test_queue_calls_are_listed_newest_first_with_the_queues_shown_name(staff, history):
    response = staff.get(ENTRIES)
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert [row.callid for row in rows][-1] == "1.3"
    page = response.content.decode()
    assert "Soporte técnico" in page
    assert '<nav class="toplinks">' in page  # the date hierarchy


@pytest.mark.parametrize(
    ("query", "callers"),
    [
        ({"outcome__exact": "abandoned"}, ["60011122"]),
        ({"queue__id__exact": "soporte"}, ["60011121", "60011122"]),
        ({"agent_user__id__exact": "luis"}, ["60011123"]),
        ({"entered_at__gte": "today"}, ["60011121", "60011122"]),
    ],
    ids=["outcome", "queue", "agent", "date"],
)
def test_queue_calls_filter_by_outcome_queue_agent_and_date(staff, history, query, callers):
    params = dict(query)
    for key, value in params.items():
        if value in history:
            params[key] = history[value].pk
    if "entered_at__gte" in params:
        params = _today("entered_at")
    assert _callers(staff.get(ENTRIES, params)) == callers


@pytest.mark.parametrize(
    ("query", "callids"),
    [
        ({"disposition": "NO ANSWER"}, ["1.2"]),
        ({"queue": "ventas"}, ["1.3"]),
        ({"agent": "ana"}, ["1.1"]),
    ],
    ids=["outcome", "queue", "agent"],
)
def test_cdr_calls_filter_by_outcome_queue_and_agent(staff, history, query, callids):
    params = {key: history[value].pk if value in history else value for key, value in query.items()}
    assert _cdr_callids(staff.get(CDRS, params)) == callids


def test_cdr_calls_filter_by_date_and_an_unknown_agent_finds_nothing(staff, history):
    assert _cdr_callids(staff.get(CDRS, _today("calldate"))) == ["1.1", "1.2"]
    assert _cdr_callids(staff.get(CDRS, {"agent": "999999"})) == []


def test_the_history_pages_offer_every_filter(staff, history):
    entries = staff.get(ENTRIES, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for choice in ["Soporte técnico (ONFARMA)", "q-ventas (ONFARMA)", "200 Ana (ONFARMA)"]:
        assert choice in entries
    cdrs = staff.get(CDRS, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for choice in ["?disposition=NO+ANSWER", "Soporte técnico (ONFARMA)", "201 Luis (ONFARMA)"]:
        assert choice in cdrs


@pytest.mark.parametrize("path", [ENTRIES, CDRS])
def test_history_lists_take_the_same_queries_for_3_or_60_rows(
    staff, history, company, path, django_assert_max_num_queries
):
    with CaptureQueriesContext(connection) as few:
        assert staff.get(path).status_code == 200
    now = timezone.now()
    queue, agent = history["soporte"], history["ana"]
    QueueEntry.objects.bulk_create(
        QueueEntry(
            callid=f"2.{n}",
            queue_name=queue.name,
            queue=queue,
            company=company,
            entered_at=now - timedelta(minutes=n),
            outcome="answered",
            agent_user=agent,
        )
        for n in range(57)
    )
    CdrRecord.objects.bulk_create(
        CdrRecord(calldate=now, src="600", dst="200", company=company, digest=uuid.uuid4())
        for _ in range(57)
    )
    with django_assert_max_num_queries(len(few)):
        assert staff.get(path).status_code == 200


def _device(interface: str, state: str) -> None:
    now = timezone.now()
    DeviceState.objects.create(interface=interface, state=state, changed_at=now, confirmed_at=now)


def test_terminals_show_registration_and_the_live_device_state_beside_it(staff, company, make_user):
    make_user(company, "200", "Ana")
    make_user(company, "201", "Luis", terminals=["Local/201@from-queue/n"])
    make_user(company, "202", "Marta")
    Terminal.objects.filter(interface="PJSIP/200").update(registered=True)
    _device("PJSIP/200", "UNAVAILABLE")
    _device("Local/201@from-queue", "INUSE")
    response = staff.get(TERMINALS, HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert "Registered (terminal-register)" in page
    assert "Live device state (PBX)" in page
    states = {t.interface: t.live_device_state for t in response.context["cl"].result_list}
    assert states["PJSIP/200"].state == "UNAVAILABLE"  # registered, yet its phone is down
    assert states["Local/201@from-queue/n"].state == "INUSE"  # the same device without /n
    assert states["PJSIP/202"] is None
    assert "unreachable: no live contact (UNAVAILABLE)" in page
    assert "reachable, in a call (INUSE)" in page
    assert "not reported by the PBX" in page


def test_a_terminal_page_shows_its_live_device_state(staff, company, make_user):
    make_user(company, "200", "Ana")
    _device("PJSIP/200", "NOT_INUSE")
    terminal = Terminal.objects.get(interface="PJSIP/200")
    page = staff.get(f"{TERMINALS}{terminal.pk}/change/", HTTP_ACCEPT_LANGUAGE="en")
    assert "reachable, idle (NOT_INUSE)" in page.content.decode()


def test_the_terminal_list_takes_the_same_queries_for_2_or_40_terminals(
    staff, company, make_user, django_assert_max_num_queries
):
    for extension in ("200", "201"):
        make_user(company, extension)
        _device(f"PJSIP/{extension}", "NOT_INUSE")
    with CaptureQueriesContext(connection) as few:
        staff.get(TERMINALS)
    for n in range(2, 40):
        make_user(company, str(200 + n))
        _device(f"PJSIP/{200 + n}", "INUSE")
    with django_assert_max_num_queries(len(few)):
        response = staff.get(TERMINALS)
    assert len(response.context["cl"].result_list) == 40


def test_the_cdr_queue_filter_shows_the_call_ids_of_the_queues_own_pbx(staff, make_company):
    """Call ids repeat across PBXes: a queue's filter never shows another PBX's rows of them."""
    from pbx.models import Pbx, Queue

    pbx_b = Pbx.objects.create(
        name="pbx-b", host="10.0.0.6", username="swan", secret_env="SWAN_PBX_X"
    )
    on_a, on_b = make_company(slug="on-a"), make_company(slug="on-b", pbx=pbx_b)
    now = timezone.now()
    for company, pbx in ((on_a, "default"), (on_b, "pbx-b")):
        queue = Queue.objects.create(company=company, name="q-ventas")
        QueueEntry.objects.create(
            pbx=pbx, callid="9.9", queue_name="q-ventas", queue=queue, company=company,
            entered_at=now, outcome="answered",
        )  # fmt: skip
        CdrRecord.objects.create(
            pbx=pbx, calldate=now, src=pbx, uniqueid="9.9", company=company, digest=uuid.uuid4()
        )
    queue_b = Queue.objects.get(pbx="pbx-b")
    rows = staff.get(CDRS, {"queue": queue_b.pk}).context["cl"].result_list
    assert [row.src for row in rows] == ["pbx-b"]
