"""Per-process counters for /metrics: requests by endpoint, method and status.

Each worker process (gunicorn's, daphne's) counts its own requests, labelled with its PID by
/metrics: a scrape reaches one worker, and each worker's counters are a series of their own.
Nothing here touches the database or the cache on the request path.
"""

from __future__ import annotations

import threading
from collections import Counter

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

_lock = threading.Lock()
_requests: Counter[tuple[str, str, int]] = Counter()


def record_request(endpoint: str, method: str, status: int) -> None:
    with _lock:
        _requests[(endpoint, method, status)] += 1


def requests_snapshot() -> dict[tuple[str, str, int], int]:
    with _lock:
        return dict(_requests)


def _endpoint_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.url_name:
        return "unmatched"
    return match.url_name


class RequestMetricsMiddleware:
    """Counts every answer by the URL name that served it (never the raw path: bounded labels)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        response = self.get_response(request)
        record_request(_endpoint_of(request), request.method, response.status_code)
        return response

    async def _acall(self, request):
        response = await self.get_response(request)
        record_request(_endpoint_of(request), request.method, response.status_code)
        return response
