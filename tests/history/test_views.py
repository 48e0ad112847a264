"""queues-status, user-resume, last-calls and recording: results and every error path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from pbx.api.read_cache import live_cache
from pbx.history import selectors as history
from pbx.models import Department, LiveChannel, QueueCallerState, QueueMemberState
from pbx.models.history import CdrRecord, QueueEntry
from tests.envelope import error, result

pytestmark = pytest.mark.django_db

# 2024-05-10 10:00 in Madrid (UTC+2).
NOW = datetime(2024, 5, 10, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


_ids = iter(range(1, 10**6))


def entry(queue, outcome="answered", *, at=NOW - timedelta(hours=1), wait=10, talk=60, user=None):
    return QueueEntry.objects.create(
        callid=f"{next(_ids)}.1",
        queue_name=queue if isinstance(queue, str) else queue.name,
        company=None if isinstance(queue, str) else queue.company,
        entered_at=at,
        outcome=outcome,
        wait_seconds=wait,
        talk_seconds=talk if outcome == "answered" else 0,
        agent_user=user,
    )


def caller(queue, *, waited):
    QueueCallerState.objects.create(
        queue_name=queue.name,
        queue=queue,
        unique_id=f"{next(_ids)}.9",
        entered_at=NOW - timedelta(seconds=waited),
        confirmed_at=NOW,
    )


def logged_in(queue, user, interface=None):
    QueueMemberState.objects.create(
        queue_name=queue.name,
        queue=queue,
        interface=interface or f"PJSIP/{user.extension}",
        user=user,
        changed_at=NOW,
        confirmed_at=NOW,
    )


@pytest.fixture
def centre(company, make_user, make_queue):
    ana = make_user(company, "200", "Ana", department="Soporte")
    luis = make_user(company, "201", "Luis", department="Soporte")
    eva = make_user(company, "30", "Eva", department="Ventas")
    soporte = make_queue(company, "q-soporte", members=[ana, luis])
    ventas = make_queue(company, "q-ventas", members=[eva], service_level_seconds=30)
    return {"ana": ana, "luis": luis, "eva": eva, "soporte": soporte, "ventas": ventas}


# queues-status


def test_queues_status_counts_today_per_group(api, centre):
    soporte, ventas = centre["soporte"], centre["ventas"]
    entry(soporte, wait=10)
    entry(soporte, wait=30)
    entry(ventas, wait=25)  # under ventas' 30 s service level
    entry(soporte, "abandoned", wait=50)
    entry(soporte, "timeout")
    entry(ventas, "transferred", wait=5)
    entry(soporte, "waiting")  # no exit line: neither completed nor abandoned
    caller(soporte, waited=5)
    logged_in(soporte, centre["luis"])
    logged_in(ventas, centre["eva"])
    logged_in(ventas, centre["ana"], "Local/200@from-queue/n")

    data = result(
        api.get(
            "/queues-status",
            {"queues[all][]": ["q-soporte", "q-ventas"], "queues[v][0]": "q-ventas"},
        )
    )

    assert data["queues"]["all"] == {
        "members": ["30", "200", "201"],
        "alarm": False,
        "status": {
            "abandoned": 2,
            "abandonedRatio": 66.67,  # 100 - 2*100/6
            "avgRingTime": 17.5,  # (10+30+25+5)/4
            "avgRingTimeRatio": 58.33,  # 17.5*100/30
            "completed": 4,
            "currentCalls": 1,
            "maxRingTime": 30,
            "ringTimeOK": 3,  # 10 (<20), 25 and 5 (<30)
            "serviceRatio": 75.0,
        },
    }
    assert data["queues"]["v"]["status"]["completed"] == 2
    assert data["queues"]["v"]["members"] == ["30", "200"]


def test_an_unknown_or_invisible_queue_is_empty(api_for, centre, make_company, make_queue):
    other = make_queue(make_company(), "q-other")
    entry(other)
    data = result(
        api_for(centre["ana"].company).get(
            "/queues-status", {"queues": json.dumps({"g": ["q-other", "nope"]})}
        )
    )
    assert data["queues"]["g"] == {
        "members": [],
        "alarm": False,
        "status": {
            "abandoned": 0,
            "abandonedRatio": 100,
            "avgRingTime": 0,
            "avgRingTimeRatio": 0,
            "completed": 0,
            "currentCalls": 0,
            "maxRingTime": 0,
            "ringTimeOK": 0,
            "serviceRatio": 100,
        },
    }


def test_queues_status_alarm_rules(api, centre):
    soporte, ventas = centre["soporte"], centre["ventas"]
    caller(soporte, waited=61)
    data = result(
        api.get("/queues-status", {"queues[s][]": "q-soporte", "queues[v][]": "q-ventas"})
    )
    assert (data["queues"]["s"]["alarm"], data["queues"]["v"]["alarm"]) == (True, False)

    ventas.alarm_abandoned_ratio_below = 80
    ventas.save()
    entry(ventas)
    entry(ventas, "abandoned")
    data = result(api.get("/queues-status", {"queues[v][]": "q-ventas"}))
    assert data["queues"]["v"]["alarm"] is True  # abandonedRatio 50 < 80

    soporte.alarm_wait_seconds = None
    soporte.alarm_waiting_calls = 1
    soporte.save()
    data = result(api.get("/queues-status", {"queues[s][]": "q-soporte"}))
    assert data["queues"]["s"]["alarm"] is True


def test_today_starts_at_local_midnight(api, centre, make_company, make_queue):
    soporte = centre["soporte"]
    midnight = datetime(2024, 5, 9, 22, 0, tzinfo=UTC)  # 2024-05-10 00:00 in Madrid
    entry(soporte, at=midnight - timedelta(seconds=1))
    entry(soporte, at=midnight)
    caracas = make_company(time_zone="America/Caracas")  # UTC-4: its today began at 04:00 UTC
    late = make_queue(caracas, "q-caracas")
    entry(late, at=datetime(2024, 5, 10, 3, 59, 59, tzinfo=UTC))
    entry(late, at=datetime(2024, 5, 10, 4, 0, tzinfo=UTC))
    entry(late, at=datetime(2024, 5, 10, 4, 0, 1, tzinfo=UTC))

    data = result(
        api.get("/queues-status", {"queues[s][]": "q-soporte", "queues[c][]": "q-caracas"})
    )

    assert data["queues"]["s"]["status"]["completed"] == 1
    assert data["queues"]["c"]["status"]["completed"] == 2


def test_queues_status_day_bounds_on_a_dst_day():
    start, end = history.day_bounds("Europe/Madrid", datetime(2024, 3, 31, 12, tzinfo=UTC))
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def test_queues_status_runs_a_constant_number_of_queries(api, centre, make_queue):
    company = centre["soporte"].company
    names = [make_queue(company, f"q{n}").name for n in range(12)]
    for name in names:
        entry(name)

    def count(params):
        live_cache.reset()  # a worker's first answer: the read cache starts empty
        with CaptureQueriesContext(connection) as queries:
            result(api.get("/queues-status", params))
        return len(queries)

    count({"queues[a][]": "q0"})  # the key's first use of the minute writes last_used_at
    small = count({"queues[a][]": "q0"})
    big = count({f"queues[g{n}][]": names[n : n + 4] for n in range(0, 12, 2)})
    assert small == big
    with CaptureQueriesContext(connection) as queries:  # then the probe alone
        result(api.get("/queues-status", {f"queues[g{n}][]": names[n : n + 4] for n in (0, 2)}))
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        history.queues_status(client=_client(), groups={"g": names})
    assert len(queries) == 4


def _client():
    from pbx.directory.api_keys import ApiClient
    from pbx.models import ApiKey

    return ApiClient(key=ApiKey(name="x"), company_ids=None)


def test_queues_status_restricted_to_a_company(api, centre, make_company):
    entry(centre["soporte"])
    other = make_company(slug="otra")
    data = result(api.get("/queues-status", {"queues[s][]": "q-soporte", "company": other.slug}))
    assert data["queues"]["s"]["status"]["completed"] == 0
    assert "nadie" in error(
        api.get("/queues-status", {"queues[s][]": "q-soporte", "company": "nadie"}), 404
    )


def test_queues_status_needs_queues(api):
    assert "queues" in error(api.get("/queues-status"), 400)
    assert "queues" in error(api.get("/queues-status", {"queues": "[1"}), 400)


def test_queues_status_needs_a_key(client):
    assert client.get("/queues-status", {"queues[s][]": "q"}).status_code == 401


# user-resume


def test_user_resume_compares_with_the_department(api, centre):
    ana, luis, soporte = centre["ana"], centre["luis"], centre["soporte"]
    for _ in range(3):
        entry(soporte, user=ana, talk=125)
    entry(soporte, user=luis, talk=60)
    entry(soporte, "abandoned")
    caller(soporte, waited=3)
    CdrRecord.objects.create(
        calldate=NOW - timedelta(days=3),
        src="200",
        dst="600123123",
        channel="PJSIP/200-1",
        channel_device="PJSIP/200",
        disposition="ANSWERED",
        billsec=5,
        uniqueid="9.1",
        company=ana.company,
        digest="00000000-0000-0000-0000-000000000001",
    )

    with translation.override("en"):
        data = result(
            api.get(
                "/user-resume/200",
                {"company": "onfarma", "queues[s][]": "q-soporte", "department": "soporte"},
                HTTP_ACCEPT_LANGUAGE="en",
            )
        )

    assert data["waiting-calls"] == {"s": 1}
    assert data["queue"] == {
        "completed": 4,
        "abandoned": 1,
        "totalSpeechTime": "07 minutes 15 seconds",
    }
    user = data["user"]
    assert (user["completed"], user["totalSpeechTime"], user["lastCall"]) == (
        3,
        "06 minutes 15 seconds",
        "600123123",
    )
    # Department Soporte: Ana and Luis, 4 calls → base 2 per member; Ana 3 → 150 %.
    assert user["stats_complete"] == {"percentage": 150.0, "state": 5}
    # Talk: (375 + 60) / 2 = 217.5; 375 * 100 / 217.5 = 172.41
    assert user["stats_time"] == {"percentage": 172.41, "state": 5}


def test_user_resume_without_queues_or_user(api, centre):
    data = result(api.get("/user-resume/999", {"company": "onfarma"}))
    assert data == {"waiting-calls": {}}


def test_user_resume_with_no_calls_anywhere_is_normal(api, centre):
    data = result(api.get("/user-resume/201", {"company": "onfarma"}))
    assert data["user"]["stats_complete"] == {"percentage": 100.0, "state": 3}
    assert data["user"]["lastCall"] is None


def test_user_resume_errors(api, centre):
    assert "company" in error(api.get("/user-resume/200"), 400)
    assert "nadie" in error(api.get("/user-resume/200", {"company": "nadie"}), 404)
    assert "Marketing" in error(
        api.get("/user-resume/200", {"company": "onfarma", "department": "Marketing"}), 404
    )
    error(api.get("/user-resume/2x0", {"company": "onfarma"}), 400)


@pytest.mark.parametrize(
    ("percentage", "state"),
    [(75, 1), (75.01, 2), (95, 2), (95.01, 3), (104.99, 3), (105, 4), (124.99, 4), (125, 5)],
)
def test_user_resume_states(percentage, state):
    assert history._state(percentage) == state


def test_speech_time_is_not_capped_and_is_translated():
    with translation.override("en"):
        assert history.speech_time(125 * 60 + 3) == "125 minutes 03 seconds"


# last-calls


def cdr(
    company,
    *,
    at,
    src,
    dst,
    channel="",
    dstchannel="",
    uniqueid,
    linkedid="",
    billsec=0,
    disposition="ANSWERED",
    **fields,
):
    from pbx.directory.agent_matching import device_of

    return CdrRecord.objects.create(
        calldate=at,
        src=src,
        dst=dst,
        channel=channel,
        dstchannel=dstchannel,
        channel_device=device_of(channel),
        dstchannel_device=device_of(dstchannel),
        uniqueid=uniqueid,
        linkedid=linkedid,
        billsec=billsec,
        disposition=disposition,
        company=company,
        digest=f"00000000-0000-0000-0000-{next(_ids):012d}",
        **fields,
    )


def test_last_calls_one_row_per_call_newest_first(api, centre):
    company = centre["ana"].company
    # An incoming queue call fanned out to two phones: two rows, one call.
    cdr(
        company,
        at=NOW - timedelta(hours=2),
        src="600111222",
        dst="q-soporte",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/200-2",
        uniqueid="100.1",
        linkedid="100.1",
        billsec=42,
    )
    cdr(
        company,
        at=NOW - timedelta(hours=2),
        src="600111222",
        dst="q-soporte",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/200-3",
        uniqueid="100.2",
        linkedid="100.1",
        disposition="NO ANSWER",
    )
    # Outgoing, unanswered.
    cdr(
        company,
        at=NOW - timedelta(minutes=5),
        src="200",
        dst="931234567",
        channel="PJSIP/200-4",
        uniqueid="101.1",
        disposition="BUSY",
        billsec=0,
    )
    # Too old for the default 24 h.
    cdr(
        company,
        at=NOW - timedelta(hours=30),
        src="200",
        dst="1",
        channel="PJSIP/200-5",
        uniqueid="102.1",
        billsec=9,
    )
    # Someone else's call.
    cdr(
        company,
        at=NOW - timedelta(hours=1),
        src="201",
        dst="30",
        channel="PJSIP/201-6",
        uniqueid="103.1",
        billsec=9,
    )

    assert result(api.get("/last-calls/200")) == [
        {
            "uniqueid": "101.1",
            "calldate": "2024-05-10 09:55:00",
            "duration": 0,
            "number": "931234567",
            "direction": "outgoing",
        },
        {
            "uniqueid": "100.1",
            "calldate": "2024-05-10 08:00:00",
            "duration": 42,
            "number": "600111222",
            "direction": "incoming",
        },
    ]
    assert len(result(api.get("/last-calls/200", {"hours": 31}))) == 3


def test_last_calls_of_a_queue_call_through_local_members_and_a_blind_transfer(api, centre):
    """The rows Asterisk 22 wrote in the real-PBX history test (layout local, Master.csv),
    for a caller originated as Local/support@incoming that agent 201 took and blind-transferred
    to 200: the caller's Local;1 leg carries "Agent 200" <200> as src (connected line) and its
    billsec counts the wait in the queue. For both agents the call is incoming from the caller,
    with the talk time of their own phone's row."""
    company = centre["ana"].company
    at = NOW - timedelta(minutes=5)
    common = {"linkedid": "1796121750.109"}
    cdr(
        company,
        at=at,
        src="200",
        dst="support",
        channel="Local/support@incoming-0000002c;1",
        uniqueid="1796121750.109",
        billsec=7,
        clid='"Agent 200" <200>',
        **common,
    )
    cdr(
        company,
        at=at,
        src="600110024",
        dst="support",
        channel="Local/support@incoming-0000002c;2",
        dstchannel="Local/201@from-queue-0000002e;1",
        uniqueid="1796121750.110",
        billsec=7,
        **common,
    )
    cdr(
        company,
        at=at + timedelta(seconds=1),
        src="600110024",
        dst="200",
        channel="Local/201@from-queue-0000002e;2",
        dstchannel="PJSIP/201-00000016",
        uniqueid="1796121750.114",
        billsec=1,
        **common,
    )
    cdr(
        company,
        at=at + timedelta(seconds=2),
        src="600110024",
        dst="200",
        channel="Local/201@from-queue-0000002e;2",
        dstchannel="PJSIP/200-00000017",
        uniqueid="1796121750.114",
        billsec=5,
        **common,
    )

    call = {"uniqueid": "1796121750.109", "calldate": "2024-05-10 09:55:00"}
    assert result(api.get("/last-calls/200")) == [
        {**call, "duration": 5, "number": "600110024", "direction": "incoming"}
    ]
    assert result(api.get("/last-calls/201")) == [
        {
            **call,
            "calldate": "2024-05-10 09:55:01",
            "duration": 1,
            "number": "600110024",
            "direction": "incoming",
        }
    ]
    resume = result(api.get("/user-resume/200", {"company": company.slug}))
    assert resume["user"]["lastCall"] == "600110024"


