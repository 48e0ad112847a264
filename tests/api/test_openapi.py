"""The OpenAPI schema (described beside the views of pbx/api) and the app agree, with schemathesis.

Every generated request to the documented SWAN endpoints must get the envelope JSON
(`{"error", "error-msg", "result"}`, `Content-Type: application/json`), never a 500, with a status
and a body the schema documents. The one exception is recording-file's audio (200/206/416), which
must carry a documented audio content type. The PBX endpoints talk to tests.fakes.RecordingGateway.
Plain tests check the schema document and the docs page.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signing
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from drf_spectacular.settings import spectacular_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import pbx.api.openapi
import swanproject.wsgi
from agenda.models import Agenda, AgendaPhone
from pbx.models import DeviceState, LiveChannel, QueueMemberState
from pbx.models.history import CdrRecord, QueueEntry
from terminals.models import Terminal

SCHEMA_HOOK = "pbx.api.openapi.preprocess_legacy_paths"
# (method, path) → operationId of every SWAN endpoint of urls.swan_urlpatterns.
SWAN_OPERATION_IDS = {
    ("GET", "/userStatus/{extension}"): "user_status_get",
    ("POST", "/userStatus/{extension}"): "user_status_set",
    ("GET", "/username/{extension}"): "username_get",
    ("GET", "/blf-users/{company}"): "blf_users_list",
    ("GET", "/company-numbers/{company}"): "company_numbers_list",
    ("POST", "/update-agenda"): "update_agenda",
    ("DELETE", "/delete-phones-agenda"): "delete_phones_agenda",
    ("GET", "/current-calls/{extension}"): "current_calls_list",
    ("GET", "/web-phone-username/{extension}"): "web_phone_username_get",
    ("POST", "/call/{destination}"): "call_place",
    ("POST", "/user-unregister/{extension}"): "user_unregister",
    ("POST", "/terminal-register/{mac}"): "terminal_register",
    ("DELETE", "/terminal-register/{mac}"): "terminal_unregister",
    ("GET", "/queues-status"): "queues_status_get",
    ("GET", "/user-resume/{extension}"): "user_resume_get",
    ("GET", "/last-calls/{extension}"): "last_calls_list",
    ("GET", "/recording/{callID}/{extension}"): "recording_get",
    ("GET", "/recording-file/{token}"): "recording_file_get",
    ("GET", "/api/reports/queues"): "report_queues",
    ("GET", "/api/reports/agents"): "report_agents",
}
SWAN_OPERATIONS = set(SWAN_OPERATION_IDS)
RECORDING_FILE = "recording_file_get"  # the signed link is the credential: no API key
KEYED_OPERATIONS = {
    op for op, operation_id in SWAN_OPERATION_IDS.items() if operation_id != RECORDING_FILE
}
PBX_WRITES = [
    "user_status_set",
    "call_place",
    "user_unregister",
    "terminal_register",
    "terminal_unregister",
]
AUDIO_TYPES = {
    "audio/wav",
    "audio/mpeg",
    "audio/ogg",
    "audio/x-gsm",
    "audio/mp4",
    "application/octet-stream",
}
ENVELOPE_KEYS = {"error", "error-msg", "result"}
AUDIO = bytes(range(256)) * 4


def _hook_configured() -> bool:
    return pbx.api.openapi.preprocess_legacy_paths in spectacular_settings.PREPROCESSING_HOOKS


@pytest.fixture(scope="module", autouse=True)
def legacy_paths_hook():
    """Until settings name the hook (see docs/api.md), apply it here; a no-op once they do."""
    if _hook_configured():
        yield
        return
    spectacular_settings.apply_patches({"PREPROCESSING_HOOKS": [SCHEMA_HOOK]})
    try:
        yield
    finally:
        spectacular_settings.clear_patches()


@pytest.fixture(scope="module", autouse=True)
def keep_db_connection():
    """schemathesis' WSGI calls fire request_finished → close_old_connections, which would close
    the connection inside pytest-django's test transaction (tooling.md, gotcha 8)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _load_schema():
    """The schema as /api/schema/ serves it, loaded once at collection.

    (`schemathesis.pytest.from_fixture` would load it lazily, but schemathesis 4.32.5 reads
    `request.node._nodeid`, which pytest 9 no longer has.)
    """
    patched = not _hook_configured()
    if patched:
        spectacular_settings.apply_patches({"PREPROCESSING_HOOKS": [SCHEMA_HOOK]})
    try:
        loaded = schemathesis.openapi.from_wsgi("/api/schema/", swanproject.wsgi.application)
    finally:
        if patched:
            spectacular_settings.clear_patches()
    # Only the SWAN operations; anything else in the schema (none today) is left alone.
    return loaded.include(operation_id=sorted(SWAN_OPERATION_IDS.values()))


