"""Security sweep (issue "Production readiness", item 6).

- Authentication: every SWAN endpoint, found by walking `swan_urlpatterns` (a new endpoint is
  covered without touching this file), and every method it serves, answers 401 with the envelope
  to no key, a wrong key and an inactive key.
- Tenancy: a key limited to company A gets 404, as if it did not exist, for every object of
  company B (extensions, companies, MACs, agendas, call ids); B's queues count as empty. Every
  endpoint and method must have a case here (a new one fails `test_every_endpoint_...`).
- Recordings: never served from outside RECORDINGS_ROOT (`../`, absolute paths, symlinks out),
  nor with an expired, altered or forged signed URL.
- AMI header injection: every parameter that reaches the PBX refuses CR, LF, NUL and the other
  control characters with a 400 and sends nothing; the gateway refuses them before the wire.
- Throttling: a key over its rate gets 429 with Retry-After; another key is unaffected.
- Availability: Redis reads outlast channels-redis's blocking pop, so an idle websocket is never
  closed with 1011 (issue 10, finding 3; the 30 s stream over real Redis is in
  tests/process/test_idle_stream.py). Do-not-disturb across tenants: tests/live/test_security_dnd.py.

Issue 10 (and tests/directory/test_security_keys.py for websockets and logins):
- "All companies" is a property of the key (`all_companies`), never the absence of companies:
  a limited key whose companies were all deleted sees nothing.
- Recording links are bound to the key that asked for them: deactivating, deleting or rotating
  it, or taking the call's company from it, kills its links.
- Failed authentication: wrong keys from one address are answered 429 (Retry-After) after
  API_KEY_FAILURE_LIMIT of them; a valid key from that address still works (NAT); fails open.
- Agendas: a name taken by another company (or by none) answers exactly as any taken name does
  (409, naming nobody); delete-phones-agenda answers it as an unknown name (404).
"""

from __future__ import annotations

import csv
import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

import pytest
from django.apps import apps as django_apps
from django.core import signing
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from agenda.models import Agenda, AgendaPhone
from pbx.api.authentication import ApiKeyRateThrottle
from pbx.api.params import parse_query_string
from pbx.directory import lockout
from pbx.directory.agent_matching import device_of
from pbx.errors import InvalidValue
from pbx.gateway import OriginateRequest, check_ami_value
from pbx.gateway.ami import AmiGateway
from pbx.gateway.frames import encode_action
from pbx.history import recordings
from pbx.models import (
    ApiKey,
    DeviceState,
    LiveChannel,
    PbxUser,
    QueueCallerState,
    QueueMemberState,
    UserPresence,
    hash_api_key,
)
from pbx.models.history import CdrRecord, QueueEntry
from swanproject.urls import swan_urlpatterns
from terminals.models import Terminal
from tests.fakes import RecordingGateway

pytestmark = pytest.mark.django_db

A_MAC = "0015650a0200"  # alpha's 200, desk phone
B_MAC = "0015650b0300"  # beta's 300, desk phone
B_WEBPHONE = "0a0b0c0b0300"  # beta's 300, webphone
AUDIO = bytes(range(256)) * 4
SECRET = b"TOP-SECRET-OUTSIDE-THE-RECORDINGS-ROOT"

# The signed recording URL is the credential: recording-file takes no API key.
NO_API_KEY = {"recording-file"}
SAMPLE_KWARGS = {
    "extension": "200",
    "company": "alpha",
    "mac": A_MAC,
    "destination": "600",
    "callID": "900.1",
    "token": "not-a-token",
}
# A body that would succeed with a good key: without one, nothing of it may happen.
GOOD_BODIES: dict[str, dict[str, Any]] = {
    "user-status": {"status": "busy", "reason": "Reunión"},
    "call": {"private_source": "200", "company": "alpha"},
    "update-agenda": {"name": "agenda-a", "phones": [{"name": "Nuevo", "number": "600111222"}]},
    "delete-phones-agenda": {"name": "agenda-a"},
}


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def gateway(gateway) -> type[RecordingGateway]:
    cache.clear()  # throttle counters are per key pk, which a rolled-back test may hand out again
    return gateway
    cache.clear()


def envelope(response, status: int) -> dict:
    """The error envelope with this status: JSON, exactly error/error-msg/result, result null."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    if response.request["REQUEST_METHOD"] == "HEAD":
        return {}
    body = json.loads(response.content)
    assert set(body) == {"error", "error-msg", "result"}, body
    assert body["error"] is True, body
    assert body["error-msg"], body
    assert body["result"] is None, body
    return body


def ok(response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = json.loads(response.content)
    assert body["error"] is False, body
    return body["result"]


def send(client: APIClient, method: str, path: str, params: dict | None = None, **extra):
    """GET/HEAD/OPTIONS with a query string; POST/DELETE/PUT/PATCH with a JSON body."""
    params = params or {}
    if method in ("GET", "HEAD"):
        return getattr(client, method.lower())(path, params, **extra)
    return client.generic(
        method, path, json.dumps(params), content_type="application/json", **extra
    )


def served_methods(pattern) -> list[str]:
    """The HTTP methods a view answers (HEAD with GET, as Django's View does)."""
    view_class = pattern.callback.view_class
    methods = [m for m in view_class.http_method_names if m != "head" and hasattr(view_class, m)]
    if "get" in methods:
        methods.append("head")
    return sorted(m.upper() for m in methods)


def path_for(pattern, **overrides: str) -> str:
    kwargs = {name: SAMPLE_KWARGS.get(name, "1") for name in pattern.pattern.regex.groupindex}
    kwargs.update(overrides)
    return reverse(pattern.name, kwargs=kwargs)


ENDPOINT_METHODS = [(p, m) for p in swan_urlpatterns for m in served_methods(p)]
KEYED_ENDPOINT_METHODS = [(p, m) for p, m in ENDPOINT_METHODS if p.name not in NO_API_KEY]


def _endpoint_id(value) -> str:
    return value.name if hasattr(value, "pattern") else str(value)


def snapshot() -> tuple:
    """Everything a SWAN request may write: it must not move when a request is refused."""
    return (
        sorted(Agenda.objects.values_list("name", "company_id")),
        sorted(AgendaPhone.objects.values_list("agenda__name", "name", "number")),
        sorted(Terminal.objects.values_list("mac", "registered", "user_id")),
        sorted(
            UserPresence.objects.values_list(
                "user_id", "paused", "pause_reason", "dnd", "dnd_reason"
            )
        ),
        PbxUser.objects.count(),
    )


_digests = iter(range(1, 10**9))


def cdr(company, *, call_id: str, src: str, dst: str, channel: str, dstchannel: str, **fields):
    now = timezone.now()
    return CdrRecord.objects.create(
        calldate=fields.pop("calldate", now - timedelta(minutes=5)),
        src=src,
        dst=dst,
        channel=channel,
        dstchannel=dstchannel,
        channel_device=device_of(channel),
        dstchannel_device=device_of(dstchannel),
        uniqueid=call_id,
        linkedid=call_id,
        billsec=30,
        disposition="ANSWERED",
        company=company,
        digest=f"00000000-0000-0000-5ec0-{next(_digests):012d}",
        **fields,
    )


# ----------------------------------------------------------------------------- the two companies


@pytest.fixture
def tenants(settings, tmp_path, make_company, make_user, make_queue, make_number):
    """Company A (alpha) and B (beta), both with an extension 200; 300 exists only in B."""
    root = tmp_path / "rec"
    root.mkdir()
    settings.RECORDINGS_ROOT = root
    settings.RECORDING_ADMIN_LINK_TEMPLATE = "https://pbx.example/cdr?uid={uniqueid}"
    now = timezone.now()
    alpha = make_company(slug="alpha", name="Alpha SL")
    beta = make_company(slug="beta", name="Beta SL", dnd_prefix="beta-")  # 200 is in both

    a200 = make_user(alpha, "200", "Ana Alpha", terminals=[])
    Terminal.objects.create(mac=A_MAC, user=a200, interface="PJSIP/200", type="desk")
    b200 = make_user(beta, "200", "Bruno Beta", terminals=["PJSIP/b200"])
    b300 = make_user(
        beta, "300", "Berta Beta", mobile="+34600000300", department="Soporte", terminals=[]
    )
    Terminal.objects.create(mac=B_MAC, user=b300, interface="PJSIP/b300", type="desk")
    Terminal.objects.create(
        mac=B_WEBPHONE, user=b300, interface="PJSIP/b300w", type="webphone", registered=True
    )
    for interface in ("PJSIP/200", "PJSIP/b200", "PJSIP/b300", "PJSIP/b300w"):
        DeviceState.objects.create(
            interface=interface, state="NOT_INUSE", changed_at=now, confirmed_at=now
        )

    make_queue(alpha, "q-alpha", members=[a200])
    q_beta = make_queue(beta, "q-beta", members=[b300])
    for n, outcome in enumerate(["answered", "answered", "answered", "abandoned"]):
        QueueEntry.objects.create(
            callid=f"800.{n}",
            queue_name="q-beta",
            queue=q_beta,
            company=beta,
            entered_at=now - timedelta(seconds=30 + n),
            outcome=outcome,
            wait_seconds=12,
            talk_seconds=60 if outcome == "answered" else 0,
            agent_user=b300 if outcome == "answered" else None,
        )
    QueueCallerState.objects.create(
        queue_name="q-beta", queue=q_beta, unique_id="810.1", entered_at=now, confirmed_at=now
    )
    QueueMemberState.objects.create(
        queue_name="q-beta",
        queue=q_beta,
        interface="PJSIP/b300",
        user=b300,
        changed_at=now,
        confirmed_at=now,
    )

    make_number(beta, "principal", "931000000", alias="BETA", in_use=True)
    agenda_a = Agenda.objects.create(name="agenda-a", company=alpha)
    AgendaPhone.objects.create(agenda=agenda_a, name="Cliente A", number="931000100")
    agenda_b = Agenda.objects.create(name="agenda-b", company=beta)
    AgendaPhone.objects.create(agenda=agenda_b, name="Cliente B", number="931000001")
    agenda_free = Agenda.objects.create(name="agenda-free", company=None)
    AgendaPhone.objects.create(agenda=agenda_free, name="Sin empresa", number="931000002")

    # Beta's recorded call 900.1 (300 answered it) and a live call on 300's phone.
    day = timezone.localtime(now - timedelta(minutes=5)).strftime("%Y/%m/%d")
    (root / day).mkdir(parents=True)
    (root / day / "in-600-300-900.1.wav").write_bytes(AUDIO)
    cdr(
        beta,
        call_id="900.1",
        src="600123456",
        dst="300",
        channel="PJSIP/trunk-0001",
        dstchannel="PJSIP/b300-0002",
        recordingfile="in-600-300-900.1.wav",
    )
    LiveChannel.objects.create(
        unique_id="901.1",
        linked_id="901.1",
        channel="PJSIP/b300-0003",
        interface="PJSIP/b300",
        connected_line_num="600999888",
        started_at=now - timedelta(seconds=20),
        confirmed_at=now,
    )
    return {"alpha": alpha, "beta": beta, "a200": a200, "b200": b200, "b300": b300, "root": root}


@pytest.fixture
def alpha_key(tenants, api_for) -> APIClient:
    return api_for(tenants["alpha"])


@pytest.fixture
def beta_key(tenants, api_for) -> APIClient:
    return api_for(tenants["beta"])


# ----------------------------------------------------------------------------- authentication


def test_the_sweep_sees_every_swan_endpoint():
    names = {p.name for p in swan_urlpatterns}
    assert {"user-status", "call", "terminal-register", "queues-status", "recording"} <= names
    assert len(ENDPOINT_METHODS) >= 2 * len(swan_urlpatterns)


@pytest.mark.parametrize(("pattern", "method"), KEYED_ENDPOINT_METHODS, ids=_endpoint_id)
def test_every_endpoint_refuses_a_missing_wrong_or_inactive_key(
    pattern, method, tenants, make_api_key, gateway
):
    path = path_for(pattern)
    body = GOOD_BODIES.get(pattern.name)
    valid = make_api_key()
    inactive = make_api_key(is_active=False)
    before = snapshot()
    attempts = {
        "no key": {},
        "empty bearer": {"HTTP_AUTHORIZATION": "Bearer "},
        "wrong bearer": {"HTTP_AUTHORIZATION": "Bearer swan_wrong-key-0123456789abcdefghijkl"},
        "wrong X-Api-Key": {"HTTP_X_API_KEY": "swan_wrong-key-0123456789abcdefghijkl"},
        "valid key, unknown scheme": {"HTTP_AUTHORIZATION": f"Basic {valid}"},
        "valid key with junk": {"HTTP_AUTHORIZATION": f"Bearer {valid}x"},
        "valid key, truncated": {"HTTP_X_API_KEY": valid[:-1]},
        "inactive bearer": {"HTTP_AUTHORIZATION": f"Bearer {inactive}"},
        "inactive X-Api-Key": {"HTTP_X_API_KEY": inactive},
    }
    for label, headers in attempts.items():
        response = send(APIClient(), method, path, body, **headers)
        try:
            envelope(response, 401)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path} with {label}: {exc}") from None
    assert gateway.calls == []
    assert snapshot() == before
    # The same request with the valid key is not refused for want of a key.
    assert send(APIClient(), method, path, body, HTTP_X_API_KEY=valid).status_code != 401


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE", "PUT", "PATCH"])
def test_recording_file_without_a_valid_token_serves_nothing(method, tenants):
    """recording-file has no API key: its signed token is the credential, and a bad one is 403."""
    pattern = next(p for p in swan_urlpatterns if p.name == "recording-file")
    response = send(APIClient(), method, path_for(pattern, token="x"))
    assert response.status_code in (403, 405), response.status_code
    assert b"RIFF" not in response.content
    assert AUDIO[:64] not in response.content
    if method in ("GET", "HEAD"):
        envelope(response, 403)


