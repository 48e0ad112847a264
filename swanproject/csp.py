"""Content-Security-Policy and Permissions-Policy on HTML answers (Django 5.2 has no CSP of its own)."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse


def _websocket_sources(request: HttpRequest) -> str:
    """The page's own host as ws:// and wss://: not every browser counts them in 'self'; or,
    with SWAN_WEBSOCKET_PORT, the same host name on the websockets' own port."""
    try:
        host = request.get_host()
    except DisallowedHost:  # Django's own 400 page for that host: 'self' alone
        return ""
    if settings.SWAN_WEBSOCKET_PORT:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        host = f"{name}:{settings.SWAN_WEBSOCKET_PORT}"
    return f" ws://{host} wss://{host}"


def content_security_policy(request: HttpRequest) -> str:
    """The policy of this page: CONTENT_SECURITY_POLICY, or the docs page's own one."""
    match = getattr(request, "resolver_match", None)
    docs = match is not None and match.url_name == "api-docs"
    base = settings.CONTENT_SECURITY_POLICY_DOCS if docs else settings.CONTENT_SECURITY_POLICY
    return base.replace("{websockets}", _websocket_sources(request))


def _with_policies(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if response.get("Content-Type", "").startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy", content_security_policy(request))
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
    return response


class ContentSecurityPolicyMiddleware:
    """Sets both headers on HTML answers; JSON, audio and static files are left as they are."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        return _with_policies(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return _with_policies(request, await self.get_response(request))