schema = _load_schema()
keyed_schema = schema.exclude(operation_id=RECORDING_FILE)
# (include() on an included schema widens it: includes are or-ed, so narrow with exclude())
pbx_writes_schema = schema.exclude(
    operation_id=sorted(set(SWAN_OPERATION_IDS.values()) - set(PBX_WRITES))
)


@pytest.fixture
def demo_rows(settings, tmp_path, gateway, make_company, make_user, make_number, make_queue):
    """Rows that the schema's examples hit: company `onfarma`; extensions 200 (desk phone MAC
    00:15:65:AA:BB:CC, a webphone registered now, a live call, a recorded call 500.1) and 201
    (a free webphone); queue `q-soporte` with figures for today; agenda `clientes`."""
    now = timezone.now()
    settings.RECORDINGS_ROOT = tmp_path / "rec"
    settings.RECORDING_ADMIN_LINK_TEMPLATE = "https://pbx.example/cdr?uid={uniqueid}"
    company = make_company(slug="onfarma", name="ONFARMA")
    ana = make_user(
        company, "200", "Ana García", department="Soporte", mobile="+34600111222", terminals=[]
    )
    bruno = make_user(company, "201", "Bruno Díaz", department="Ventas", terminals=[])
    Terminal.objects.create(mac="001565aabbcc", user=ana, interface="PJSIP/200", type="desk")
    Terminal.objects.create(mac="0a0b0c0d0e0f", user=ana, interface="PJSIP/200w", type="webphone")
    Terminal.objects.create(mac="001565aabbcd", user=bruno, interface="PJSIP/201", type="desk")
    Terminal.objects.create(mac="0a0b0c0d0e10", user=bruno, interface="PJSIP/201w", type="webphone")
    Terminal.objects.create(mac="00156500000f", user=None, interface="PJSIP/spare", type="desk")
    for interface in ("PJSIP/200", "PJSIP/200w", "PJSIP/201"):
        DeviceState.objects.create(
            interface=interface, state="NOT_INUSE", changed_at=now, confirmed_at=now
        )
    queue = make_queue(company, "q-soporte", members=[ana, bruno])
    QueueMemberState.objects.create(
        queue_name=queue.name,
        queue=queue,
        interface="PJSIP/200",
        user=ana,
        changed_at=now,
        confirmed_at=now,
    )
    for n, outcome in enumerate(["answered", "answered", "abandoned"]):
        QueueEntry.objects.create(
            callid=f"400.{n}",
            queue_name=queue.name,
            queue=queue,
            company=company,
            entered_at=now - timedelta(minutes=5),
            outcome=outcome,
            wait_seconds=10 + n,
            talk_seconds=60 if outcome == "answered" else 0,
            agent_user=ana,
        )
    LiveChannel.objects.create(
        unique_id="600.1",
        linked_id="600.1",
        channel="PJSIP/200-0001",
        interface="PJSIP/200",
        exten="937060370",
        started_at=now - timedelta(seconds=30),
        confirmed_at=now,
    )
    day = timezone.localtime(now - timedelta(minutes=5)).strftime("%Y/%m/%d")
    folder = tmp_path / "rec" / day
    folder.mkdir(parents=True)
    (folder / "in-600-200-500.1.wav").write_bytes(AUDIO)
    CdrRecord.objects.create(
        calldate=now - timedelta(minutes=5),
        src="600123456",
        dst="200",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/200-2",
        channel_device="PJSIP/trunk",
        dstchannel_device="PJSIP/200",
        uniqueid="500.1",
        linkedid="500.1",
        billsec=30,
        disposition="ANSWERED",
        company=company,
        recordingfile="in-600-200-500.1.wav",
        digest="00000000-0000-0000-0000-000000000501",
    )
    make_number(company, "primari", "937060370", alias="ONFARMA", in_use=True)
    make_number(company, "secundari", "937060371")
    agenda = Agenda.objects.create(name="clientes", company=company)
    AgendaPhone.objects.create(agenda=agenda, name="Farmacia Sol", number="+34931234567")
    return company