# ----------------------------------------------------------------------------- tenancy


@dataclass(frozen=True)
class Case:
    """One request naming a company-B object, made with a key limited to company A."""

    endpoint: str
    method: str
    kwargs: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    status: int = 404
    # For answers that are not a 404 (queues count as empty, username is null): the same
    # request naming an object that does not exist, whose answer must be identical.
    ghost: tuple[dict[str, str], dict[str, Any] | None] | None = None
    # A key that sees every company does see the object (the 404 is tenancy, not bad data).
    owner_sees: bool = True

    def path(self, **kwargs: str) -> str:
        return reverse(self.endpoint, kwargs=kwargs or self.kwargs or None)

    def __str__(self) -> str:
        if not self.params:
            return f"{self.method} {self.path()}"
        if self.method == "GET":
            return f"{self.method} {self.path()}?{urlencode(self.params)}"
        return f"{self.method} {self.path()} {json.dumps(self.params, ensure_ascii=False)}"


PHONES = [{"name": "Intruso", "number": "600000666"}]
TENANCY = [
    Case("user-status", "GET", {"extension": "300"}),
    Case("user-status", "GET", {"extension": "200"}, {"company": "beta"}),
    Case("user-status", "GET", {"extension": "200"}, {"company": "BETA sl"}),
    Case("user-status", "POST", {"extension": "300"}, {"status": "pause", "reason": "x"}),
    Case("user-status", "POST", {"extension": "200"}, {"status": "busy", "company": "beta"}),
    Case(
        "username",
        "GET",
        {"extension": "300"},
        status=200,
        ghost=({"extension": "399"}, None),
    ),
    Case("username", "GET", {"extension": "200"}, {"company": "beta"}),
    Case("blf-users", "GET", {"company": "beta"}),
    Case("blf-users", "GET", {"company": "BETA SL"}, {"withMobile": "true"}),
    Case("blf-users", "GET", {"company": "Beta"}, {"departments[]": "Soporte"}),
    Case("company-numbers", "GET", {"company": "beta"}),
    Case("company-numbers", "GET", {"company": "Beta SL"}, {"in_use": "1"}),
    # Agenda names are unique across companies: a taken name cannot be created (409, see below).
    Case("update-agenda", "POST", params={"name": "agenda-b", "phones": PHONES}, status=409),
    Case("update-agenda", "POST", params={"name": "nueva", "company": "beta", "phones": PHONES}),
    Case("update-agenda", "POST", params={"name": "agenda-free", "phones": PHONES}, status=409),
    Case("delete-phones-agenda", "DELETE", params={"name": "agenda-b"}),
    Case("delete-phones-agenda", "DELETE", params={"name": "agenda-b", "phones": ["931000001"]}),
    Case("delete-phones-agenda", "DELETE", params={"name": "agenda-free"}),
    Case("current-calls", "GET", {"extension": "300"}),
    Case("current-calls", "GET", {"extension": "200"}, {"company": "beta"}),
    Case("web-phone-username", "GET", {"extension": "300"}),
    Case("web-phone-username", "GET", {"extension": "200"}, {"company": "beta"}),
    Case(
        "call",
        "POST",
        {"destination": "600"},
        {"private_source": "300", "company": "alpha"},
        owner_sees=False,
    ),
    Case("call", "POST", {"destination": "600"}, {"private_source": "300", "company": "beta"}),
    Case("user-unregister", "POST", {"extension": "300"}),
    Case("user-unregister", "POST", {"extension": "200"}, {"company": "beta"}),
    Case("terminal-register", "POST", {"mac": B_MAC}),
    Case("terminal-register", "POST", {"mac": "00:15:65:0B:03:00"}),
    Case("terminal-register", "DELETE", {"mac": B_MAC}),
    Case("terminal-register", "DELETE", {"mac": B_WEBPHONE}),
    Case(
        "queues-status",
        "GET",
        params={"queues[g][]": "q-beta"},
        status=200,
        ghost=({}, {"queues[g][]": "q-ghost"}),
    ),
    Case(
        "queues-status",
        "GET",
        params={"queues": json.dumps({"g": ["q-alpha", "q-beta"], "h": ["q-beta"]})},
        status=200,
        ghost=({}, {"queues": json.dumps({"g": ["q-alpha", "q-ghost"], "h": ["q-ghost"]})}),
    ),
    Case("queues-status", "GET", params={"queues[g][]": "q-beta", "company": "beta"}),
    Case("user-resume", "GET", {"extension": "300"}, {"company": "beta"}),
    Case(
        "user-resume",
        "GET",
        {"extension": "300"},
        {"company": "alpha"},
        status=200,
        ghost=({"extension": "399"}, {"company": "alpha"}),
        owner_sees=False,
    ),
    Case(
        "user-resume",
        "GET",
        {"extension": "200"},
        {"company": "alpha", "queues[g][]": "q-beta"},
        status=200,
        ghost=({"extension": "200"}, {"company": "alpha", "queues[g][]": "q-ghost"}),
        owner_sees=False,
    ),
    Case("last-calls", "GET", {"extension": "300"}),
    Case("last-calls", "GET", {"extension": "200"}, {"company": "beta"}),
    Case("recording", "GET", {"callID": "900.1", "extension": "300"}),
    Case("recording", "GET", {"callID": "900.1", "extension": "200"}),  # A's 200, B's call
    Case("recording", "GET", {"callID": "900.1", "extension": "200"}, {"company": "beta"}),
    Case(
        "report-queues", "GET", params={"company": "beta", "from": "2026-01-01", "to": "2026-01-31"}
    ),
    Case(
        "report-agents", "GET", params={"company": "beta", "from": "2026-01-01", "to": "2026-01-31"}
    ),
]


