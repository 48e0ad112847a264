"""URLs: the SWAN v2 paths written out by hand (never routers), admin, API docs, and a JSON 404."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from agenda.views import AgendaPhonesDeleteView, AgendaUpdateView
from pbx.views import (
    BlfUsersListView,
    CallPlaceView,
    CompanyNumbersListView,
    UsernameGetView,
    UserStatusView,
    UserUnregisterView,
)
from swanproject import envelope
from terminals.views import TerminalRegisterView

_PREFIX = f"{settings.SWAN_URL_PREFIX}/" if settings.SWAN_URL_PREFIX else ""
_SEGMENT = r"[^/]+"


def swan_path(route: str, view, name: str):
    """A legacy path: exact, case-sensitive, with or without a trailing slash, never redirected."""
    pattern = route.replace("{", "(?P<").replace("}", f">{_SEGMENT})")
    return re_path(rf"^{_PREFIX}{pattern}/?$", view.as_view(), name=name)


swan_urlpatterns = [
    swan_path("userStatus/{extension}", UserStatusView, "user-status"),
    swan_path("username/{extension}", UsernameGetView, "username"),
    swan_path("blf-users/{company}", BlfUsersListView, "blf-users"),
    swan_path("company-numbers/{company}", CompanyNumbersListView, "company-numbers"),
    swan_path("update-agenda", AgendaUpdateView, "update-agenda"),
    swan_path("delete-phones-agenda", AgendaPhonesDeleteView, "delete-phones-agenda"),
    swan_path("call/{destination}", CallPlaceView, "call"),
    swan_path("user-unregister/{extension}", UserUnregisterView, "user-unregister"),
    swan_path("terminal-register/{mac}", TerminalRegisterView, "terminal-register"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    *swan_urlpatterns,
    re_path(r"^.*$", envelope.not_found_view),
]

handler400 = envelope.bad_request_view
handler403 = envelope.permission_denied_view
handler404 = envelope.not_found_view
handler500 = envelope.server_error_view
