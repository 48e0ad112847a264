"""api/reports/queues and api/reports/agents: the real fixture logs against the test's own count."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pbx.models.history import QueueEntry
from tests.conftest import fixtures_path
from tests.envelope import error, result

pytestmark = pytest.mark.django_db

SYNKBUG = ("queue_log", "issabel_synkbug_queue_log-20220801.txt")
SLACK = ("queue_log", "asterisk2slack_fixture_queue_log_membernames.txt")
BOOK = ("queue_log", "asterisk_book_3rd_ed_sample_queue_log_partial.txt")
ZONE = "America/Mexico_City"  # the company's zone: days and hours are local to it

ANSWERS = {"CONNECT", "COMPLETEAGENT", "COMPLETECALLER"}
EXITS = {
    "ABANDON": "abandoned",
    "EXITWITHTIMEOUT": "timeouts",
    "EXITWITHKEY": "exited_with_key",
    "EXITEMPTY": "exited_empty",
}


def raw_lines(path: Path) -> list[list[str]]:
    """The file's distinct epoch lines, split: exact repeats are one line (as the ingest keeps)."""
    text = path.read_bytes().replace(b"\x00", b"").decode()
    seen = dict.fromkeys(line for line in text.splitlines() if line.split("|")[0].isdigit())
    return [line.split("|") for line in seen]


def raw_calls(path: Path) -> dict[tuple[str, str], dict]:
    """The test's own reading: one call per (callid, queue) with an entry line (in these files
    no caller enters a queue twice), with its outcome, wait, talk and entry time."""
    calls: dict[tuple[str, str], dict] = defaultdict(dict)
    for epoch, callid, queue, _agent, event, *data in raw_lines(path):
        call = calls[callid, queue] if event in ANSWERS | set(EXITS) | {"ENTERQUEUE"} else None
        if call is None:
            continue
        if event == "ENTERQUEUE":
            assert call.get("entered", int(epoch)) == int(epoch), "a second entry: not these files"
            call["entered"] = int(epoch)
        elif event == "CONNECT":
            call.update(outcome="answered", wait=int(data[0]), connected=int(epoch))
        elif event in ("COMPLETEAGENT", "COMPLETECALLER"):
            call.update(outcome="answered", talk=int(data[1]), completed=int(epoch))
            call.setdefault("wait", int(data[0]))
        else:
            call.update(outcome=EXITS[event], wait=int(data[3 if event == "EXITWITHKEY" else 2]))
    for call in calls.values():
        if "entered" not in call:  # its ENTERQUEUE is in a rotated file: dated back
            if "connected" in call:
                call["entered"] = call["connected"] - call["wait"]
            else:
                call["entered"] = call["completed"] - call["talk"] - call["wait"]
    return calls


def expected_queue(calls: list[dict], *, level: int = 20, short: int = 5) -> dict:
    zone = ZoneInfo(ZONE)
    answered = [c for c in calls if c.get("outcome") == "answered"]
    counts = {name: sum(c.get("outcome") == name for c in calls) for name in EXITS.values()}
    unanswered = sum(counts.values())
    shorts = sum(c.get("outcome") == "abandoned" and c["wait"] < short for c in calls)
    waits = [c["wait"] for c in answered]
    hours = defaultdict(lambda: defaultdict(int))
    for c in calls:
        local = datetime.fromtimestamp(c["entered"], zone)
        kind = c.get("outcome", "waiting")
        hours[local.hour][kind] += 1
    denominator = len(answered) + unanswered - shorts
    return {
        "offered": len(calls),
        "answered": len(answered),
        "unanswered": unanswered,
        **counts,
        "short_abandons": shorts,
        "service_level": round(sum(w < level for w in waits) * 100 / denominator, 2)
        if denominator
        else 100.0,
        "avg_wait": round(sum(waits) / len(waits), 2) if waits else 0.0,
        "max_wait": max(waits, default=0),
        "avg_talk": round(sum(c.get("talk", 0) for c in answered) / len(answered), 2)
        if answered
        else 0.0,
        "by_hour": [
            {
                "hour": h,
                "answered": hours[h]["answered"],
                "abandoned": hours[h]["abandoned"],
                "unanswered": sum(hours[h][k] for k in EXITS.values()),
            }
            for h in range(24)
        ],
    }