def test_every_endpoint_and_method_has_a_tenancy_case():
    covered = {(case.endpoint, case.method) for case in TENANCY}
    wanted = {(p.name, m) for p, m in KEYED_ENDPOINT_METHODS if m not in ("HEAD", "OPTIONS")}
    missing = sorted(wanted - covered)
    assert not missing, f"add a company-B case to TENANCY for {missing}"


@pytest.mark.parametrize("case", TENANCY, ids=str)
def test_a_key_limited_to_company_a_never_sees_company_b(case, alpha_key, api, gateway):
    before = snapshot()
    response = send(alpha_key, case.method, case.path(), case.params)
    if case.ghost is None:
        envelope(response, case.status)
    else:
        data = ok(response, case.status)
        ghost_kwargs, ghost_params = case.ghost
        ghost = send(alpha_key, case.method, case.path(**ghost_kwargs), ghost_params)
        assert data == ok(ghost), "company B's object must answer as one that does not exist"
    assert gateway.calls == [], "nothing may reach the PBX for another company's object"
    assert snapshot() == before, "nothing may be written for another company's object"

    if case.owner_sees:  # the control: the object is there for a key that may see it
        seen = send(api, case.method, case.path(), case.params)
        assert seen.status_code != 404, seen.content
        assert seen.content != response.content


def test_an_extension_shared_with_another_company_resolves_to_the_keys_own(alpha_key, tenants):
    """A 409 "ambiguous" would betray that company B has a 200 too."""
    assert ok(alpha_key.get("/userStatus/200"))["name"] == "Ana Alpha"
    assert ok(alpha_key.get("/username/200")) == {"username": "Ana Alpha"}
    assert ok(alpha_key.get("/last-calls/200")) == []
    blf = ok(alpha_key.get("/blf-users/alpha"))
    assert [row["extension"] for row in blf] == ["200"]


def test_groups_named_by_numbers_answer_under_their_names(beta_key):
    """PHP writes array(5 => ['q-beta']) as queues[5][]=q-beta: the group is 5, as in JSON."""
    php = ok(beta_key.get("/queues-status", {"queues[5][]": "q-beta", "queues[7][]": "q-beta"}))
    json_ = ok(beta_key.get("/queues-status", {"queues": '{"5": ["q-beta"], "7": ["q-beta"]}'}))
    assert set(php["queues"]) == {"5", "7"}
    assert php["queues"]["5"]["members"] == ["300"]
    assert php["queues"]["5"]["status"] == json_["queues"]["5"]["status"]
    resume = ok(beta_key.get("/user-resume/300", {"company": "beta", "queues[5][]": "q-beta"}))
    assert set(resume["waiting-calls"]) == {"5"}


def test_queues_of_another_company_count_as_empty_even_when_busy(alpha_key, beta_key):
    params = {"queues[g][]": "q-beta"}
    mine = ok(beta_key.get("/queues-status", params))["queues"]["g"]
    assert mine["members"] == ["300"]
    assert mine["status"]["completed"] == 3
    assert mine["status"]["currentCalls"] == 1
    theirs = ok(alpha_key.get("/queues-status", params))["queues"]["g"]
    assert theirs["members"] == []
    assert theirs["alarm"] is False
    assert theirs["status"]["completed"] == theirs["status"]["currentCalls"] == 0
    resume = ok(alpha_key.get("/user-resume/200", {"company": "alpha", **params}))
    assert resume["waiting-calls"] == {"g": 0}
    assert resume["queue"]["completed"] == resume["queue"]["abandoned"] == 0


def test_a_recording_link_of_company_b_never_comes_from_company_a(alpha_key, beta_key):
    data = ok(beta_key.get("/recording/900.1/300"))
    assert data["path"]
    assert data["processing"] is False
    token = data["path"].rsplit("/", 1)[1]
    assert APIClient().get(f"/recording-file/{token}").status_code == 200  # the owner's link works
    for path in ("/recording/900.1/200", "/recording/900.1/300", "/recording/900.1/201"):
        assert b"recording-file" not in alpha_key.get(path).content


def test_last_calls_never_show_another_companys_calls_on_a_shared_device_name(
    make_company, make_user, api_for
):
    alpha = make_company(slug="alpha")
    beta = make_company(slug="beta")
    make_user(alpha, "200")  # both default to PJSIP/200, as load_directory does
    make_user(beta, "200")
    cdr(
        beta,
        call_id="777.1",
        src="699111222",
        dst="200",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/200-00001",
    )
    alpha_key = api_for(alpha)
    assert ok(alpha_key.get("/last-calls/200")) == []
    assert ok(alpha_key.get("/user-resume/200", {"company": "alpha"}))["user"]["lastCall"] is None


# ----------------------------------------------------------------------------- recordings


def _recording_of(beta_key, tenants, call_id: str, recordingfile: str = "") -> str:
    """A company-B call 300 took part in; returns the signed path recording/ hands out."""
    cdr(
        tenants["beta"],
        call_id=call_id,
        src="600123456",
        dst="300",
        channel="PJSIP/trunk-0001",
        dstchannel="PJSIP/b300-0009",
        recordingfile=recordingfile,
    )
    data = ok(beta_key.get(f"/recording/{call_id}/300"))
    assert "path" in data, data
    return data["path"]


def _outside(tmp_path):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "in-950.1.wav").write_bytes(SECRET)
    return secret, outside


def _day(root):
    day = root / timezone.localtime(timezone.now() - timedelta(minutes=5)).strftime("%Y/%m/%d")
    day.mkdir(parents=True, exist_ok=True)
    return day


ESCAPES: dict[str, Callable] = {
    "dot-dot": lambda root, secret, outside: "../secret.wav",
    "dot-dot in a dated folder": lambda root, secret, outside: "2024/05/../../../secret.wav",
    "absolute path": lambda root, secret, outside: str(secret),
    "absolute path, dot-dot": lambda root, secret, outside: f"{root}/../secret.wav",
    "symlink out": lambda root, secret, outside: (
        (root / "link-950.1.wav").symlink_to(secret),
        "link-950.1.wav",
    )[1],
    "symlink out, in the dated folder": lambda root, secret, outside: (
        (_day(root) / "in-950.1.wav").symlink_to(secret),
        "in-950.1.wav",
    )[1],
    "symlinked folder out": lambda root, secret, outside: (
        (root / "old").symlink_to(outside, target_is_directory=True),
        "old/in-950.1.wav",
    )[1],
    "symlinked folder out, absolute": lambda root, secret, outside: (
        (root / "old").symlink_to(outside, target_is_directory=True),
        f"{root}/old/in-950.1.wav",
    )[1],
    "uniqueid fallback finds a symlink out": lambda root, secret, outside: (
        (_day(root) / "auto-950.1.wav").symlink_to(secret),
        "",
    )[1],
    "uniqueid fallback, symlink at the root": lambda root, secret, outside: (
        (root / "auto-950.1.wav").symlink_to(secret),
        "",
    )[1],
}


@pytest.mark.parametrize("escape", ESCAPES, ids=str)
def test_recordings_are_never_read_outside_the_root(escape, tenants, beta_key, tmp_path):
    secret, outside = _outside(tmp_path)
    recordingfile = ESCAPES[escape](tenants["root"], secret, outside)
    path = _recording_of(beta_key, tenants, "950.1", recordingfile)
    for headers in ({}, {"HTTP_RANGE": "bytes=0-9"}, {"HTTP_RANGE": "bytes=-5"}):
        response = APIClient().get(path, **headers)
        content = (
            b"".join(response.streaming_content)
            if getattr(response, "streaming", False)
            else response.content
        )
        assert SECRET[:10] not in content
        assert SECRET[-5:] not in content
        envelope(response, 404)


def test_a_recording_inside_the_root_is_served(tenants, beta_key):
    """The control for the escapes: the same mechanism does serve a file that is inside."""
    (_day(tenants["root"]) / "in-951.1.wav").write_bytes(AUDIO)
    path = _recording_of(beta_key, tenants, "951.1", "in-951.1.wav")
    response = APIClient().get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == AUDIO