def test_last_call_is_the_newest_call_even_when_an_older_one_rang_later(api, centre):
    """Real-PBX shape: caller A rang 200 on a retry after caller B's call to 200 began; the
    newest row is A's, the newest call is B's, as last-calls shows them."""
    company = centre["ana"].company
    at = NOW - timedelta(minutes=5)
    cdr(
        company,
        at=at,
        src="600000001",
        dst="200",
        channel="Local/200@from-queue-1;2",
        dstchannel="PJSIP/200-1",
        uniqueid="10.2",
        linkedid="10.1",
        disposition="NO ANSWER",
    )
    cdr(
        company,
        at=at + timedelta(seconds=2),
        src="600000002",
        dst="200",
        channel="Local/200@from-queue-2;2",
        dstchannel="PJSIP/200-2",
        uniqueid="11.2",
        linkedid="11.1",
        billsec=3,
    )
    cdr(
        company,
        at=at + timedelta(seconds=9),
        src="600000001",
        dst="200",
        channel="Local/200@from-queue-3;2",
        dstchannel="PJSIP/200-3",
        uniqueid="10.5",
        linkedid="10.1",
        disposition="NO ANSWER",
    )
    newest = result(api.get("/last-calls/200"))[0]
    resume = result(api.get("/user-resume/200", {"company": company.slug}))
    assert newest["number"] == resume["user"]["lastCall"] == "600000002"