def local_days(calls: list[dict]) -> tuple[str, str]:
    zone = ZoneInfo(ZONE)
    days = sorted(datetime.fromtimestamp(c["entered"], zone).date() for c in calls)
    return days[0].isoformat(), days[-1].isoformat()


@pytest.fixture
def mexico(make_company):
    return make_company(slug="mx", name="MX", time_zone=ZONE)


def test_the_issabel_queue_equals_the_own_count_of_its_lines(ingest, api, mexico, make_queue):
    path = fixtures_path(*SYNKBUG)
    make_queue(mexico, "500", display_name="Soporte")
    ingest("ingest_queue_log", path)
    calls = list(raw_calls(path).values())
    first, last = local_days(calls)

    [queue] = result(api.get("/api/reports/queues", {"company": "mx", "from": first, "to": last}))[
        "queues"
    ]

    assert (queue["queue"], queue["display_name"]) == ("500", "Soporte")
    assert {k: queue[k] for k in expected_queue(calls)} == expected_queue(calls)
    # grep -c '|ABANDON|' = 27, 3 answered (CONNECT); awk -F'|' '$8<5' of the ABANDON lines → 6
    assert (queue["offered"], queue["abandoned"], queue["answered"]) == (30, 27, 3)
    assert queue["short_abandons"] == 6
    assert queue["service_level"] == round(3 * 100 / (30 - 6), 2)
    buckets = defaultdict(int)
    for c in calls:
        if c.get("outcome") == "abandoned":
            buckets[min(c["wait"] // 15, 20)] += 1
    assert [b["abandoned"] for b in queue["abandon_wait_buckets"]] == [
        buckets[n] for n in range(21)
    ]
    # grep '|ABANDON|' | awk -F'|' '$8<15' | wc -l → 14
    assert queue["abandon_wait_buckets"][0] == {
        "from_seconds": 0,
        "to_seconds": 15,
        "abandoned": 14,
    }
    assert queue["abandon_wait_buckets"][-1]["to_seconds"] is None
    by_day = defaultdict(lambda: defaultdict(int))
    for c in calls:
        day = datetime.fromtimestamp(c["entered"], ZoneInfo(ZONE)).date().isoformat()
        by_day[day][c["outcome"]] += 1
    # every day from the first call's (07-18 local) to the last's (07-27), those without calls too
    assert [d["date"] for d in queue["by_day"]] == [f"2022-07-{day}" for day in range(18, 28)]
    assert {
        d["date"]: (d["answered"], d["abandoned"])
        for d in queue["by_day"]
        if d["answered"] or d["abandoned"]
    } == {day: (counts["answered"], counts["abandoned"]) for day, counts in by_day.items()}


def test_queues_of_other_files_equal_their_own_counts(ingest, api, mexico, make_queue):
    make_queue(mexico, "201")
    make_queue(mexico, "7100", service_level_seconds=1)
    calls = {}
    for parts in (SLACK, BOOK):
        path = fixtures_path(*parts)
        ingest("ingest_queue_log", path)
        for (_callid, queue), call in raw_calls(path).items():
            calls.setdefault(queue, []).append(call)

    for name, level in (("201", 20), ("7100", 1)):
        first, last = local_days(calls[name])
        [queue] = result(
            api.get(
                "/api/reports/queues",
                {"company": "mx", "from": first, "to": last, "queues[]": name},
            )
        )["queues"]
        assert {k: queue[k] for k in expected_queue(calls[name], level=level)} == expected_queue(
            calls[name], level=level
        ), name
    # the slack file: four calls answered, one of them still talking (no COMPLETE line yet)
    assert expected_queue(calls["201"])["answered"] == 4


def raw_agent(path: Path, *, names: set[str], start: int, end: int) -> dict:
    answered = [
        c
        for c in raw_calls(path).values()
        if c.get("outcome") == "answered" and start <= c["entered"] < end
    ]
    rings = sum(
        1
        for epoch, _c, _q, agent, event, *_ in raw_lines(path)
        if event == "RINGNOANSWER" and agent in names and start <= int(epoch) < end
    )
    return {
        "answered": len(answered),
        "talk": sum(c.get("talk", 0) for c in answered),
        "rings": rings,
    }


def test_the_issabel_agent_equals_the_own_count(ingest, api, mexico, make_user, make_queue):
    path = fixtures_path(*SYNKBUG)
    make_user(mexico, "1001", "Sathish", terminals=["SIP/1001"])
    make_queue(mexico, "500")
    make_user(mexico, "1002", "Nadie")  # no queue, no line: not listed
    ingest("ingest_queue_log", path)
    zone = ZoneInfo(ZONE)
    start = datetime(2022, 7, 26, tzinfo=zone)
    end = datetime(2022, 7, 28, tzinfo=zone)

    [agent] = result(
        api.get("/api/reports/agents", {"company": "MX", "from": "2022-07-26", "to": "2022-07-27"})
    )["agents"]

    own = raw_agent(
        path, names={"Sathish", "SIP/1001"}, start=int(start.timestamp()), end=int(end.timestamp())
    )
    # awk over ADDMEMBER/REMOVEMEMBER pairs starting on 07-26 or 07-27 local (none crosses midnight)
    logins = 0
    opened = None
    for epoch, _c, _q, who, event, *_ in raw_lines(path):
        if who == "SIP/1001" and event == "ADDMEMBER":
            opened = int(epoch)
        elif who == "SIP/1001" and event == "REMOVEMEMBER" and opened:
            if start.timestamp() <= opened < end.timestamp():
                logins += int(epoch) - opened
            opened = None
    assert agent == {
        "extension": "1001",
        "name": "Sathish",
        "answered": own["answered"],
        "talk_seconds": own["talk"],
        "avg_talk": round(own["talk"] / own["answered"], 2),
        "ring_no_answer": own["rings"],
        "login_seconds": logins,
        "pause_seconds": {},
    }
    assert (own["answered"], own["talk"], own["rings"]) == (3, 22, 1)


def test_login_and_pauses_are_cut_at_the_period_and_now(
    api, company, make_user, make_queue, tmp_path
):
    from tests.history.test_agent_activity import run, write

    ana = make_user(company, "201", "Ana")
    make_queue(company, "q1", members=[ana])
    make_queue(company, "q2")
    madrid = ZoneInfo("Europe/Madrid")
    # logged in from 23:00 on 2026-03-01 to 01:00 on 2026-03-03; paused 23:30 to 00:30 over midnight
    login = datetime(2026, 3, 1, 23, 0, tzinfo=madrid)
    path = tmp_path / "queue_log"
    stamp = lambda moment: int(moment.timestamp())  # noqa: E731
    write(
        path,
        f"{stamp(login)}|MANAGER|q1|PJSIP/201|ADDMEMBER|",
        f"{stamp(login + timedelta(minutes=30))}|NONE|q1|Ana|PAUSE|Descanso",
        f"{stamp(login + timedelta(minutes=90))}|NONE|q1|Ana|UNPAUSE|",
        f"{stamp(login + timedelta(hours=26))}|MANAGER|q1|PJSIP/201|REMOVEMEMBER|",
        f"{stamp(login + timedelta(hours=30))}|MANAGER|q2|PJSIP/201|ADDMEMBER|",
    )
    run(path)

    def agents(first, last, **params):
        body = result(
            api.get(
                "/api/reports/agents", {"company": "onfarma", "from": first, "to": last, **params}
            )
        )
        return {a["extension"]: a for a in body["agents"]}

    day2 = agents("2026-03-02", "2026-03-02")["201"]
    assert (day2["login_seconds"], day2["pause_seconds"]) == (86400, {"Descanso": 1800})
    both = agents("2026-03-01", "2026-03-02")["201"]
    assert (both["login_seconds"], both["pause_seconds"]) == (90000, {"Descanso": 3600})
    # the session opened on 2026-03-03 05:00 is still open: counted until now, not the day's end
    now = datetime.now(UTC)
    if now.astimezone(madrid).date() > login.date() + timedelta(days=2):
        day3 = agents("2026-03-03", "2026-03-03")["201"]
        assert day3["login_seconds"] == 3600 + 19 * 3600
    # with queues, calls count in them; login and pause stay the agent's
    assert agents("2026-03-02", "2026-03-02", **{"queues[]": "q2"}) == {}
    assert agents("2026-03-02", "2026-03-02", **{"queues[]": "q1"})["201"] == day2


def test_a_configured_member_without_calls_is_listed_with_zeros(
    api, company, make_user, make_queue
):
    ana = make_user(company, "201", "Ana")
    make_queue(company, "q1", members=[ana])

    body = result(
        api.get(
            "/api/reports/agents", {"company": "onfarma", "from": "2026-01-01", "to": "2026-01-31"}
        )
    )

    assert body == {
        "agents": [
            {
                "extension": "201",
                "name": "Ana",
                "answered": 0,
                "talk_seconds": 0,
                "avg_talk": 0.0,
                "ring_no_answer": 0,
                "login_seconds": 0,
                "pause_seconds": {},
            }
        ]
    }


def test_an_empty_queue_has_zeros_and_every_bucket(api, company, make_queue):
    make_queue(company, "q1")
    [queue] = result(
        api.get(
            "/api/reports/queues", {"company": "onfarma", "from": "2026-01-01", "to": "2026-01-02"}
        )
    )["queues"]
    assert queue["offered"] == 0
    assert queue["service_level"] == 100.0
    assert queue["display_name"] == "q1"  # none set: the Asterisk name
    assert len(queue["by_hour"]) == 24
    assert [d["date"] for d in queue["by_day"]] == ["2026-01-01", "2026-01-02"]
    assert len(queue["abandon_wait_buckets"]) == 21


def test_days_are_local_to_the_company(api, make_company, make_queue):
    canary = make_company(slug="canarias", name="Canarias", time_zone="Atlantic/Canary")
    queue = make_queue(canary, "q-can")
    # 2026-07-01 23:30 in the Canaries (UTC+1) is 22:30 UTC: that day, hour 23
    QueueEntry.objects.create(
        callid="1.1",
        queue_name="q-can",
        queue=queue,
        company=canary,
        entered_at=datetime(2026, 7, 1, 22, 30, tzinfo=UTC),
        outcome="answered",
        wait_seconds=4,
        talk_seconds=30,
    )
    [row] = result(
        api.get(
            "/api/reports/queues", {"company": "canarias", "from": "2026-07-01", "to": "2026-07-01"}
        )
    )["queues"]
    assert row["answered"] == 1
    assert [h["hour"] for h in row["by_hour"] if h["answered"]] == [23]
    [next_day] = result(
        api.get(
            "/api/reports/queues", {"company": "canarias", "from": "2026-07-02", "to": "2026-07-02"}
        )
    )["queues"]
    assert next_day["answered"] == 0


def test_the_queue_report_runs_a_fixed_number_of_queries(api, company, make_queue):
    for n in range(5):
        queue = make_queue(company, f"q{n}", service_level_seconds=10 + n)
        for m in range(3):
            QueueEntry.objects.create(
                callid=f"{n}.{m}",
                queue_name=queue.name,
                queue=queue,
                company=company,
                entered_at=datetime(2026, 1, 1 + m, 10, tzinfo=UTC),
                outcome="answered",
            )
    params = {"company": "onfarma", "from": "2026-01-01", "to": "2026-01-31"}
    api.get("/api/reports/queues", params)  # warm the key's last-used write
    with CaptureQueriesContext(connection) as queries:
        body = result(api.get("/api/reports/queues", params))
    assert len(body["queues"]) == 5
    # the company, its queues, the figures, the abandon buckets (the key is kept from the first
    # request: pbx/directory/api_keys.py; on PostgreSQL the figures run in a savepoint with their own work_mem)
    reads = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "SET"))]
    assert len(reads) == 4, reads


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"from": "2026-01-01", "to": "2026-01-02"}, 400, "company"),
        ({"company": "onfarma", "to": "2026-01-02"}, 400, "from"),
        ({"company": "onfarma", "from": "2026-01-01"}, 400, "to"),
        ({"company": "onfarma", "from": "01/01/2026", "to": "2026-01-02"}, 400, "from"),
        ({"company": "onfarma", "from": "2026-02-30", "to": "2026-03-02"}, 400, "from"),
        ({"company": "onfarma", "from": "2026-01-02", "to": "2026-01-01"}, 400, "to"),
        ({"company": "onfarma", "from": "2025-01-01", "to": "2026-01-02"}, 400, "to"),
        ({"company": "onfarma", "from": "9999-12-31", "to": "9999-12-31"}, 400, "'from'"),
        ({"company": "onfarma", "from": "9998-12-31", "to": "9999-12-31"}, 400, "'to'"),
        ({"company": "onfarma", "from": "0001-01-01", "to": "0001-01-02"}, 400, "'from'"),
        ({"company": "otra", "from": "2026-01-01", "to": "2026-01-02"}, 404, "otra"),
        (
            {"company": "onfarma", "from": "2026-01-01", "to": "2026-01-02", "queues[]": "qx"},
            404,
            "qx",
        ),
    ],
)
@pytest.mark.parametrize("path", ["/api/reports/queues", "/api/reports/agents"])
def test_bad_parameters_are_named(api, company, make_queue, path, params, status, message):
    make_queue(company, "q1")
    assert message in error(api.get(path, params, HTTP_ACCEPT_LANGUAGE="en"), status)