@pytest.fixture
def auth_headers(make_api_key, demo_rows):
    cache.clear()  # throttle counters are per key pk, which a rolled-back test may hand out again
    return {"Authorization": f"Bearer {make_api_key()}"}


@pytest.fixture
def recording_token(demo_rows, auth_headers):
    """A valid signed token for call 500.1, as recording/{callID}/{extension} hands it out."""
    from pbx.history import recordings
    from pbx.models import ApiKey, hash_api_key

    key = ApiKey.objects.get(key_hash=hash_api_key(auth_headers["Authorization"].split()[1]))
    return signing.dumps(
        {"call": "500.1", "company": demo_rows.pk, "key": key.pk, "kp": key.prefix},
        salt=recordings.RECORDING_SALT,
    )


def _header(response, name: str) -> str:
    values = response.headers.get(name.lower()) or response.headers.get(name) or []
    return values[0] if isinstance(values, list) and values else str(values or "")


def _operation_id(case) -> str:
    return SWAN_OPERATION_IDS[case.operation.method.upper(), case.operation.path]


def envelope_body(ctx, response, case):
    """Every answer is the SWAN envelope: JSON, with exactly error/error-msg/result.

    Except recording-file's audio (200, 206, 416), which content_type_conformance checks, and
    web-phone-username's 409 for a registered webphone, whose `result` is not null.
    """
    content_type = _header(response, "Content-Type")
    media_type = content_type.split(";")[0].strip()
    if _operation_id(case) == RECORDING_FILE:
        if response.status_code in (200, 206, 416) and media_type in AUDIO_TYPES:
            return True
        if case.method.upper() not in ("GET", "HEAD"):
            # Known defect, tracked by test_recording_file_other_methods_answer_405_envelope
            # (xfail): Django's bare 405 page. Fuzzing goes on for everything else.
            return True
    assert content_type.split(";")[0].strip() == "application/json", (
        f"{case.method} {case.formatted_path} answered {response.status_code} with "
        f"Content-Type {content_type!r}: {response.content[:200]!r}"
    )
    body = json.loads(response.content)
    assert isinstance(body, dict), f"body is not an object: {body!r}"
    assert set(body) == ENVELOPE_KEYS, f"envelope keys {sorted(body)}: {body!r}"
    if not django_settings.SWAN_ALWAYS_HTTP_200:  # else errors go out as 200 too
        is_error = response.status_code >= 400
        assert body["error"] is is_error, f"status {response.status_code}, error={body['error']}"
    if body["error"]:
        assert isinstance(body["error-msg"], str), body
        assert body["error-msg"].strip(), body
        if body["result"] is not None:  # contract.md: the one error that carries a result
            assert _operation_id(case) == "web_phone_username_get", body
            assert body["result"]["is_registered"] is True, body
            assert response.status_code in (200, 409), response.status_code
    else:
        assert body["error-msg"] is None, body
    return True


def pbx_down_is_a_503(ctx, response, case):
    """With the PBX unreachable, the documented 503 is the answer; any other 5xx is a defect."""
    if response.status_code == 503:
        return True
    return not_a_server_error(ctx, response, case)


# The fake PBX answers: here a 503 is a server error like any other.
CHECKS = [
    not_a_server_error,
    envelope_body,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
PBX_DOWN_CHECKS = [pbx_down_is_a_503, *CHECKS[1:]]


_HYPOTHESIS = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=50, **_HYPOTHESIS)
def test_swan_endpoints_conform_to_schema(case, auth_headers, recording_token):
    if _operation_id(case) == RECORDING_FILE and len(case.path_parameters["token"]) % 2:
        # Random tokens only ever meet the 403; half the cases fuzz Range on the real file.
        case.path_parameters["token"] = recording_token
    case.call_and_validate(headers=auth_headers, checks=CHECKS)


