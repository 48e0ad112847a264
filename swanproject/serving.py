"""How daphne and gunicorn serve the app: request bodies left to Django, static files with envelope errors."""

from __future__ import annotations

import inspect
import logging

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler, StaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse

from swanproject import envelope

logger = logging.getLogger("swan.serving")


class EnvelopeStaticFilesHandler(ASGIStaticFilesHandler):
    """Django's static files handler; a path it refuses (`/static/..`, a NUL) is a 404 envelope.

    Django's own handler catches only Http404: SuspiciousFileOperation and ValueError became
    an HTML 500.
    """

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        try:
            return await super().get_response_async(request)
        except (SuspiciousOperation, ValueError) as exc:
            logger.warning("static path refused path=%r error=%s", request.path, exc)
            return envelope.not_found_view(request)


class EnvelopeWSGIStaticFilesHandler(StaticFilesHandler):
    """The same for the WSGI tier (gunicorn, `make serve`)."""

    def get_response(self, request: HttpRequest) -> HttpResponse:
        try:
            return super().get_response(request)
        except (SuspiciousOperation, ValueError) as exc:
            logger.warning("static path refused path=%r error=%s", request.path, exc)
            return envelope.not_found_view(request)


def leave_request_bodies_to_django() -> None:
    """Stops Twisted parsing POSTed form bodies inside daphne, before Django sees the request.

    Twisted answers a multipart body it cannot parse (no or bad boundary) with a bare
    `400 Bad Request` and hangs up; daphne never reads what Twisted parsed, so turning the
    parsing off loses nothing, and Django answers such bodies with the envelope.
    """
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # served by another ASGI server
        return
    if getattr(WebRequest, "swan_bodies_left_to_django", False):
        return
    if (
        "parsePOSTFormSubmission"
        not in inspect.signature(WebRequest.__mro__[1].__init__).parameters
    ):
        logger.warning("twisted too old to leave form bodies to django: bare 400s remain")
        return
    original_init = WebRequest.__init__

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original_init(self, *args, **kwargs)

    WebRequest.__init__ = __init__
    WebRequest.swan_bodies_left_to_django = True


class SessionsWhenCookies:
    """channels' session and user middleware for websockets that carry a cookie (browsers) only.

    Programs with an API key send no cookie. For them channels' session wrapper looked at the
    (empty) session on every message sent, ~5% of daphne's time with 500 sockets, and the
    anonymous user was resolved on a thread hop at every connect.
    """

    def __init__(self, inner):
        from channels.auth import AuthMiddlewareStack

        self.inner = inner
        self.with_sessions = AuthMiddlewareStack(inner)

    async def __call__(self, scope, receive, send):
        if any(name.lower() == b"cookie" for name, _value in scope.get("headers", ())):
            return await self.with_sessions(scope, receive, send)
        return await self.inner(scope, receive, send)