class _AgedSigner(signing.TimestampSigner):
    """Signs as if `age` seconds ago, with the real key and salt."""

    def __init__(self, *, age: int, **kwargs):
        super().__init__(**kwargs)
        self.age = age

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - self.age)


def _token(payload: dict, *, age: int = 0, salt: str = recordings.RECORDING_SALT, key=None) -> str:
    return _AgedSigner(age=age, salt=salt, key=key).sign_object(payload)


def _key_of(client: APIClient) -> ApiKey:
    return ApiKey.objects.get(key_hash=hash_api_key(client._credentials["HTTP_X_API_KEY"]))


def _payload(client: APIClient, company, call: str = "900.1") -> dict:
    key = _key_of(client)
    return {"call": call, "company": company.pk, "key": key.pk, "kp": key.prefix}


def test_recording_links_expire(tenants, beta_key, settings):
    settings.RECORDING_URL_MAX_AGE = 3600
    payload = _payload(beta_key, tenants["beta"])
    assert APIClient().get(f"/recording-file/{_token(payload, age=3500)}").status_code == 200
    for age in (3602, 86400, 10**7):
        response = APIClient().get(
            f"/recording-file/{_token(payload, age=age)}", HTTP_ACCEPT_LANGUAGE="en"
        )
        assert "expired" in envelope(response, 403)["error-msg"]
    # A link handed out now stops working once RECORDING_URL_MAX_AGE has passed.
    path = ok(beta_key.get("/recording/900.1/300"))["path"]
    assert APIClient().get(path).status_code == 200
    settings.RECORDING_URL_MAX_AGE = -1
    envelope(APIClient().get(path), 403)


def _altered_tokens(token: str, tenants) -> dict[str, str]:
    payload, stamp, signature = token.rsplit(":", 2)
    flip = {"A": "B", "B": "A"}

    def flipped(text: str, at: int) -> str:
        return text[:at] + flip.get(text[at], "A") + text[at + 1 :]

    alpha_token = _token({"call": "900.1", "company": tenants["alpha"].pk})
    return {
        "payload char": f"{flipped(payload, 3)}:{stamp}:{signature}",
        "timestamp": f"{payload}:{flipped(stamp, 0)}:{signature}",
        "signature char": f"{payload}:{stamp}:{flipped(signature, 5)}",
        "signature truncated": f"{payload}:{stamp}:{signature[:-1]}",
        "signature dropped": f"{payload}:{stamp}",
        "signature extended": f"{payload}:{stamp}:{signature}A",
        "other payload, this signature": f"{alpha_token.rsplit(':', 2)[0]}:{stamp}:{signature}",
        "other salt": signing.dumps({"call": "900.1", "company": tenants["beta"].pk}, salt="x"),
        "no salt": signing.dumps({"call": "900.1", "company": tenants["beta"].pk}),
        "other secret key": _token(
            {"call": "900.1", "company": tenants["beta"].pk}, key="not-the-secret-key"
        ),
        "unsigned": signing.b64_encode(b'{"call":"900.1","company":2}').decode(),
        "empty parts": "::",
        "traversal": "..%2F..%2Fsecret.wav",
        "dots": "..",
    }


def test_altered_or_forged_recording_links_are_refused(tenants, beta_key, api_for):
    path = ok(beta_key.get("/recording/900.1/300"))["path"]
    token = path.rsplit("/", 1)[1]
    for label, bad in _altered_tokens(token, tenants).items():
        response = APIClient().get(f"/recording-file/{bad}")
        assert AUDIO[:64] not in response.content, label
        assert response.status_code in (403, 404), (label, response.status_code)
        envelope(response, response.status_code)
    # A correctly signed token naming the call under another company finds nothing.
    forged = _token(_payload(beta_key, tenants["alpha"]))
    envelope(APIClient().get(f"/recording-file/{forged}"), 403)  # the key does not see alpha
    everything = api_for()
    forged = _token(_payload(everything, tenants["alpha"]))
    envelope(APIClient().get(f"/recording-file/{forged}"), 404)
    # A token signed before links were bound to keys is no longer accepted.
    unbound = _token({"call": "900.1", "company": tenants["beta"].pk})
    envelope(APIClient().get(f"/recording-file/{unbound}"), 403)


# ----------------------------------------------------------------------------- AMI injection