def test_a_company_the_key_cannot_see_is_a_404(api_for, company, make_company, make_queue):
    other = make_company(slug="other", name="Other")
    make_queue(company, "q1")
    client = api_for(other)
    for path in ("/api/reports/queues", "/api/reports/agents"):
        message = error(
            client.get(path, {"company": "onfarma", "from": "2026-01-01", "to": "2026-01-02"}), 404
        )
        assert "onfarma" in message
    # another company's queue by name: as unknown
    make_queue(other, "q-other")
    error(
        client.get(
            "/api/reports/queues",
            {"company": "other", "from": "2026-01-01", "to": "2026-01-02", "queues[]": "q1"},
        ),
        404,
    )


def test_without_a_key_it_is_a_401(client):
    response = client.get(
        "/api/reports/queues", {"company": "x", "from": "2026-01-01", "to": "2026-01-01"}
    )
    assert response.status_code == 401
    assert response.json()["error"] is True


def test_queues_may_be_written_any_way(api, company, make_queue):
    make_queue(company, "q1")
    make_queue(company, "q2")
    make_queue(company, "q3")
    base = "/api/reports/queues?company=onfarma&from=2026-01-01&to=2026-01-01"
    for query in (
        "&queues[]=q2&queues[]=q1",
        "&queues[0]=q1&queues[1]=q2",
        "&queues=q1&queues=q2",
        '&queues=["q1","q2"]',
    ):
        body = result(api.get(base + query))
        assert [q["queue"] for q in body["queues"]] == ["q1", "q2"], query


def test_the_agent_report_runs_a_fixed_number_of_queries(api, company, make_user, make_queue):
    users = [make_user(company, str(200 + n)) for n in range(6)]
    queue = make_queue(company, "q1", members=users[:3])
    for n, user in enumerate(users):
        QueueEntry.objects.create(
            callid=f"9.{n}",
            queue_name="q1",
            queue=queue,
            company=company,
            entered_at=datetime(2026, 1, 2, 10, tzinfo=UTC),
            outcome="answered",
            talk_seconds=10 * n,
            agent_user=user,
        )
    params = {"company": "onfarma", "from": "2026-01-01", "to": "2026-01-31"}
    api.get("/api/reports/agents", params)
    for extra, count in (({}, 8), ({"queues[]": "q1"}, 9)):
        with CaptureQueriesContext(connection) as queries:
            body = result(api.get("/api/reports/agents", {**params, **extra}))
        assert [a["talk_seconds"] for a in body["agents"]] == [0, 10, 20, 30, 40, 50]
        # company, queues; calls, rings, login, pauses, members, users (+ logins to queues); the
        # key is kept from the first request (pbx/directory/api_keys.py)
        assert len(queries) == count, [q["sql"] for q in queries]
