"""Report pages of the dashboard: access, the same figures as the API, CSV exports, recordings."""

from __future__ import annotations

import csv
import html
import io
import wave
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from pbx.history import reports
from pbx.models.history import CdrRecord, QueueEntry
from tests.conftest import fixtures_path

pytestmark = pytest.mark.django_db

SYNKBUG = ("queue_log", "issabel_synkbug_queue_log-20220801.txt")
PERIOD = {"from": "2022-07-18", "to": "2022-07-31"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def synk(company, make_user, make_queue, make_supervisor):
    from django.core.management import call_command

    sathish = make_user(company, "1001", "Sathish", terminals=["SIP/1001"])
    queue = make_queue(company, "500", display_name="Soporte", members=[sathish])
    call_command("ingest_queue_log", str(fixtures_path(*SYNKBUG)), stdout=io.StringIO())
    return {"user": sathish, "queue": queue, "supervisor": make_supervisor(company)}


def test_the_pages_need_a_login(client, company):
    for path in ("reports/", "reports/agents/", "reports/calls/", "reports/queues.csv"):
        response = client.get(f"/dashboard/onfarma/{path}")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_a_company_not_supervised_is_a_404(company, make_company, make_supervisor):
    other = make_company()
    client = login(make_supervisor(other))
    for path in ("reports/", "reports/agents/", "reports/calls/", "reports/agents.csv"):
        assert client.get(f"/dashboard/onfarma/{path}").status_code == 404
    assert client.get(f"/dashboard/{other.slug}/reports/").status_code == 200


def test_the_queue_page_and_its_exports_have_the_api_figures(synk, company):
    client = login(synk["supervisor"])
    period = reports.period_of(company, reports.dates_get(first=PERIOD["from"], last=PERIOD["to"]))
    [figures] = reports.queue_report(queues=[synk["queue"]], period=period)

    response = client.get("/dashboard/onfarma/reports/", PERIOD, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="table-queues"' in page
    assert "Soporte" in page
    assert "service level 20 s, short abandon under 5 s" in page
    rows = read_csv(client.get("/dashboard/onfarma/reports/queues.csv", PERIOD))
    assert rows[0][:4] == ["Cola", "Nombre", "Ofrecidas", "Atendidas"]  # Spanish by default
    assert rows[1] == [
        "500",
        "Soporte",
        *map(
            str,
            [
                figures["offered"],
                figures["answered"],
                figures["unanswered"],
                figures["abandoned"],
                figures["short_abandons"],
                figures["timeouts"],
                figures["exited_with_key"],
                figures["exited_empty"],
                figures["service_level"],
                figures["avg_wait"],
                figures["max_wait"],
                figures["avg_talk"],
            ],
        ),
    ]
    assert rows[1][2:6] == ["30", "3", "27", "27"]
    hours = read_csv(client.get("/dashboard/onfarma/reports/hours.csv", PERIOD))
    assert len(hours) == 25
    assert [row[1:] for row in hours[1:]] == [
        [str(h["answered"]), str(h["abandoned"]), str(h["unanswered"])] for h in figures["by_hour"]
    ]
    days = read_csv(client.get("/dashboard/onfarma/reports/days.csv", PERIOD))
    assert [row[0] for row in days[1:]] == [d["date"] for d in figures["by_day"]]
    waits = read_csv(client.get("/dashboard/onfarma/reports/abandon-waits.csv", PERIOD))
    assert [int(row[2]) for row in waits[1:]] == [
        b["abandoned"] for b in figures["abandon_wait_buckets"]
    ]
    assert waits[-1][:2] == ["300", ""]


def test_the_agent_page_and_export(synk, company):
    client = login(synk["supervisor"])
    period = reports.period_of(company, reports.dates_get(first=PERIOD["from"], last=PERIOD["to"]))
    [agent] = reports.agent_report(company=company, queues=[synk["queue"]], period=period)

    page = client.get("/dashboard/onfarma/reports/agents/", PERIOD).content.decode()

    assert "Sathish" in page
    assert (
        "/dashboard/onfarma/reports/calls/?from=2022-07-18&amp;to=2022-07-31&amp;agent=1001" in page
    )
    rows = read_csv(
        client.get("/dashboard/onfarma/reports/agents.csv", PERIOD, HTTP_ACCEPT_LANGUAGE="en")
    )
    assert rows[0][:8] == [
        "Extension",
        "Name",
        "Answered",
        "Talk time (s)",
        "Average talk (s)",
        "Rang unanswered",
        "Logged in (s)",
        "Paused (s)",
    ]
    assert rows[1] == [
        "1001",
        "Sathish",
        str(agent["answered"]),
        str(agent["talk_seconds"]),
        str(agent["avg_talk"]),
        str(agent["ring_no_answer"]),
        str(agent["login_seconds"]),
        "0",
    ]


def test_pause_reasons_are_columns(company, make_user, make_queue, make_supervisor, tmp_path):
    from tests.history.test_agent_activity import run, write

    make_user(company, "201", "=Ana")  # a name a spreadsheet would run as a formula
    make_queue(company, "q1")
    path = tmp_path / "queue_log"
    base = int(datetime(2026, 1, 5, 9, tzinfo=UTC).timestamp())
    write(
        path,
        f"{base}|MANAGER|q1|PJSIP/201|ADDMEMBER|",
        f"{base + 60}|NONE|q1|PJSIP/201|PAUSE|Descanso",
        f"{base + 360}|NONE|q1|PJSIP/201|UNPAUSE|",
        f"{base + 400}|NONE|q1|PJSIP/201|PAUSE|",
        f"{base + 460}|NONE|q1|PJSIP/201|UNPAUSE|",
        f"{base + 3600}|MANAGER|q1|PJSIP/201|REMOVEMEMBER|",
    )
    run(path)
    client = login(make_supervisor(company))
    params = {"from": "2026-01-05", "to": "2026-01-05"}

    rows = read_csv(
        client.get("/dashboard/onfarma/reports/agents.csv", params, HTTP_ACCEPT_LANGUAGE="en")
    )
    page = client.get("/dashboard/onfarma/reports/agents/", params, HTTP_ACCEPT_LANGUAGE="en")

    assert rows[0][7:] == ["Paused (s)", "Paused: no reason (s)", "Paused: Descanso (s)"]
    assert rows[1] == ["201", "'=Ana", "0", "0", "0.0", "0", "3600", "360", "60", "300"]
    assert "1:00:00" in page.content.decode()  # logged in, as H:MM:SS


def test_bad_input_shows_the_message_with_a_400(company, make_supervisor, make_queue):
    make_queue(company, "q1")
    client = login(make_supervisor(company))
    for params, text in (
        ({"from": "2026-02-01", "to": "2026-01-01"}, "'to'"),
        ({"from": "mañana", "to": "2026-01-01"}, "'from'"),
        ({"queues": "nope"}, "nope"),
        ({"agent": "999"}, "999"),
        ({"outcome": "maybe"}, "outcome"),
    ):
        response = client.get(
            "/dashboard/onfarma/reports/calls/", params, HTTP_ACCEPT_LANGUAGE="en"
        )
        assert response.status_code == 400
        assert text in html.unescape(response.content.decode())
        csv_response = client.get("/dashboard/onfarma/reports/calls.csv", params)
        assert csv_response.status_code == 400
    assert client.get("/dashboard/onfarma/reports/nothing.csv").status_code == 404


def test_the_default_period_is_the_last_seven_days(company, make_supervisor):
    page = login(make_supervisor(company)).get("/dashboard/onfarma/reports/")
    assert page.status_code == 200
    assert page.context["query"].last - page.context["query"].first == timedelta(days=6)


def test_the_pages_are_translated(synk):
    client = login(synk["supervisor"])
    spanish = client.get("/dashboard/onfarma/reports/", PERIOD, HTTP_ACCEPT_LANGUAGE="es")
    assert "Informes" in spanish.content.decode()
    assert "Por hora del día" in spanish.content.decode()
    english = client.get("/dashboard/onfarma/reports/", PERIOD, HTTP_ACCEPT_LANGUAGE="en")
    assert "By hour of the day" in english.content.decode()


def _wav(path, seconds: float = 2.0) -> bytes:
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x01" * int(8000 * seconds))
    return path.read_bytes()


@pytest.fixture
def recorded_call(settings, tmp_path, company, make_user, make_queue, make_supervisor):
    """An answered queue call of 2026-01-05 with its CDR and a WAV named after its uniqueid."""
    settings.RECORDINGS_ROOT = tmp_path / "rec"
    ana = make_user(company, "201", "Ana")
    queue = make_queue(company, "q1")
    entered = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for n in range(60):
        QueueEntry.objects.create(
            callid=f"1767603600.{n}",
            queue_name="q1",
            queue=queue,
            company=company,
            caller=f"6000000{n:02d}",
            entered_at=entered + timedelta(minutes=n),
            answered_at=entered + timedelta(minutes=n, seconds=5),
            outcome="answered" if n % 3 else "abandoned",
            wait_seconds=5,
            talk_seconds=40 if n % 3 else 0,
            agent="PJSIP/201" if n % 3 else "",
            agent_user=ana if n % 3 else None,
        )
    CdrRecord.objects.create(
        calldate=entered + timedelta(minutes=59),
        src="600000059",
        dst="q1",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/201-1",
        channel_device="PJSIP/trunk",
        dstchannel_device="PJSIP/201",
        uniqueid="1767603600.59",
        linkedid="1767603600.59",
        billsec=40,
        disposition="ANSWERED",
        company=company,
        digest="00000000-0000-0000-0000-000000000059",
    )
    day = tmp_path / "rec" / "2026" / "01" / "05"
    day.mkdir(parents=True)
    audio = _wav(day / "q-1767603600.59.wav")
    return {"agent": ana, "audio": audio, "supervisor": make_supervisor(company)}


def test_the_call_list_plays_recordings_with_ranges(recorded_call, company):
    client = login(recorded_call["supervisor"])
    params = {"from": "2026-01-05", "to": "2026-01-05", "outcome": "answered"}

    with CaptureQueriesContext(connection) as queries:
        response = client.get(
            "/dashboard/onfarma/reports/calls/", params, HTTP_ACCEPT_LANGUAGE="en"
        )
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) == 40  # 60 calls, one in three abandoned: one page
    assert rows[0]["cells"][-1] == "1767603600.59"  # newest first
    assert rows[0]["cells"][6] == "201 Ana"
    # session, user, supervisor's companies, queues (x2 with the page's), agent list, count, page
    assert len(queries) <= 9, [q["sql"] for q in queries]
    assert all(row["recording"].startswith("/recording-file/") for row in rows)
    assert 'preload="none"' in response.content.decode()

    anonymous = Client()  # the signed URL is the credential, as for an API key's
    url = rows[0]["recording"]
    whole = anonymous.get(url)
    assert (whole.status_code, whole["Content-Type"]) == (200, "audio/wav")
    assert b"".join(whole.streaming_content) == recorded_call["audio"]
    part = anonymous.get(url, HTTP_RANGE="bytes=100-199")
    assert (part.status_code, part["Content-Range"]) == (
        206,
        f"bytes 100-199/{len(recorded_call['audio'])}",
    )
    assert b"".join(part.streaming_content) == recorded_call["audio"][100:200]
    # another answered call of the page has no file: 404 when played
    assert anonymous.get(rows[1]["recording"]).status_code == 404


def test_a_supervisors_link_stops_with_its_access(recorded_call, company):
    supervisor = recorded_call["supervisor"]
    client = login(supervisor)
    params = {"from": "2026-01-05", "to": "2026-01-05", "agent": "201"}
    url = client.get("/dashboard/onfarma/reports/calls/", params).context["rows"][0]["recording"]
    assert Client().get(url).status_code == 200

    supervisor.supervisor.companies.clear()
    assert Client().get(url, HTTP_ACCEPT_LANGUAGE="en").status_code == 403
    supervisor.supervisor.companies.add(company)
    assert Client().get(url).status_code == 200
    supervisor.set_password("another-Pass-1")
    supervisor.save()
    assert Client().get(url).status_code == 403


def test_the_calls_export_has_every_call(recorded_call):
    client = login(recorded_call["supervisor"])
    rows = read_csv(
        client.get(
            "/dashboard/onfarma/reports/calls.csv",
            {"from": "2026-01-05", "to": "2026-01-05"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    )
    assert rows[0] == [
        "Entered",
        "Queue",
        "Caller",
        "Outcome",
        "Wait (s)",
        "Talk (s)",
        "Agent",
        "Call id",
    ]
    assert len(rows) == 61
    assert rows[1] == [
        "2026-01-05 10:59:00",  # local time (Europe/Madrid)
        "q1",
        "600000059",
        "answered",
        "5",
        "40",
        "201 Ana",
        "1767603600.59",
    ]
    assert rows[-1][3] == "caller hung up"


def test_the_live_dashboard_links_to_the_reports(company, make_supervisor):
    page = login(make_supervisor(company)).get("/dashboard/onfarma/").content.decode()
    assert 'href="/dashboard/onfarma/reports/"' in page