CONTROLS = ["\r", "\n", "\r\n", "\x00", "\t", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f"]
INJECTED = "\r\nAction: Originate\r\nExten: 900666\r\nContext: default\r\n"


def bad_values(good: str, *, edges: bool = True, inside: bool = True) -> Iterator[str]:
    if inside:
        yield f"{good}{INJECTED}"
        yield f"{good}\nAction: Logoff"
        for control in CONTROLS:
            yield f"{good[:1]}{control}{good[1:]}"
        yield f"{good}\x00"
        yield f"\x00{good}"
    if edges:
        for control in CONTROLS:
            yield f"{good}{control}"
            yield f"{control}{good}"


def _in_body(endpoint: str, kwargs: dict, params: dict, method: str = "POST"):
    """A request whose body parameters carry the value: JSON, form and query string alike."""

    def requests(name: str, value: str) -> Iterator[tuple[str, Callable]]:
        path = reverse(endpoint, kwargs=kwargs or None)
        values = {**params, name: value}
        yield "json", lambda c: send(c, method, path, values)
        yield (
            "form",
            lambda c: c.generic(
                method, path, urlencode(values), content_type="application/x-www-form-urlencoded"
            ),
        )
        yield "query", lambda c: c.generic(method, f"{path}?{urlencode(values)}")

    return requests


def _in_path(endpoint: str, kwargs: dict, segment: str, params: dict, method: str = "POST"):
    def requests(name: str, value: str) -> Iterator[tuple[str, Callable]]:
        path = reverse(endpoint, kwargs={**kwargs, segment: value})
        yield "path", lambda c: send(c, method, path, params)

    return requests


@dataclass(frozen=True)
class Injection:
    label: str
    parameter: str
    good: str
    requests: Callable
    edges: bool = True
    inside: bool = True

    def __str__(self) -> str:
        return self.label


STATUS = {"status": "busy", "reason": "Reunión"}
CALL = {"private_source": "200", "company": "alpha"}
INJECTIONS = [
    Injection(
        "userStatus status",
        "status",
        "pause",
        _in_body("user-status", {"extension": "200"}, STATUS),
    ),
    Injection(
        "userStatus reason (pause)",
        "reason",
        "Descanso",
        _in_body("user-status", {"extension": "200"}, {"status": "pause"}),
    ),
    Injection(
        "userStatus reason (busy)",
        "reason",
        "Reunión",
        _in_body("user-status", {"extension": "200"}, STATUS),
    ),
    Injection(
        "userStatus company",
        "company",
        "alpha",
        _in_body("user-status", {"extension": "200"}, STATUS),
    ),
    Injection(
        "userStatus extension", "extension", "200", _in_path("user-status", {}, "extension", STATUS)
    ),
    Injection("call destination", "destination", "600", _in_path("call", {}, "destination", CALL)),
    Injection(
        "call private_source",
        "private_source",
        "200",
        _in_body("call", {"destination": "600"}, CALL),
    ),
    Injection("call company", "company", "alpha", _in_body("call", {"destination": "600"}, CALL)),
    Injection(
        "user-unregister extension",
        "extension",
        "200",
        _in_path("user-unregister", {}, "extension", {}),
    ),
    Injection(
        "user-unregister company",
        "company",
        "alpha",
        _in_body("user-unregister", {"extension": "200"}, {}),
    ),
    Injection(
        "terminal-register POST mac",
        "mac",
        A_MAC,
        _in_path("terminal-register", {}, "mac", {}),
        edges=False,
    ),
    Injection(
        "terminal-register DELETE mac",
        "mac",
        "00:15:65:0a:02:00",
        _in_path("terminal-register", {}, "mac", {}, method="DELETE"),
        edges=False,
    ),
]
MAC_EDGES = [
    Injection(
        "terminal-register POST mac, control at an edge",
        "mac",
        A_MAC,
        _in_path("terminal-register", {}, "mac", {}),
        inside=False,
    ),
    Injection(
        "terminal-register DELETE mac, control at an edge",
        "mac",
        A_MAC,
        _in_path("terminal-register", {}, "mac", {}, method="DELETE"),
        inside=False,
    ),
]


def _check_injection(injection: Injection, client: APIClient, gateway) -> None:
    # The control: the good value does reach the PBX, so an empty `calls` below means something.
    for _encoding, request in injection.requests(injection.parameter, injection.good):
        gateway.reset()
        response = request(client)
        assert response.status_code == 200, (injection.label, response.content)
        assert gateway.calls, injection.label
    failures = []
    for value in bad_values(injection.good, edges=injection.edges, inside=injection.inside):
        for encoding, request in injection.requests(injection.parameter, value):
            gateway.reset()
            response = request(client)
            if response.status_code != 400 or gateway.calls:
                failures.append((encoding, value, response.status_code, list(gateway.calls)))
                continue
            envelope(response, 400)
    assert not failures, f"{injection.label}: control characters accepted: {failures[:5]}"


@pytest.mark.parametrize("injection", INJECTIONS, ids=str)
def test_control_characters_never_reach_the_pbx(injection, alpha_key, gateway):
    _check_injection(injection, alpha_key, gateway)


@pytest.mark.parametrize("injection", MAC_EDGES, ids=str)
def test_control_characters_at_the_edges_of_a_mac_are_refused(injection, alpha_key, gateway):
    _check_injection(injection, alpha_key, gateway)


@pytest.mark.parametrize(
    ("pattern", "method"),
    [
        (p, m)
        for p, m in KEYED_ENDPOINT_METHODS
        if "extension" in p.pattern.regex.groupindex and m not in ("HEAD", "OPTIONS")
    ],
    ids=_endpoint_id,
)
def test_every_extension_path_segment_refuses_control_characters(
    pattern, method, alpha_key, gateway
):
    body = {"status": "busy", "company": "alpha"}
    for value in bad_values("200"):
        response = send(alpha_key, method, path_for(pattern, extension=value), body)
        envelope(response, 400)
    assert gateway.calls == []


# The gateway: the last line of defence, before anything goes on the wire.


@pytest.mark.parametrize("code", [*range(0x20), 0x7F], ids=lambda c: f"0x{c:02x}")
def test_check_ami_value_refuses_every_control_character(code):
    for value in (chr(code), f"a{chr(code)}", f"{chr(code)}a", f"Descanso{chr(code)}Action: X"):
        with pytest.raises(ValueError, match="control character"):
            check_ami_value("Reason", value)
        with pytest.raises(ValueError, match="'Reason' contains a control character"):
            encode_action([("Action", "QueuePause"), ("Reason", value)])
        with pytest.raises(ValueError, match="'header name' contains a control character"):
            encode_action([("Action", "QueuePause"), (f"Reason{value}", "x")])


def test_check_ami_value_keeps_ordinary_text():
    assert check_ami_value("Reason", "Descanso — café ☕ García") == "Descanso — café ☕ García"
    assert check_ami_value("Penalty", 3) == "3"
    assert check_ami_value("Reason", None) == ""
    assert encode_action([("Action", "Ping"), ("ActionID", "1")]) == (
        b"Action: Ping\r\nActionID: 1\r\n\r\n"
    )


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port where an AMI would be; it must never get a connection."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def assert_no_connection(server: socket.socket) -> None:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return
    conn.close()
    raise AssertionError("the gateway connected to the PBX")


def _gateway_actions(bad: str) -> dict[str, Callable[[AmiGateway], object]]:
    def originate(**fields):
        values = {"channel": "PJSIP/200", "context": "from-internal", "exten": "600", **fields}
        return lambda gw: gw.originate(OriginateRequest(**values))

    return {
        "QueuePause reason": lambda gw: gw.queue_pause(
            interface="PJSIP/200", paused=True, reason=bad
        ),
        "QueuePause interface": lambda gw: gw.queue_pause(interface=bad, paused=False),
        "QueuePause queue": lambda gw: gw.queue_pause(
            interface="PJSIP/200", paused=True, queue=bad
        ),
        "QueueAdd member name": lambda gw: gw.queue_add(
            queue="q", interface="PJSIP/200", member_name=bad
        ),
        "QueueAdd queue": lambda gw: gw.queue_add(queue=bad, interface="PJSIP/200"),
        "QueueAdd state interface": lambda gw: gw.queue_add(
            queue="q", interface="PJSIP/200", state_interface=bad
        ),
        "QueueRemove interface": lambda gw: gw.queue_remove(queue="q", interface=bad),
        "DND key": lambda gw: gw.set_dnd(key=bad, enabled=True),
        "DND reason": lambda gw: gw.set_dnd(key="200", enabled=True, reason=bad),
        "DND off key": lambda gw: gw.set_dnd(key=bad, enabled=False),
        "Originate exten": originate(exten=bad),
        "Originate channel": originate(channel=bad),
        "Originate context": originate(context=bad),
        "Originate caller id": originate(caller_id=f"{bad} <600>"),
        "Originate variable name": originate(variables={bad: "1"}),
        "Originate variable value": originate(variables={"SWAN": bad}),
    }


def test_the_ami_gateway_refuses_control_characters_before_connecting(listener):
    port = listener.getsockname()[1]
    for bad in ("200\r\nAction: Originate", "200\n", "\x00", "a\x1bb", "x\x7f"):
        for label, action in _gateway_actions(bad).items():
            gateway = AmiGateway("127.0.0.1", port, "swan", "secret", timeout=0.5)
            try:
                with pytest.raises(ValueError, match="control character"):
                    action(gateway)
            finally:
                gateway.close()
            assert not gateway.connected, label
            assert_no_connection(listener)


def test_a_control_character_stored_in_the_directory_never_reaches_the_wire(
    tenants, alpha_key, listener, settings
):
    """A user name (sent as MemberName) written through the admin with a CR/LF in it."""
    settings.PBX_GATEWAY = "pbx.gateway.ami.AmiGateway"
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", listener.getsockname()[1]
    settings.AMI_TIMEOUT = 0.5
    PbxUser.objects.filter(pk=tenants["a200"].pk).update(name=f"Ana{INJECTED}")
    response = alpha_key.post(f"/terminal-register/{A_MAC}")
    assert response.status_code >= 400
    envelope(response, response.status_code)
    assert_no_connection(listener)
    assert not Terminal.objects.get(mac=A_MAC).registered


# ----------------------------------------------------------------------------- throttling


def test_a_key_over_its_rate_gets_429_and_another_key_does_not(
    tenants, api_for, make_api_key, monkeypatch
):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    busy, calm = api_for(tenants["alpha"]), api_for(tenants["alpha"])
    for _ in range(3):
        ok(busy.get("/blf-users/alpha"))
    for path in ("/blf-users/alpha", "/userStatus/200", "/queues-status?queues[g][]=q-alpha"):
        response = busy.get(path)
        body = envelope(response, 429)
        retry = int(response["Retry-After"])
        assert 0 < retry <= 60
        assert str(retry) in body["error-msg"]
    refused = busy.post("/userStatus/200", {"status": "busy"}, format="json")
    envelope(refused, 429)
    assert RecordingGateway.calls == []  # a throttled write does not reach the PBX
    # Another key, even of the same company, is unaffected; so is the answer to no key.
    for _ in range(3):
        ok(calm.get("/blf-users/alpha"))
    envelope(calm.get("/blf-users/alpha"), 429)
    envelope(APIClient().get("/blf-users/alpha"), 401)
    third = APIClient()
    third.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key()}")
    ok(third.get("/blf-users/alpha"))