@pytest.mark.django_db
@pbx_writes_schema.parametrize()
@settings(max_examples=10, **_HYPOTHESIS)
def test_pbx_writes_with_the_pbx_unreachable_conform_to_schema(case, auth_headers, gateway):
    """The PBX is down: a documented answer (503 once the PBX is asked), never a 500."""
    gateway.unreachable = True
    case.call_and_validate(headers=auth_headers, checks=PBX_DOWN_CHECKS)


@pytest.mark.django_db
@keyed_schema.parametrize()
@settings(max_examples=5, **_HYPOTHESIS)
def test_swan_endpoints_without_key_answer_401_envelope(case, demo_rows):
    """No key at all: every operation answers the documented 401 envelope."""
    cache.clear()  # wrong keys of earlier cases, counted per address, must not lock this one out
    response = case.call_and_validate(
        checks=[not_a_server_error, envelope_body, response_schema_conformance]
    )
    expected = (200,) if django_settings.SWAN_ALWAYS_HTTP_200 else (401, 404, 405, 406)
    assert response.status_code in expected, response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("token", "range_header", "status", "body"),
    [
        ("valid", None, 200, AUDIO),
        ("valid", "bytes=10-19", 206, AUDIO[10:20]),
        ("valid", "bytes=-4", 206, AUDIO[-4:]),
        ("valid", "bytes=5000-", 416, b""),
        ("valid", "bytes=0-1,5-6", 200, AUDIO),  # several ranges: the whole file
        ("altered", None, 403, None),
    ],
)
def test_recording_file_answers_as_documented(recording_token, token, range_header, status, body):
    """recording-file's audio answers (not fuzzable from a random token): content types,
    statuses and the 403 envelope as the schema says."""
    operation = schema["/recording-file/{token}"]["GET"]
    value = recording_token if token == "valid" else recording_token[:-2] + "xx"
    headers = {"Range": range_header} if range_header else {}
    case = operation.Case(path_parameters={"token": value}, headers=headers)
    response = case.call_and_validate(checks=CHECKS)
    if django_settings.SWAN_ALWAYS_HTTP_200 and status >= 400 and body is None:
        status = 200  # enveloped errors go out as 200 (the audio's 416 keeps its status)
    assert response.status_code == status
    if body is not None:
        assert response.content == body
        assert _header(response, "Content-Type") == "audio/wav"
        assert _header(response, "Accept-Ranges") == "bytes"


def _assert_envelope(response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.content[:80])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) == ENVELOPE_KEYS
    assert body["error"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_recording_file_other_methods_answer_405_envelope(recording_token, method):
    client = Client(enforce_csrf_checks=True)  # as schemathesis' WSGI calls and real clients
    _assert_envelope(client.generic(method, f"/recording-file/{recording_token}"), 405)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_unknown_path_answers_404_envelope_for_unsafe_methods(method):
    client = Client(enforce_csrf_checks=True)
    _assert_envelope(client.generic(method, "/no-such-endpoint"), 404)


_DEEP_JSON = "[" * 50_000 + "]" * 50_000


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["query", "body"])
def test_deeply_nested_json_answers_400_not_500(auth_headers, client, where):
    """json.loads raises RecursionError, not a ValueError, past ~1000 levels."""
    headers = {"HTTP_AUTHORIZATION": auth_headers["Authorization"]}
    if where == "query":
        response = client.get("/queues-status", {"queues": _DEEP_JSON}, **headers)
    else:
        response = client.post(
            "/update-agenda", _DEEP_JSON, content_type="application/json", **headers
        )
    _assert_envelope(response, 400)


@pytest.mark.django_db
def test_the_examples_hit_real_rows(auth_headers, client):
    """The demo rows make the schema's examples reach real objects, not only 404s."""
    ok = {
        "/userStatus/200": 200,
        "/current-calls/200": 200,
        "/web-phone-username/201": 200,
        "/web-phone-username/200": 200 if django_settings.SWAN_ALWAYS_HTTP_200 else 409,
        "/queues-status?queues[soporte][]=q-soporte": 200,
        "/user-resume/200?company=onfarma&queues[soporte][]=q-soporte": 200,
        "/last-calls/200": 200,
        "/recording/500.1/200": 200,
    }
    headers = {"HTTP_AUTHORIZATION": auth_headers["Authorization"]}
    for url, status in ok.items():
        response = client.get(url, **headers)
        assert response.status_code == status, (url, response.content)
    webphone = json.loads(client.get("/web-phone-username/200", **headers).content)
    assert webphone["result"] == {"username": "0a0b0c0d0e0f", "is_registered": True}
    current = json.loads(client.get("/current-calls/200", **headers).content)["result"]
    assert [row["uniqueid"] for row in current] == ["600.1"]
    recording = json.loads(client.get("/recording/500.1/200", **headers).content)["result"]
    assert recording["processing"] is False
    assert recording["path"].startswith("http://testserver/recording-file/")
    response = client.post("/terminal-register/00:15:65:AA:BB:CC", **headers)
    assert json.loads(response.content)["result"] == {"success": True}
    spare = json.loads(client.post("/terminal-register/00156500000f", **headers).content)
    assert spare["error"] is True  # a terminal without a user: 409


