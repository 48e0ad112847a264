"""/healthz and /metrics, and how the API behaves when the database or Redis is down."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from pbx.directory import lookups
from pbx.models import Company, IngestCursor, ListenerLease, Pbx

pytestmark = pytest.mark.django_db


def test_healthz_ok_with_database_and_channel_layer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    data = json.loads(response.content)
    assert data["status"] == "ok"
    assert data["checks"]["database"]["ok"] is True
    assert data["checks"]["channel_layer"]["ok"] is True  # in memory, or Redis when REDIS_URL
    assert data["checks"]["pbx"]["connected"] is False  # no listener yet: reported, not required


def test_healthz_reports_the_listener_and_pbx_link(client):
    now = timezone.now()
    ListenerLease.objects.create(
        name="default",
        holder="host:1",
        expires_at=now + timedelta(seconds=20),
        connected=True,
        connection_changed_at=now,
        last_event_at=now,
        events_processed=42,
    )
    pbx = json.loads(client.get("/healthz").content)["checks"]["pbx"]
    assert (pbx["ok"], pbx["connected"]) == (True, True)
    default = pbx["pbxes"]["default"]
    assert (default["ok"], default["listener"], default["events_processed"]) == (True, "host:1", 42)


def test_healthz_and_metrics_show_each_pbx_link(client, settings):
    """Two PBXes: B's listener is down while A's is live; the page and the metrics say which."""
    now = timezone.now()
    for name in ("pbx-a", "pbx-b"):
        pbx = Pbx.objects.create(
            name=name, host="10.0.0.5", username="swan", secret_env="SWAN_PBX_X"
        )
        Company.objects.create(slug=f"c-{name}", name=f"C {name}", pbx=pbx)
    ListenerLease.objects.create(
        name="pbx-a", holder="host:1", expires_at=now + timedelta(seconds=20), connected=True
    )
    ListenerLease.objects.create(
        name="pbx-b", holder="", expires_at=now - timedelta(seconds=1), connected=False
    )
    pbx = json.loads(client.get("/healthz").content)["checks"]["pbx"]
    assert set(pbx["pbxes"]) == {"pbx-a", "pbx-b"}  # no company on the settings' PBX: not served
    assert (pbx["pbxes"]["pbx-a"]["ok"], pbx["pbxes"]["pbx-b"]["ok"], pbx["ok"]) == (
        True,
        False,
        False,
    )
    settings.HEALTHZ_REQUIRED = ["database", "pbx"]
    assert client.get("/healthz").status_code == 503
    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    assert 'swan_ami_connected{pbx="pbx-a"} 1' in text
    assert 'swan_ami_connected{pbx="pbx-b"} 0' in text


def test_healthz_is_503_when_a_required_part_is_down(client, settings):
    settings.HEALTHZ_REQUIRED = ["database", "pbx"]
    response = client.get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.content)["failing"] == ["pbx"]


def test_healthz_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    data = json.loads(response.content)
    assert data["failing"] == ["channel_layer"]


def test_healthz_ingest_lag(client, tmp_path, settings):
    log = tmp_path / "queue_log"
    log.write_text("x" * 100)
    IngestCursor.objects.create(source=str(log), kind="queue_log", offset=40)
    IngestCursor.objects.filter(source=str(log)).update(
        updated_at=timezone.now() - timedelta(minutes=10)
    )
    settings.HEALTHZ_REQUIRED = ["database", "ingest"]
    response = client.get("/healthz")
    ingest = json.loads(response.content)["checks"]["ingest"]
    assert response.status_code == 503
    assert ingest["sources"][0]["bytes_behind"] == 60
    assert ingest["lag_seconds"] >= 599


def test_healthz_with_the_database_down_is_503(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("swanproject.ops.connection.cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    data = json.loads(response.content)
    assert data["checks"]["database"] == {"ok": False, "error": "OperationalError"}


def test_metrics_are_not_public(client):
    response = Client(REMOTE_ADDR="192.0.2.10").get("/metrics")
    assert response.status_code == 403
    assert json.loads(response.content)["error"] is True


def test_metrics_count_requests_by_endpoint_and_status(api, company, settings):
    api.get("/blf-users/onfarma")
    api.get("/blf-users/nowhere")
    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    worker = f'worker="{os.getpid()}"'
    assert (
        f'swan_http_requests_total{{endpoint="blf-users",method="GET",status="200",{worker}}}'
        in text
    )
    assert (
        f'swan_http_requests_total{{endpoint="blf-users",method="GET",status="404",{worker}}}'
        in text
    )
    assert 'swan_ami_connected{pbx="default"} 0' in text
    assert "# TYPE swan_listener_events_total counter" in text


def test_metrics_with_the_token_from_anywhere(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    client = Client(REMOTE_ADDR="192.0.2.10")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-tokeñ").status_code == 403


def test_database_down_is_a_503_envelope_and_recovers(api, company, monkeypatch):
    real = lookups.company_numbers

    def down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(lookups, "company_numbers", down)
    response = api.get("/company-numbers/onfarma")
    assert response.status_code == 503
    assert json.loads(response.content)["error"] is True
    monkeypatch.setattr(lookups, "company_numbers", real)
    assert api.get("/company-numbers/onfarma").status_code == 200


def test_the_api_keeps_answering_when_the_cache_is_down(api, company, monkeypatch):
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    assert api.get("/company-numbers/onfarma").status_code == 200


@pytest.fixture
def revealing_state(tmp_path):
    """A listener named by host and PID, and an ingest source with an absolute path."""
    now = timezone.now()
    ListenerLease.objects.create(
        name="default", holder="pbx-host-7:4242", expires_at=now + timedelta(seconds=20)
    )
    log = tmp_path / "queue_log"
    log.write_text("x")
    IngestCursor.objects.create(source=str(log), kind="queue_log", offset=0)
    return str(log)


@pytest.mark.parametrize(("required", "status", "word"), [([], 200, "ok"), (["pbx"], 503, "fail")])
def test_healthz_from_outside_says_only_up_or_down(
    revealing_state, settings, required, status, word
):
    settings.HEALTHZ_REQUIRED = ["database", *required]
    response = Client(REMOTE_ADDR="192.0.2.10").get("/healthz")
    assert response.status_code == status
    assert json.loads(response.content) == {"status": word}
    for secret in ("pbx-host-7", "4242", revealing_state):
        assert secret.encode() not in response.content


def test_healthz_detail_for_the_metrics_networks_or_token(revealing_state, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.1.0/24"]
    for client, headers in (
        (Client(REMOTE_ADDR="10.1.1.7"), {}),
        (Client(REMOTE_ADDR="192.0.2.10"), {"HTTP_AUTHORIZATION": "Bearer s3cret-token"}),
    ):
        data = json.loads(client.get("/healthz", **headers).content)
        assert data["checks"]["pbx"]["pbxes"]["default"]["listener"] == "pbx-host-7:4242"
        assert data["checks"]["ingest"]["sources"][0]["source"] == revealing_state
    wrong = Client(REMOTE_ADDR="192.0.2.10").get("/healthz", HTTP_AUTHORIZATION="Bearer wrong")
    assert json.loads(wrong.content) == {"status": "ok"}
