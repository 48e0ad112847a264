"""Operator endpoints: /healthz (JSON, 503 when a needed part is down) and /metrics (Prometheus)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from swanproject.metrics import requests_snapshot

logger = logging.getLogger("swan.ops")


def _check_database() -> dict[str, Any]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        logger.warning("healthz database down error=%s", exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "seconds": round(time.monotonic() - started, 4)}


def _check_channel_layer() -> dict[str, Any]:
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    if not settings.REDIS_URL:
        return {"ok": True, "backend": backend}
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        client.ping()
        client.close()
    except Exception as exc:
        logger.warning("healthz channel layer down error=%s", exc)
        return {"ok": False, "backend": backend, "error": type(exc).__name__}
    return {"ok": True, "backend": backend}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _check_pbx() -> dict[str, Any]:
    """Every PBX served: is its listener alive (holds the lease) and connected? `ok` when all are."""
    from pbx.directory.pbxes import served_pbx_keys
    from pbx.models import ListenerLease

    leases = {lease.name: lease for lease in ListenerLease.objects.all()}
    now = timezone.now()
    pbxes: dict[str, dict[str, Any]] = {}
    for name in served_pbx_keys():
        lease = leases.get(name)
        if lease is None:
            pbxes[name] = {"ok": False, "connected": False, "listener": None}
            continue
        listener_alive = bool(lease.holder) and lease.expires_at > now
        pbxes[name] = {
            "ok": listener_alive and lease.connected,
            "connected": lease.connected,
            "listener": lease.holder or None,
            "since": _iso(lease.connection_changed_at),
            "last_event_at": _iso(lease.last_event_at),
            "last_resync_at": _iso(lease.last_resync_at),
            "events_processed": lease.events_processed,
        }
    return {
        "ok": all(pbx["ok"] for pbx in pbxes.values()),
        "connected": all(pbx["connected"] for pbx in pbxes.values()),
        "pbxes": pbxes,
    }


def _bytes_behind(source: str, offset: int) -> int | None:
    try:
        return max(0, os.stat(source).st_size - offset)
    except OSError:
        return None  # not a file on this host (a database source, or another machine's file)


def _check_ingest() -> dict[str, Any]:
    from pbx.models import IngestCursor

    now = timezone.now()
    sources = []
    for cursor in IngestCursor.objects.order_by("source"):
        behind = _bytes_behind(cursor.source, cursor.offset)
        idle = (now - cursor.updated_at).total_seconds()
        sources.append(
            {
                "source": cursor.source,
                "kind": cursor.kind,
                "bytes_behind": behind,
                "seconds_since_progress": round(idle, 1),
                "lagging": bool(behind) and idle > settings.HEALTHZ_INGEST_LAG_SECONDS,
            }
        )
    lag = max((s["seconds_since_progress"] for s in sources if s["bytes_behind"]), default=0.0)
    return {
        "ok": not any(s["lagging"] for s in sources),
        "lag_seconds": lag,
        "sources": sources,
    }


def _guarded(check) -> dict[str, Any]:
    try:
        return check()
    except Exception as exc:  # a check that needs the database fails with it, not the page
        return {"ok": False, "error": type(exc).__name__}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Up or down (HTTP 503 when a part of HEALTHZ_REQUIRED is down); every part's state only for
    the operators /metrics serves (it names the listener's host and PID and the ingest paths)."""
    database = _check_database()
    checks = {
        "database": database,
        "channel_layer": _check_channel_layer(),
        "pbx": _guarded(_check_pbx) if database["ok"] else {"ok": False, "error": "database"},
        "ingest": _guarded(_check_ingest) if database["ok"] else {"ok": False, "error": "database"},
    }
    failing = [name for name in settings.HEALTHZ_REQUIRED if not checks[name]["ok"]]
    body: dict[str, Any] = {"status": "fail" if failing else "ok"}
    if _operator(request):
        body.update(failing=failing, checks=checks)
    return JsonResponse(body, status=503 if failing else 200)


def _operator(request: HttpRequest) -> bool:
    """A client of METRICS_ALLOWED_NETWORKS, or one bearing METRICS_TOKEN."""
    token = settings.METRICS_TOKEN
    offered = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    if token and hmac.compare_digest(offered, f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(net, strict=False)
        for net in settings.METRICS_ALLOWED_NETWORKS
    )


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _render_metrics() -> str:
    lines = [
        "# HELP swan_http_requests_total Answers of this process by endpoint, method and status.",
        "# TYPE swan_http_requests_total counter",
    ]
    # The web tier's workers share one port and a scrape reaches one of them: each worker's
    # counters are a series of their own (its PID), or they would seem to jump back and forth.
    worker = os.getpid()
    for (endpoint, method, status), count in sorted(requests_snapshot().items()):
        lines.append(
            f'swan_http_requests_total{{endpoint="{_label(endpoint)}",method="{_label(method)}",'
            f'status="{status}",worker="{worker}"}} {count}'
        )
    pbx = _guarded(_check_pbx)
    lines += [
        "# HELP swan_ami_connected 1 while the PBX's active listener is connected to it.",
        "# TYPE swan_ami_connected gauge",
    ]
    for name, state in sorted(pbx.get("pbxes", {}).items()):
        connected = 1 if state["connected"] and state["ok"] else 0
        lines.append(f'swan_ami_connected{{pbx="{_label(name)}"}} {connected}')
    lines += [
        "# HELP swan_listener_events_total AMI events applied by the PBX's active listener.",
        "# TYPE swan_listener_events_total counter",
    ]
    for name, state in sorted(pbx.get("pbxes", {}).items()):
        events = state.get("events_processed") or 0
        lines.append(f'swan_listener_events_total{{pbx="{_label(name)}"}} {events}')
    ingest = _guarded(_check_ingest)
    lines += [
        "# HELP swan_ingest_lag_seconds Seconds since an ingest source with unread data progressed.",
        "# TYPE swan_ingest_lag_seconds gauge",
    ]
    for source in ingest.get("sources", []):
        lag = source["seconds_since_progress"] if source["bytes_behind"] else 0
        lines.append(f'swan_ingest_lag_seconds{{source="{_label(source["source"])}"}} {lag}')
        if source["bytes_behind"] is not None:
            lines.append(
                f'swan_ingest_bytes_behind{{source="{_label(source["source"])}"}} '
                f"{source['bytes_behind']}"
            )
    return "\n".join(lines) + "\n"


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; only for METRICS_ALLOWED_NETWORKS or the METRICS_TOKEN bearer."""
    if not _operator(request):
        from swanproject.envelope import error_response

        return error_response(403, "Metrics are not public.")
    return HttpResponse(_render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")