def test_last_calls_of_another_company_with_the_same_extension_are_not_shown(
    api, centre, make_company, make_user
):
    other = make_company()
    make_user(other, "200", "Otro", terminals=["SIP/other200"])
    cdr(
        other,
        at=NOW - timedelta(hours=1),
        src="200",
        dst="5",
        channel="SIP/other200-1",
        uniqueid="1.5",
    )
    assert result(api.get("/last-calls/200", {"company": "onfarma"})) == []


def test_last_calls_errors(api, centre, make_company, make_user):
    assert "hours" in error(api.get("/last-calls/200", {"hours": 0}), 400)
    assert "hours" in error(api.get("/last-calls/200", {"hours": 721}), 400)
    assert "hours" in error(api.get("/last-calls/200", {"hours": "x"}), 400)
    assert "999" in error(api.get("/last-calls/999"), 404)
    make_user(make_company(), "200", "Otro")
    error(api.get("/last-calls/200"), 409)


# recording


@pytest.fixture
def recorded(settings, tmp_path, centre):
    settings.RECORDINGS_ROOT = tmp_path / "rec"
    settings.RECORDING_ADMIN_LINK_TEMPLATE = "https://pbx.example/cdr?uid={uniqueid}&c={company}"
    folder = tmp_path / "rec" / "2024" / "05" / "10"
    folder.mkdir(parents=True)
    audio = folder / "in-600-200-20240510-095500-500.1.wav"
    audio.write_bytes(bytes(range(256)) * 4)
    cdr(
        centre["ana"].company,
        at=NOW - timedelta(minutes=5),
        src="600",
        dst="200",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/200-2",
        uniqueid="500.1",
        linkedid="500.1",
        billsec=30,
        recordingfile=audio.name,
    )
    cdr(
        centre["ana"].company,
        at=NOW - timedelta(minutes=5),
        src="600",
        dst="200",
        channel="Local/200@from-queue-1;2",
        dstchannel="PJSIP/200-3",
        uniqueid="500.2",
        linkedid="500.1",
    )
    return audio