def test_throttling_counts_per_key_not_per_client_address(tenants, api_for, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    busy = api_for(tenants["alpha"])
    ok(busy.get("/blf-users/alpha", REMOTE_ADDR="10.0.0.1"))
    ok(busy.get("/blf-users/alpha", REMOTE_ADDR="10.0.0.2"))
    envelope(busy.get("/blf-users/alpha", REMOTE_ADDR="10.0.0.3"), 429)


# ----------------------------------------------------------------------------- hostile input
# Issue 10, A: input that once got a 500. Each answers a 4xx envelope naming what is wrong, and
# nothing reaches the PBX (or the database) unless the whole request is valid.

DEEP_KEY = "queues" + "[x]" * 1200
HUGE = "9" * 5000  # past Python's int-string limit (4300 digits)
PATH_PARAMETERS = sorted(
    {
        (p.name, name)
        for p in swan_urlpatterns
        for name in p.pattern.regex.groupindex
        if p.name not in NO_API_KEY
    }
)


def test_brackets_nested_past_the_limit_answer_400_naming_the_parameter(alpha_key, gateway):
    response = alpha_key.get(f"/queues-status?{DEEP_KEY}=1", HTTP_ACCEPT_LANGUAGE="en")
    message = envelope(response, 400)["error-msg"]
    assert "'queues'" in message
    assert "nested" in message
    form = urlencode({"status": "busy", "reason" + "[x]" * 1200: "x"})
    response = alpha_key.generic(
        "POST", "/userStatus/200", form, content_type="application/x-www-form-urlencoded"
    )
    assert "'reason'" in envelope(response, 400)["error-msg"]
    assert gateway.calls == []


def test_brackets_nested_up_to_the_limit_still_parse(settings):
    settings.SWAN_PARAM_MAX_DEPTH = 64
    tree = parse_query_string("a" + "[x]" * 64 + "=1")
    for _level in range(65):  # "a", then 64 levels of "x"
        tree = tree["a" if "a" in tree else "x"]
    assert tree == "1"
    with pytest.raises(InvalidValue, match="'a'"):
        parse_query_string("a" + "[x]" * 65 + "=1")


def test_ten_thousand_phones_written_the_php_way_fit_the_default_field_limit(alpha_key):
    phones = [(f"phones[{n}][name]", f"Cliente {n}") for n in range(10_000)]
    phones += [(f"phones[{n}][number]", f"6{n:08d}") for n in range(10_000)]
    form = urlencode([("name", "agenda-a"), *phones])
    response = alpha_key.generic(
        "POST", "/update-agenda", form, content_type="application/x-www-form-urlencoded"
    )
    assert ok(response) == {"success": True}
    assert AgendaPhone.objects.filter(agenda__name="agenda-a").count() == 10_001


@pytest.mark.parametrize(
    "params",
    [
        {"departments": f"[{HUGE}]"},
        {"departments": f'["Soporte", {{"x": {HUGE}}}]'},
        {"withMobile": "true", "departments": f'{{"a": [{HUGE}]}}'},
    ],
    ids=["array", "nested", "map"],
)
def test_a_json_parameter_with_a_huge_integer_answers_400(alpha_key, params):
    response = alpha_key.get("/blf-users/alpha", params, HTTP_ACCEPT_LANGUAGE="en")
    assert "'departments'" in envelope(response, 400)["error-msg"]


def test_a_json_string_parameter_with_a_huge_integer_reaches_nothing(alpha_key, gateway):
    before = snapshot()
    form = urlencode({"name": "agenda-a", "phones": f'[{{"name": "x", "number": {HUGE}}}]'})
    response = alpha_key.generic(
        "POST", "/update-agenda", form, content_type="application/x-www-form-urlencoded"
    )
    envelope(response, 400)
    response = alpha_key.get("/queues-status", {"queues": f'{{"g": [{HUGE}]}}'})
    envelope(response, 400)
    assert snapshot() == before


def test_a_json_body_with_a_huge_integer_says_so_in_plain_words(alpha_key, gateway):
    before = snapshot()
    body = f'{{"name": "agenda-a", "phones": [{{"name": "x", "number": {HUGE}}}]}}'
    response = alpha_key.generic(
        "POST", "/update-agenda", body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en"
    )
    message = envelope(response, 400)["error-msg"]
    assert message.endswith(": The JSON body holds a number that is too long.")
    assert "sys." not in message
    assert snapshot() == before


@pytest.mark.parametrize(("endpoint", "name"), PATH_PARAMETERS, ids=lambda v: str(v))
@pytest.mark.parametrize("value", ["\x00", "al\x00pha", "200\x00", "\x1b[2J", "a\x7f"])
def test_control_characters_in_any_path_parameter_answer_400(
    endpoint, name, value, alpha_key, gateway
):
    pattern = next(p for p in swan_urlpatterns if p.name == endpoint)
    before = snapshot()
    for method in served_methods(pattern):
        if method in ("HEAD", "OPTIONS"):
            continue
        path = path_for(pattern, **{name: value})
        response = send(
            alpha_key, method, path, GOOD_BODIES.get(endpoint), HTTP_ACCEPT_LANGUAGE="en"
        )
        assert f"'{name}'" in envelope(response, 400)["error-msg"], (method, path)
    assert gateway.calls == []
    assert snapshot() == before


def test_more_fields_than_the_limit_answer_400_naming_it(alpha_key, settings, gateway):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
    fields = urlencode([("status", "busy")] + [(f"f{n}", "x") for n in range(1001)])
    response = alpha_key.get(f"/queues-status?{fields}", HTTP_ACCEPT_LANGUAGE="en")
    assert "1000" in envelope(response, 400)["error-msg"]
    response = alpha_key.generic(
        "POST",
        "/userStatus/200",
        fields,
        content_type="application/x-www-form-urlencoded",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "1000" in envelope(response, 400)["error-msg"]
    parts = {"status": "busy", **{f"f{n}": "x" for n in range(1001)}}
    response = alpha_key.post("/userStatus/200", parts, format="multipart")
    envelope(response, 400)
    assert gateway.calls == []


def _big_bodies(size: int) -> dict[str, tuple[str, bytes | str]]:
    reason = "x" * size
    return {
        "json": ("application/json", json.dumps({"status": "busy", "reason": reason})),
        "form": ("application/x-www-form-urlencoded", urlencode({"status": "busy", "r": reason})),
    }


@pytest.mark.parametrize("kind", ["json", "form", "multipart"])
def test_a_body_over_the_limit_answers_413_naming_it(kind, alpha_key, settings, gateway):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
    size = 3 * 1024 * 1024
    if kind == "multipart":
        body = {"status": "busy", "reason": "x" * size}
        response = alpha_key.post(
            "/userStatus/200", body, format="multipart", HTTP_ACCEPT_LANGUAGE="en"
        )
    else:
        content_type, body = _big_bodies(size)[kind]
        response = alpha_key.generic(
            "POST", "/userStatus/200", body, content_type=content_type, HTTP_ACCEPT_LANGUAGE="en"
        )
    assert "2621440" in envelope(response, 413)["error-msg"]
    assert gateway.calls == []


LONE_SURROGATE = '"x\\ud800y"'  # valid JSON, but no UTF-8 can carry it
SURROGATE_BODIES = [
    ("/userStatus/200", f'{{"status": "busy", "reason": {LONE_SURROGATE}}}', "reason"),
    ("/userStatus/200", f'{{"status": "pause", "reason": {LONE_SURROGATE}}}', "reason"),
    ("/userStatus/200", f'{{"status": "busy", "company": {LONE_SURROGATE}}}', "company"),
    ("/userStatus/200", f'{{"status": "busy", "x": {{"y": [{LONE_SURROGATE}]}}}}', "x"),
    ("/call/600", f'{{"private_source": "200", "company": "alpha", "z": {LONE_SURROGATE}}}', "z"),
    ("/user-unregister/200", f'{{"company": {LONE_SURROGATE}}}', "company"),
    (
        "/update-agenda",
        f'{{"name": "agenda-a", "phones": [{{"name": {LONE_SURROGATE}, "number": "6001"}}]}}',
        "phones",
    ),
    ("/update-agenda", f'[{{"name": {LONE_SURROGATE}, "number": "6001"}}]', "phones"),
    (f"/terminal-register/{A_MAC}", f'{{"a": {LONE_SURROGATE}}}', "a"),
]


@pytest.mark.parametrize(("path", "body", "name"), SURROGATE_BODIES, ids=lambda v: str(v)[:40])
def test_a_lone_surrogate_is_refused_before_any_pbx_action(path, body, name, alpha_key, gateway):
    before = snapshot()
    response = alpha_key.generic(
        "POST", path, body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en"
    )
    message = envelope(response, 400)["error-msg"]
    assert f"'{name}'" in message
    assert "UTF-8" in message
    assert gateway.calls == [], "the PBX acted on a request that was then refused"
    assert snapshot() == before


def test_a_lone_surrogate_in_a_json_string_parameter_is_refused(alpha_key):
    queues = json.dumps({"g": ["q-alpha\ud800"]})  # json.dumps escapes it: \ud800
    response = alpha_key.get("/queues-status", {"queues": queues}, HTTP_ACCEPT_LANGUAGE="en")
    assert "'queues'" in envelope(response, 400)["error-msg"]


@pytest.mark.parametrize(
    ("range_header", "status", "body"),
    [
        (f"bytes={HUGE}-", 416, b""),
        (f"bytes={'0' * 5000}5-", 206, AUDIO[5:]),
        (f"bytes=0-{HUGE}", 206, AUDIO),
        (f"bytes=10-{'0' * 5000}19", 206, AUDIO[10:20]),
        (f"bytes=-{HUGE}", 206, AUDIO),
        (f"bytes={HUGE}-{HUGE}", 416, b""),
        ("bytes=\u0663-", 200, AUDIO),  # Arabic-Indic 3: not a number of HTTP's
        ("bytes=-\u0663", 200, AUDIO),
    ],
    ids=[
        "huge-first",
        "zeros-first",
        "huge-last",
        "zeros-last",
        "huge-suffix",
        "huge-both",
        "arabic-first",
        "arabic-suffix",
    ],
)
def test_a_range_with_thousands_of_digits_never_answers_500(
    range_header, status, body, tenants, beta_key
):
    path = ok(beta_key.get("/recording/900.1/300"))["path"]
    response = APIClient().get(path, HTTP_RANGE=range_header)
    assert response.status_code == status
    content = b"".join(response.streaming_content) if response.streaming else response.content
    assert content == body


# ----------------------------------------------------------------------------- before the views
# Issue 10, B: answers produced before Django's views see the request must be the envelope too.
# (Twisted's own multipart parsing inside daphne: tests/process/test_malformed_http.py.)


def _asgi_get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET through the whole ASGI app (static files handler included), as daphne calls it."""
    from asgiref.sync import async_to_sync
    from asgiref.testing import ApplicationCommunicator

    from swanproject.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def call():
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(5)
        body = b""
        while True:
            message = await communicator.receive_output(5)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        return start["status"], dict(start["headers"]), body

    return async_to_sync(call)()


@pytest.mark.parametrize(
    "path",
    [
        "/static/..",
        "/static/../manage.py",
        "/static/dashboard/../../manage.py",
        "/static/a\x00b",
        "/static/nope.css",
    ],
)
def test_a_static_path_outside_the_static_files_is_a_404_envelope(path, settings):
    settings.SERVE_STATIC = True
    status, headers, body = _asgi_get(path)
    assert status == 404, body[:200]
    assert headers[b"Content-Type"].startswith(b"application/json")
    data = json.loads(body)
    assert set(data) == {"error", "error-msg", "result"}
    assert data["error"] is True
    assert b"import" not in body  # nothing of manage.py


def test_static_files_are_still_served():
    status, headers, body = _asgi_get("/static/dashboard/dashboard.css")
    assert status == 200
    assert headers[b"Content-Type"].startswith(b"text/css")
    assert body


# A `since` that is no number of ours (non-ASCII digits, thousands of digits, signs) is absent.
HOSTILE_SINCE = ["\u0663", "\u0661\u0662", "1" * 5000, "9" * 20, "-1", "+5", " 5", "1e3", "0x10"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("since", HOSTILE_SINCE, ids=lambda v: repr(v)[:12])
def test_a_hostile_since_on_the_dashboard_socket_gets_a_fresh_snapshot(
    since, make_company, make_api_key
):
    from asgiref.sync import async_to_sync

    from tests.websockets import websocket

    company = make_company(slug="alpha")
    key = make_api_key(company)

    async def connect() -> dict:
        query = urlencode({"key": key, "since": since})
        async with websocket(f"/ws/dashboard/alpha/?{query}", origin=None) as (
            communicator,
            accepted,
            code,
        ):
            assert accepted, code
            return await communicator.receive_json_from(timeout=5)

    assert async_to_sync(connect)()["type"] == "snapshot"


@pytest.mark.parametrize("path", ["/admin/login/", "/accounts/login/", "/userStatus/200"])
def test_a_bad_multipart_body_that_django_reads_is_a_400_envelope(path, alpha_key):
    for content_type in ("multipart/form-data", "multipart/form-data; boundary="):
        response = alpha_key.generic(
            "POST", path, b"--x\r\n\r\n", content_type=content_type, HTTP_ACCEPT_LANGUAGE="en"
        )
        assert "could not be parsed" in envelope(response, 400)["error-msg"]


def test_a_host_outside_allowed_hosts_is_a_400_envelope(client):
    envelope(client.get("/healthz", HTTP_HOST="evil.example"), 400)


# ----------------------------------------------------------------------------- CSV injection
# Issue 10, C: names written through update-agenda come out of the admin's CSV export as text.


def test_formula_names_from_update_agenda_are_exported_as_text(alpha_key, admin_client):
    names = ['=HYPERLINK("http://evil.example","x")', "+SUM(1,2)", "@cmd", "-1+2", "O'Brien"]
    phones = [{"name": name, "number": f"62000000{n}"} for n, name in enumerate(names)]
    ok(send(alpha_key, "POST", "/update-agenda", {"name": "=agenda", "phones": phones}))
    agenda = Agenda.objects.get(name="=agenda")
    response = admin_client.post(
        "/admin/agenda/agenda/", {"action": "export_csv", "_selected_action": [agenda.pk]}
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1:]
    assert {row[0] for row in rows} == {"'=agenda"}
    exported = sorted(row[1] for row in rows)
    assert exported == sorted(name if name == "O'Brien" else f"'{name}" for name in names)


# ----------------------------------------------------------------------------- /healthz
# Issue 10, D: the public probe tells up or down, nothing of hosts, PIDs or paths.


def test_healthz_tells_the_public_nothing_but_up_or_down(tenants, tmp_path):
    from django.test import Client

    from pbx.models import IngestCursor, ListenerLease

    ListenerLease.objects.create(
        name="default", holder="pbx-host-7:4242", expires_at=timezone.now() + timedelta(seconds=9)
    )
    IngestCursor.objects.create(source=str(tmp_path / "queue_log"), kind="queue_log", offset=0)
    response = Client(REMOTE_ADDR="198.51.100.9").get("/healthz")
    assert json.loads(response.content) == {"status": "ok"}
    detail = Client(REMOTE_ADDR="127.0.0.1").get("/healthz")  # METRICS_ALLOWED_NETWORKS
    assert b"pbx-host-7:4242" in detail.content


# ----------------------------------------------------------------------------- CSP
# Issue 10, E: HTML pages carry a strict Content-Security-Policy and a Permissions-Policy.
# tests/dashboard/test_browser.py checks in Chromium that no page breaks one.

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "object-src": "'none'",
}


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    directives = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in directives}


def test_html_pages_carry_a_strict_csp_and_a_permissions_policy(admin_client, client):
    pages = {
        "login": client.get("/accounts/login/"),
        "admin login": client.get("/admin/login/"),
        "admin": admin_client.get("/admin/"),
        "admin agendas": admin_client.get("/admin/agenda/agenda/"),
        "dashboard": admin_client.get("/dashboard/"),
    }
    for label, response in pages.items():
        assert response["Content-Type"].startswith("text/html"), label
        directives = policy(response)
        assert directives | STRICT == directives, (label, directives)
        connect = directives["connect-src"].split()
        assert connect[0] == "'self'", label
        assert {"ws://testserver", "wss://testserver"} <= set(connect), label
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], label
        permissions = response["Permissions-Policy"]
        assert "camera=()" in permissions
        assert "microphone=()" in permissions
        assert "geolocation=()" in permissions


def test_the_api_docs_page_loads_its_script_from_a_file_under_its_own_policy(client):
    response = client.get("/api/docs/")
    directives = policy(response)
    assert directives["script-src"] == "'self'"  # the init script is a file now, not inline
    assert directives["frame-ancestors"] == "'none'"
    html = response.content.decode()
    assert "<script>" not in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_json_answers_carry_no_html_policy(api, company):
    response = api.get("/blf-users/onfarma")
    assert response["Content-Type"].startswith("application/json")
    assert "Content-Security-Policy" not in response


# ----------------------------------------------------------------------------- availability


def test_redis_reads_outlast_the_channel_layers_blocking_pop():
    """redis-py 8 defaults to a 5 s read timeout, channels-redis pops for 5 s: idle streams died."""
    from channels_redis.core import RedisChannelLayer

    from swanproject import settings as swan_settings

    options = swan_settings.CHANNEL_LAYER_REDIS_OPTIONS
    assert options["socket_timeout"] > RedisChannelLayer.brpop_timeout + 5
    assert options["socket_connect_timeout"]
    assert swan_settings.CACHE_REDIS_OPTIONS["socket_timeout"] <= 5  # requests never hang on it


def test_the_redis_channel_layer_gets_the_timeouts(settings):
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is unset: the in-memory channel layer has no socket")
    from channels.layers import get_channel_layer

    (host,) = get_channel_layer().hosts
    assert host["socket_timeout"] == 15
    assert settings.CACHES["default"]["OPTIONS"]["socket_timeout"] == 2


# ----------------------------------------------------------------------------- orphaned keys

ORPHAN_REQUESTS = [
    ("GET", "/blf-users/beta", None),
    ("GET", "/company-numbers/beta", None),
    ("GET", "/userStatus/300", None),
    ("POST", "/userStatus/300", {"status": "busy", "reason": "x"}),
    ("GET", "/username/200?company=beta", None),
    ("GET", "/last-calls/300", None),
    ("GET", "/recording/900.1/300", None),
    ("GET", "/current-calls/300", None),
    ("GET", "/web-phone-username/300", None),
    ("POST", "/user-unregister/300", None),
    ("POST", f"/terminal-register/{B_MAC}", None),
    ("DELETE", "/delete-phones-agenda", {"name": "agenda-b"}),
]


@pytest.fixture
def orphan_key(tenants, make_company, api_for) -> APIClient:
    """A key limited to company C, which is then deleted."""
    gone = make_company(slug="compc", name="Comp C")
    client = api_for(gone)
    gone.delete()
    return client


@pytest.mark.parametrize(("method", "path", "body"), ORPHAN_REQUESTS, ids=str)
def test_a_key_whose_companies_are_all_deleted_sees_nothing(
    method, path, body, orphan_key, api, gateway
):
    before = snapshot()
    envelope(send(orphan_key, method, path, body), 404)
    assert gateway.calls == []
    assert snapshot() == before
    assert send(api, method, path, body).status_code != 404  # the control: B's object is there


def test_a_key_whose_companies_are_all_deleted_gets_empty_queues(orphan_key, api):
    params = {"queues[g][]": "q-beta"}
    assert ok(api.get("/queues-status", params))["queues"]["g"]["members"] == ["300"]
    theirs = ok(orphan_key.get("/queues-status", params))["queues"]["g"]
    assert theirs["members"] == []
    assert theirs["status"]["completed"] == 0


def test_a_key_whose_companies_are_all_deleted_creates_no_agenda(orphan_key):
    phones = [{"name": "X", "number": "600000001"}]
    body = envelope(
        send(orphan_key, "POST", "/update-agenda", {"name": "nueva", "phones": phones}), 403
    )
    assert "nueva" not in body["error-msg"]
    with_company = {"name": "nueva", "company": "beta", "phones": phones}
    envelope(send(orphan_key, "POST", "/update-agenda", with_company), 404)
    assert not Agenda.objects.filter(name="nueva").exists()


def test_a_key_with_no_companies_is_limited_unless_it_says_all(tenants, make_api_key):
    limited = APIClient()
    limited.credentials(HTTP_X_API_KEY=make_api_key(all_companies=False))
    envelope(limited.get("/blf-users/beta"), 404)
    everything = APIClient()
    everything.credentials(HTTP_X_API_KEY=make_api_key(all_companies=True))
    assert [row["extension"] for row in ok(everything.get("/blf-users/beta"))] == ["200", "300"]


# ----------------------------------------------------------------------------- agenda names


def _answer(response, name: str) -> tuple[int, str]:
    return response.status_code, response.content.decode().replace(name, "NAME")


@pytest.mark.parametrize("extra", [{}, {"company": "alpha"}, {"company": "beta"}], ids=str)
def test_an_agenda_name_taken_elsewhere_answers_as_any_taken_name(extra, alpha_key, tenants):
    """Unique names make "taken" visible; whose it is (B's or nobody's) never is."""
    before = snapshot()
    answers = {
        name: _answer(
            send(alpha_key, "POST", "/update-agenda", {"name": name, "phones": PHONES, **extra}),
            name,
        )
        for name in ("agenda-b", "agenda-free")
    }
    assert answers["agenda-b"] == answers["agenda-free"]
    status, body = answers["agenda-b"]
    assert status == (404 if extra.get("company") == "beta" else 409)
    assert "Beta SL" not in body
    if status == 409:
        assert "beta" not in body
    assert snapshot() == before


def test_a_taken_agenda_name_with_a_foreign_company_answers_as_a_free_name(alpha_key, tenants):
    """The company is checked first: naming B answers 404 whatever the agenda name."""
    params = {"phones": PHONES, "company": "beta"}
    taken = send(alpha_key, "POST", "/update-agenda", {"name": "agenda-b", **params})
    free = send(alpha_key, "POST", "/update-agenda", {"name": "agenda-nueva", **params})
    assert envelope(taken, 404) == envelope(free, 404)


def test_a_key_of_several_companies_is_asked_for_the_company_before_the_name(
    tenants, make_company, api_for
):
    gamma = make_company(slug="gamma", name="Gamma SL")
    both = api_for(tenants["alpha"], gamma)
    taken = send(both, "POST", "/update-agenda", {"name": "agenda-b", "phones": PHONES})
    free = send(both, "POST", "/update-agenda", {"name": "agenda-nueva", "phones": PHONES})
    assert envelope(taken, 400) == envelope(free, 400)
    assert not Agenda.objects.filter(name="agenda-nueva").exists()


def test_a_taken_agenda_name_says_so_without_naming_the_owner(alpha_key, settings):
    settings.LANGUAGE_CODE = "en"
    body = envelope(
        send(alpha_key, "POST", "/update-agenda", {"name": "agenda-b", "phones": PHONES}), 409
    )
    assert body["error-msg"] == "The agenda name 'agenda-b' is taken: choose another."
    assert ok(send(alpha_key, "POST", "/update-agenda", {"name": "agenda-a", "phones": PHONES}))


@pytest.mark.parametrize("phones", [None, ["931000001"]], ids=["all phones", "some phones"])
def test_deleting_phones_of_another_companys_agenda_answers_as_an_unknown_name(
    phones, alpha_key, tenants
):
    before = snapshot()
    extra = {} if phones is None else {"phones": phones}
    answers = {
        name: _answer(
            send(alpha_key, "DELETE", "/delete-phones-agenda", {"name": name, **extra}), name
        )
        for name in ("agenda-b", "agenda-free", "agenda-ghost")
    }
    assert answers["agenda-b"] == answers["agenda-free"] == answers["agenda-ghost"]
    assert answers["agenda-b"][0] == 404
    assert snapshot() == before


def test_the_migration_keeps_keys_without_companies_unrestricted(make_company, make_api_key):
    """Until 0008 a key without companies saw all of them; it still does, now explicitly."""
    migration = import_module("pbx.migrations.0008_apikey_all_companies")
    old_empty = ApiKey.objects.get(key_hash=hash_api_key(make_api_key(all_companies=False)))
    old_limited = ApiKey.objects.get(key_hash=hash_api_key(make_api_key(make_company(slug="x"))))

    migration.all_companies_for_keys_without_companies(django_apps, None)

    assert ApiKey.objects.get(pk=old_empty.pk).all_companies is True
    assert ApiKey.objects.get(pk=old_limited.pk).all_companies is False


# ----------------------------------------------------------------------------- recording links


def _raw_of(tenants) -> str:
    """Another key of company B."""
    key = ApiKey(name="other-b")
    raw = key.set_new_key()
    key.save()
    key.companies.set([tenants["beta"]])
    return raw


def _revoke_by_deactivating(key: ApiKey, tenants) -> None:
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)


def _revoke_by_deleting(key: ApiKey, tenants) -> None:
    key.delete()


def _revoke_by_rotating(key: ApiKey, tenants) -> None:
    key.set_new_key()
    key.save()


def _revoke_by_taking_the_company(key: ApiKey, tenants) -> None:
    key.companies.set([tenants["alpha"]])


REVOCATIONS = {
    "deactivated": _revoke_by_deactivating,
    "deleted": _revoke_by_deleting,
    "rotated": _revoke_by_rotating,
    "company taken away": _revoke_by_taking_the_company,
}


@pytest.mark.parametrize("revoke", REVOCATIONS, ids=str)
def test_a_recording_link_dies_with_the_key_that_issued_it(revoke, tenants, beta_key, settings):
    settings.LANGUAGE_CODE = "en"
    path = ok(beta_key.get("/recording/900.1/300"))["path"]
    other = ok(APIClient(HTTP_X_API_KEY=_raw_of(tenants)).get("/recording/900.1/300"))["path"]
    assert APIClient().get(path).status_code == 200
    REVOCATIONS[revoke](_key_of(beta_key), tenants)
    body = envelope(APIClient().get(path, HTTP_ACCEPT_LANGUAGE="en"), 403)
    assert (
        body["error-msg"] == "This recording link was issued by an API key that is no longer valid."
    )
    assert APIClient().get(other).status_code == 200  # another key's link is unaffected


def test_a_recording_link_of_an_all_companies_key_survives_a_company_list_change(
    tenants, api_for, settings
):
    everything = api_for()
    path = ok(everything.get("/recording/900.1/300", {"company": "beta"}))["path"]
    assert APIClient().get(path).status_code == 200


# ----------------------------------------------------------------------------- failed keys

WRONG = {"HTTP_X_API_KEY": "swan_wrong-key-0123456789abcdefghijkl"}


@pytest.fixture
def failure_limits(settings):
    settings.API_KEY_FAILURE_LIMIT = 5
    settings.AUTH_FAILURE_WINDOW_SECONDS = 300
    settings.AUTH_LOCKOUT_SECONDS = 120
    settings.LANGUAGE_CODE = "en"


def test_wrong_keys_from_one_address_are_refused_after_the_limit(
    tenants, failure_limits, api, make_api_key
):
    for _ in range(5):
        envelope(APIClient().get("/blf-users/alpha", **WRONG), 401)
    for _ in range(95):
        response = APIClient().get("/blf-users/alpha", **WRONG)
        body = envelope(response, 429)
    assert 0 < int(response["Retry-After"]) <= 120
    assert body["error-msg"] == (
        f"Too many failed API key attempts from your address; retry in "
        f"{response['Retry-After']} seconds."
    )
    # Other addresses are not locked out; a valid key from the locked address still works.
    envelope(APIClient().get("/blf-users/alpha", REMOTE_ADDR="10.0.0.9", **WRONG), 401)
    ok(api.get("/blf-users/alpha"))
    inactive = make_api_key(is_active=False)
    envelope(APIClient().get("/blf-users/alpha", HTTP_X_API_KEY=inactive), 429)


def test_the_lockout_ends_and_counting_starts_again(tenants, failure_limits, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(lockout, "_now", lambda: clock[0])
    for _ in range(5):
        envelope(APIClient().get("/blf-users/alpha", **WRONG), 401)
    response = APIClient().get("/blf-users/alpha", **WRONG)
    envelope(response, 429)
    assert response["Retry-After"] == "120"
    clock[0] += 60
    assert APIClient().get("/blf-users/alpha", **WRONG)["Retry-After"] == "60"
    clock[0] += 61
    cache.delete(lockout.lock_key(lockout.API_KEY, "127.0.0.1"))  # the cache's own expiry
    envelope(APIClient().get("/blf-users/alpha", **WRONG), 401)


def test_wrong_keys_are_answered_401_when_the_cache_is_down(
    tenants, failure_limits, api, monkeypatch
):
    class DownCache:
        def __getattr__(self, name):
            raise ConnectionError("cache down")

    monkeypatch.setattr(lockout, "cache", DownCache())
    for _ in range(8):
        envelope(APIClient().get("/blf-users/alpha", **WRONG), 401)
    ok(api.get("/blf-users/alpha"))


def test_a_failure_counter_that_expires_between_add_and_incr_starts_anew(
    failure_limits, monkeypatch
):
    class RacingCache:
        """`add` sees the counter still there; `incr` finds it expired."""

        def __init__(self):
            self.added = []

        def add(self, key, value, timeout):
            self.added.append((key, value))
            return len(self.added) > 1

        def incr(self, key):
            raise ValueError(key)

    racing = RacingCache()
    monkeypatch.setattr(lockout, "cache", racing)
    lockout.failure_record(kind=lockout.API_KEY, address="10.0.0.1")
    assert racing.added == [(lockout.count_key(lockout.API_KEY, "10.0.0.1"), 1)] * 2