# ---------------------------------------------------------------------------------------------
# Plain tests


@pytest.fixture
def schema_document(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_is_valid_openapi_3_with_every_swan_path(schema_document):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema_document)  # raises on an invalid OpenAPI 3.0 document
    assert schema_document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path)
        for path, item in schema_document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented >= SWAN_OPERATIONS
    assert not any(path.endswith("/") for _method, path in SWAN_OPERATIONS & documented)
    paths = schema_document["paths"]
    ids = {op: paths[op[1]][op[0].lower()]["operationId"] for op in SWAN_OPERATIONS}
    assert ids == SWAN_OPERATION_IDS


def test_schema_covers_every_swan_url():
    """A path added to urls.swan_urlpatterns without a schema fails here."""
    from swanproject.urls import swan_urlpatterns

    routed = {pattern.name for pattern in swan_urlpatterns}
    documented_names = {
        "user-status",
        "username",
        "blf-users",
        "company-numbers",
        "update-agenda",
        "delete-phones-agenda",
        "current-calls",
        "web-phone-username",
        "call",
        "user-unregister",
        "terminal-register",
        "queues-status",
        "user-resume",
        "last-calls",
        "recording",
        "recording-file",
        "report-queues",
        "report-agents",
    }
    assert routed == documented_names