def test_recording_gives_a_participant_a_signed_path_that_streams(api, client, recorded):
    data = result(api.get("/recording/500.2/200"))
    assert data["processing"] is False
    assert "link" not in data
    assert data["path"].startswith("http://testserver/recording-file/")

    response = client.get(data["path"])
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert b"".join(response.streaming_content) == recorded.read_bytes()

    response = client.get(data["path"], HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 10-19/1024"
    assert b"".join(response.streaming_content) == bytes(range(10, 20))
    response = client.get(data["path"], HTTP_RANGE="bytes=-4")
    assert b"".join(response.streaming_content) == bytes(range(252, 256))
    response = client.get(data["path"], HTTP_RANGE="bytes=2000-")
    assert (response.status_code, response["Content-Range"]) == (416, "bytes */1024")


def test_recording_gives_others_the_admin_link(api, recorded, centre):
    data = result(api.get("/recording/500.1/201"))
    assert data == {"processing": False, "link": "https://pbx.example/cdr?uid=500.1&c=onfarma"}


def test_recording_is_processing_while_the_call_is_live_or_has_no_file(api, recorded):
    LiveChannel.objects.create(
        unique_id="500.1",
        linked_id="500.1",
        channel="PJSIP/200-2",
        interface="PJSIP/200",
        started_at=NOW,
        confirmed_at=NOW,
    )
    assert result(api.get("/recording/500.1/200"))["processing"] is True
    LiveChannel.objects.all().delete()
    recorded.unlink()
    data = result(api.get("/recording/500.1/200"))
    assert data["processing"] is True
    assert "path" in data


def test_recording_of_a_call_still_up_has_no_cdr_yet_and_is_processing(
    api, client, recorded, make_company, make_user
):
    """Asterisk writes the CDR at hangup: while the call is up (MixMonitor writing) only the
    live channels know it. Shapes of the real-PBX recording test (layout local)."""
    for unique_id, channel, interface in (
        ("1796121800.7", "Local/sales-rec@incoming-00000003;1", "Local/sales-rec@incoming"),
        ("1796121800.8", "Local/sales-rec@incoming-00000003;2", "Local/sales-rec@incoming"),
        ("1796121800.10", "Local/200@from-queue-00000004;2", "Local/200@from-queue"),
        ("1796121800.11", "PJSIP/200-00000002", "PJSIP/200"),
    ):
        LiveChannel.objects.create(
            unique_id=unique_id,
            linked_id="1796121800.7",
            channel=channel,
            interface=interface,
            started_at=NOW,
            confirmed_at=NOW,
        )
    data = result(api.get("/recording/1796121800.7/200"))
    assert data["processing"] is True
    assert "not available" in error(
        client.get(data["path"], headers={"accept-language": "en"}), 404
    )
    assert result(api.get("/recording/1796121800.11/200"))["processing"] is True
    assert result(api.get("/recording/1796121800.7/201")) == {
        "processing": True,
        "link": "https://pbx.example/cdr?uid=1796121800.7&c=onfarma",
    }
    make_user(make_company(), "700", "Otro")
    error(api.get("/recording/1796121800.7/700"), 404)


def test_recording_named_after_a_uniqueid_is_not_another_calls_with_a_longer_id(
    api, client, settings, tmp_path, centre
):
    """MixMonitor(${UNIQUEID}.wav) of the real-PBX test: call 1796122998.1's legs must not
    find 1796122998.12.wav, a later call's recording, by prefix."""
    settings.RECORDINGS_ROOT = tmp_path
    (tmp_path / "1796122998.12.wav").write_bytes(b"other call")
    (tmp_path / "1796122998.2.wav").write_bytes(b"this call")
    for uniqueid in ("1796122998.1", "1796122998.2"):
        cdr(
            centre["ana"].company,
            at=NOW - timedelta(minutes=1),
            src="600",
            dst="200",
            channel=f"Local/200@from-queue-1;{uniqueid[-1]}",
            dstchannel="PJSIP/200-1",
            uniqueid=uniqueid,
            linkedid="1796122998.1",
            billsec=3,
        )
    data = result(api.get("/recording/1796122998.1/200"))
    assert _streamed(client.get(data["path"])) == b"this call"


def _streamed(response) -> bytes:
    return b"".join(response.streaming_content)


def test_recording_of_an_unknown_or_foreign_call_is_a_404(api, recorded, make_company, make_user):
    assert "nope" in error(api.get("/recording/nope/200"), 404)
    other = make_company()
    make_user(other, "700", "Otro")
    error(api.get("/recording/500.1/700"), 404)
    error(api.get("/recording/500.1/999"), 404)
    error(api.get("/recording/500.1/2x"), 400)


def test_recording_links_expire_and_cannot_be_altered(api, client, recorded, settings):
    path = result(api.get("/recording/500.1/200"))["path"]
    token = path.rsplit("/", 1)[1]
    english = {"accept-language": "en"}
    altered = path.replace(token, token[:-2] + "xx")
    assert "not valid" in error(client.get(altered, headers=english), 403)
    forged = signing.dumps({"call": "500.1", "company": 1}, salt="other")
    error(client.get(f"/recording-file/{forged}"), 403)
    settings.RECORDING_URL_MAX_AGE = -1
    assert "expired" in error(client.get(path, headers=english), 403)


def test_recording_files_outside_the_root_are_never_served(api, client, recorded, tmp_path):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"secret")
    CdrRecord.objects.filter(uniqueid="500.1").update(recordingfile="../secret.wav")
    recorded.unlink()
    data = result(api.get("/recording/500.1/200"))
    assert data["processing"] is True
    response = client.get(data["path"], headers={"accept-language": "en"})
    assert "not available" in error(response, 404)


def test_department_lookup_is_case_insensitive(centre):
    assert Department.objects.filter(name__iexact="soporte").count() == 1
