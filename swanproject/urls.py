"""URLs: the SWAN v2 paths written out by hand (never routers), admin, API docs, and a JSON 404."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from dashboard.forms import AdminLoginForm, LoginForm
from pbx.api.agenda_views import AgendaPhonesDeleteView, AgendaUpdateView
from pbx.api.history_views import (
    LastCallsListView,
    QueuesStatusView,
    RecordingFileView,
    RecordingGetView,
    UserResumeView,
)
from pbx.api.report_views import AgentReportView, QueueReportView
from pbx.api.terminal_views import TerminalRegisterView
from pbx.api.views import (
    BlfUsersListView,
    CallPlaceView,
    CompanyNumbersListView,
    CurrentCallsListView,
    UsernameGetView,
    UserStatusView,
    UserUnregisterView,
    WebPhoneUsernameView,
)
from swanproject import envelope, ops
from swanproject.landing import landing_view

# Both login pages lock an address out after LOGIN_FAILURE_LIMIT wrong passwords.
admin.site.login_form = AdminLoginForm
admin.site.site_header = _("SWAN administration")
admin.site.site_title = _("SWAN admin")
admin.site.index_title = _("Companies, PBX and call history")

# Taken literally: a prefix of `swan.v2` must not also serve `swanXv2/…`. Only the characters
# special to a regular expression are escaped (re.escape also escapes `-`, which the OpenAPI
# schema would then show as `swan\-v2`).
_PREFIX = (
    re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", settings.SWAN_URL_PREFIX) + "/"
    if settings.SWAN_URL_PREFIX
    else ""
)
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
    swan_path("current-calls/{extension}", CurrentCallsListView, "current-calls"),
    swan_path("web-phone-username/{extension}", WebPhoneUsernameView, "web-phone-username"),
    swan_path("call/{destination}", CallPlaceView, "call"),
    swan_path("user-unregister/{extension}", UserUnregisterView, "user-unregister"),
    swan_path("terminal-register/{mac}", TerminalRegisterView, "terminal-register"),
    swan_path("queues-status", QueuesStatusView, "queues-status"),
    swan_path("user-resume/{extension}", UserResumeView, "user-resume"),
    swan_path("last-calls/{extension}", LastCallsListView, "last-calls"),
    swan_path("recording/{callID}/{extension}", RecordingGetView, "recording"),
    swan_path("recording-file/{token}", RecordingFileView, "recording-file"),
    swan_path("api/reports/queues", QueueReportView, "report-queues"),
    swan_path("api/reports/agents", AgentReportView, "report-agents"),
]

urlpatterns = [
    path("", landing_view, name="landing"),
    path("admin/", admin.site.urls),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
    path(
        "api/schema/",
        # JSON first, so that an unknown ?format= gets a JSON answer, not YAML
        SpectacularAPIView.as_view(
            renderer_classes=[
                OpenApiJsonRenderer2,
                OpenApiJsonRenderer,
                OpenApiYamlRenderer,
                OpenApiYamlRenderer2,
            ]
        ),
        name="api-schema",
    ),
    # The split view serves Swagger UI's init script as a file (?script=): no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    *swan_urlpatterns,
    path("dashboard/", include("dashboard.urls")),
    path("accounts/login/", LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    re_path(r"^.*$", envelope.not_found_view),
]

handler400 = envelope.bad_request_view
handler403 = envelope.permission_denied_view
handler404 = envelope.not_found_view
handler500 = envelope.server_error_view