def test_schema_documents_auth_envelope_and_parameters(schema_document):
    components = schema_document["components"]
    assert components["securitySchemes"]["ApiKeyBearer"] == {
        **components["securitySchemes"]["ApiKeyBearer"],
        "type": "http",
        "scheme": "bearer",
    }
    assert components["securitySchemes"]["ApiKeyHeader"]["name"] == "X-Api-Key"
    assert set(components["schemas"]["ErrorEnvelope"]["required"]) == ENVELOPE_KEYS
    paths = schema_document["paths"]
    for method, path in KEYED_OPERATIONS:
        operation = paths[path][method.lower()]
        # Either scheme alone authenticates: two requirement objects, not one with both.
        assert operation["security"] == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
        for code in ("401", "403", "405", "429", "500", "503"):
            assert operation["responses"][code]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorEnvelope"
            }, (path, code)
    username = {p["name"]: p for p in paths["/username/{extension}"]["get"]["parameters"]}
    assert username["extension"]["in"] == "path"
    assert username["extension"]["schema"]["pattern"] == r"^\d{1,20}$"
    assert username["company"]["in"] == "query"
    blf = {p["name"]: p for p in paths["/blf-users/{company}"]["get"]["parameters"]}
    assert blf["departments"]["schema"]["type"] == "array"
    assert blf["withMobile"]["schema"]["type"] == "boolean"
    body = paths["/update-agenda"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/UpdateAgendaRequest"}
    assert "DeleteAgendaPhonesRequest" in components["schemas"]


_DEFAULT_STATUSES_ONLY = pytest.mark.skipif(
    django_settings.SWAN_ALWAYS_HTTP_200,
    reason="reads the document of the default mode; the fuzzing above covers SWAN_ALWAYS_HTTP_200",
)


def _ref(response: dict, media_type: str = "application/json") -> str:
    return response["content"][media_type]["schema"]["$ref"].rsplit("/", 1)[1]


@_DEFAULT_STATUSES_ONLY
def test_schema_documents_the_pbx_and_history_endpoints(schema_document):
    paths = schema_document["paths"]
    components = schema_document["components"]["schemas"]
    for operation_id in PBX_WRITES:
        method, path = next(op for op, oid in SWAN_OPERATION_IDS.items() if oid == operation_id)
        responses = paths[path][method.lower()]["responses"]
        assert _ref(responses["503"]) == "ErrorEnvelope", operation_id
        assert _ref(responses["409"]) == "ErrorEnvelope", operation_id
    status_post = paths["/userStatus/{extension}"]["post"]
    assert _ref(status_post["responses"]["200"]) == "UserStatusEnvelope"
    request = components[_ref(status_post["requestBody"])]
    assert request["required"] == ["status"]
    assert request["properties"]["status"]["allOf"][0]["enum"] == ["available", "busy", "pause"]
    call = components[_ref(paths["/call/{destination}"]["post"]["requestBody"])]
    assert sorted(call["required"]) == ["company", "private_source"]
    # web-phone-username's 409 may carry {username, is_registered: true}
    conflict = paths["/web-phone-username/{extension}"]["get"]["responses"]["409"]
    variants = {ref["$ref"].rsplit("/", 1)[1] for ref in components[_ref(conflict)]["oneOf"]}
    assert variants == {"WebPhoneRegisteredEnvelope", "ErrorEnvelope"}
    queues = {p["name"]: p for p in paths["/queues-status"]["get"]["parameters"]}["queues"]
    assert (queues["required"], queues["style"]) == (True, "deepObject")
    resume = components["UserResumeResult"]
    assert set(resume["properties"]) == {"waiting-calls", "queue", "user"}
    assert resume["required"] == ["waiting-calls"]
    mac = {p["name"]: p for p in paths["/terminal-register/{mac}"]["delete"]["parameters"]}["mac"]
    for spelling in ("00:15:65:AA:BB:CC", "0015.65aa.bbcc", "001565aabbcc", "00-15-65-aa-bb-cc"):
        assert re.fullmatch(mac["schema"]["pattern"], spelling), spelling
    assert not re.fullmatch(mac["schema"]["pattern"], "001565aabbc")


@_DEFAULT_STATUSES_ONLY
def test_schema_documents_recording_file_as_audio_without_key(schema_document):
    operation = schema_document["paths"]["/recording-file/{token}"]["get"]
    assert "security" not in operation  # the signed token is the credential
    responses = operation["responses"]
    for code in ("200", "206", "416"):
        assert set(responses[code]["content"]) == AUDIO_TYPES, code
        assert responses[code]["content"]["audio/wav"]["schema"]["format"] == "binary"
    assert set(responses["206"]["headers"]) == {"Content-Range", "Accept-Ranges"}
    for code in ("403", "404", "500"):
        assert _ref(responses[code]) == "ErrorEnvelope", code
    assert {p["name"]: p["in"] for p in operation["parameters"]} == {
        "token": "path",
        "Range": "header",
    }


def test_schema_hook_is_configured_in_settings():
    """The one-line wiring (docs/api.md): without it /api/schema/ shows `/username/{x}/` and
    leaves out recording-file, a plain Django view."""
    hooks = django_settings.SPECTACULAR_SETTINGS.get("PREPROCESSING_HOOKS", [])
    assert SCHEMA_HOOK in hooks, (
        f'add {SCHEMA_HOOK!r} to SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"]'
    )


_SCRIPT_OR_LINK = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*?(?:src|href)=[\"']([^\"']+)", re.I
)


def test_docs_page_renders_without_external_resources(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    resources = _SCRIPT_OR_LINK.findall(html)
    assert resources, "the docs page loads no script at all"
    external = [url for url in resources if re.match(r"^(https?:)?//", url)]
    assert not external, f"the docs page loads resources from outside: {external}"
    assert "fonts.googleapis.com" not in html


# ---------------------------------------------------------------------------------------------
# Hostile input (issue 10): hypothesis beyond what the schema describes. Every answer is a 4xx
# envelope, never a 500, and a refused write sends nothing to the PBX.

_POST_WRITES = [
    ("/userStatus/200", {"status": "busy"}),
    ("/call/600", {"private_source": "200", "company": "onfarma"}),
    ("/user-unregister/200", {}),
    ("/update-agenda", {"name": "clientes", "phones": [{"name": "x", "number": "600"}]}),
]
_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


def _fuzz_headers(auth_headers) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": auth_headers["Authorization"], "HTTP_ACCEPT_LANGUAGE": "en"}


def _refused(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.content[:200])
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == ENVELOPE_KEYS
    assert body["error"] is True
    return body


@pytest.mark.django_db
@given(
    depth=st.integers(min_value=65, max_value=3000),
    name=st.sampled_from(["queues", "departments", "company", "x"]),
    brackets=st.sampled_from(["[x]", "[]", "[0]"]),
)
@settings(max_examples=25, **_HYPOTHESIS)
def test_nested_brackets_past_the_limit_are_a_400_naming_them(
    auth_headers, client, depth, name, brackets
):
    key = name + brackets * depth
    response = client.get(f"/queues-status?{key}=1", **_fuzz_headers(auth_headers))
    assert f"'{name}'" in _refused(response, 400)["error-msg"]


@pytest.mark.django_db
@given(
    digits=st.integers(min_value=4301, max_value=20_000),
    where=st.sampled_from(["departments", "queues", "phones"]),
)
@settings(max_examples=20, **_HYPOTHESIS)
def test_huge_integers_in_json_parameters_are_a_400(auth_headers, client, gateway, digits, where):
    number = "7" * digits
    headers = _fuzz_headers(auth_headers)
    if where == "departments":
        response = client.get("/blf-users/onfarma", {"departments": f"[{number}]"}, **headers)
    elif where == "queues":
        response = client.get("/queues-status", {"queues": f'{{"g": [{number}]}}'}, **headers)
    else:
        phones = f'[{{"name": "x", "number": {number}}}]'
        response = client.post("/update-agenda", {"name": "clientes", "phones": phones}, **headers)
    _refused(response, 400)


@pytest.mark.django_db
@given(
    digits=st.integers(min_value=19, max_value=20_000),
    shape=st.sampled_from(["{n}-", "0-{n}", "-{n}", "{n}-{n}", "1-{n}"]),
)
@settings(max_examples=20, **_HYPOTHESIS)
def test_range_headers_with_huge_numbers_never_answer_500(recording_token, digits, shape):
    header = "bytes=" + shape.format(n="9" * digits)
    response = Client().get(f"/recording-file/{recording_token}", HTTP_RANGE=header)
    assert response.status_code in (200, 206, 416), response.status_code


@pytest.mark.django_db
@given(
    write=st.sampled_from(_POST_WRITES),
    field=st.sampled_from(["reason", "company", "name", "extra", "status"]),
    text=st.lists(st.one_of(_SURROGATES, st.characters()), min_size=1, max_size=8).map("".join),
)
@settings(max_examples=40, **_HYPOTHESIS)
def test_lone_surrogates_in_a_json_body_send_nothing_to_the_pbx(
    auth_headers, client, gateway, write, field, text
):
    path, params = write
    body = json.dumps({**params, field: text})  # ensure_ascii: a surrogate goes as \udxxx
    gateway.reset()
    response = client.post(
        path, body, content_type="application/json", **_fuzz_headers(auth_headers)
    )
    try:  # what the server reads: JSON joins a high and a low surrogate into one character
        json.loads(body)[field].encode("utf-8")
    except UnicodeEncodeError:
        assert "UTF-8" in _refused(response, 400)["error-msg"]
        assert gateway.calls == []
    else:
        assert response.status_code != 500


@pytest.mark.django_db
@given(
    size=st.integers(min_value=4_000, max_value=12_000),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
    path=st.sampled_from(["/userStatus/200", "/update-agenda", "/call/600"]),
)
@settings(max_examples=25, **_HYPOTHESIS)
def test_bodies_over_the_limit_are_a_413_naming_it(
    auth_headers, client, gateway, django_limits, size, content_type, path
):
    if content_type == "application/json":
        body = json.dumps({"status": "busy", "reason": "r" * size})
    else:
        body = "status=busy&reason=" + "r" * size
    gateway.reset()
    response = client.generic(
        "POST", path, body, content_type=content_type, **_fuzz_headers(auth_headers)
    )
    if len(body) > django_limits.DATA_UPLOAD_MAX_MEMORY_SIZE:
        assert (
            str(django_limits.DATA_UPLOAD_MAX_MEMORY_SIZE) in _refused(response, 413)["error-msg"]
        )
        assert gateway.calls == []
    else:
        assert response.status_code != 413


@pytest.fixture
def django_limits(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 8_000  # small, so that hypothesis stays fast
    return settings
