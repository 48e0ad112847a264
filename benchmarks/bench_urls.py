"""Benchmark-only URLconf: every SWAN path unchanged, plus `/bench/bare`, a bare Django view.

The bare view goes through the same server, middleware and sync-view thread hop as the SWAN
endpoints, but no DRF, authentication, throttling, database or envelope: the ceiling the
endpoints are compared with.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from swanproject.urls import handler400, handler403, handler404, handler500

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "n": 42})


urlpatterns = [
    path("bench/bare", bare, name="bench-bare"),
    path("", include("swanproject.urls")),  # after the bare view: SWAN ends with a catch-all
]
