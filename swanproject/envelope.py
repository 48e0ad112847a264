"""The SWAN envelope: every answer is {"error", "error-msg", "result"}, errors included."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from pbx.errors import DomainError, message_of, status_of
from pbx.gateway import PbxUnavailable
from pbx.prerendered import Prerendered, json_bytes

logger = logging.getLogger("swan.api")


class SwanError(exceptions.APIException):
    """A domain error that the edge answers with its own HTTP status and message.

    `result` is normally null; a few contract answers (web-phone-username's 409) carry one.
    """

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, status_code: int | None = None, result: Any = None):
        super().__init__(detail=message)
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        self.result = result


class ServiceUnavailable(SwanError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


def envelope(*, result: Any = None, error_msg: str | None = None) -> dict[str, Any]:
    return {"error": error_msg is not None, "error-msg": error_msg, "result": result}


_OK_PREFIX = b'{"error":false,"error-msg":null,"result":'


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with a body nested past Python's recursion limit, or holding a number
    past its int-string limit, answered as a 400 that says so."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError(_("The JSON body is nested too deeply.")) from exc
        except exceptions.ParseError as exc:
            # An integer past Python's int-string limit: its message tells how to lift the limit
            # in Python, which is nothing for a client to read. No exception type of its own.
            if "integer string conversion" in str(exc.__context__):
                raise exceptions.ParseError(
                    _("The JSON body holds a number that is too long.")
                ) from exc
            raise


class FirstRendererNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with its answer for a request that states no preference (no Accept,
    or `*/*`, and no `?format=`) given at once: the view's first renderer. Helpdesk clients
    send no Accept; parsing it cost more than the rest of a cached userStatus answer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if (
            accept in ("", "*/*")
            and not format_suffix
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            renderer = renderers[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class _NoFormatParameter:
    URL_FORMAT_OVERRIDE = None  # the one setting DRF's negotiation reads


class SwanNegotiation(FirstRendererNegotiation):
    """The SWAN endpoints': `?format=` is no parameter of the contract, so it picks nothing (DRF
    answered a 404 for a path that exists when it named no renderer)."""

    settings = _NoFormatParameter


class EnvelopeRenderer(BaseRenderer):
    """Wraps a successful view's data in the envelope; error bodies come enveloped already."""

    media_type = "application/json"
    format = "json"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None and response.exception:
            return json_bytes(data)
        if isinstance(data, Prerendered):
            return _OK_PREFIX + data.json + b"}"
        return json_bytes(envelope(result=data))


def _validation_message(detail: Any) -> str:
    """Flattens DRF's nested validation detail into one sentence naming the field."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _validation_message(value)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_validation_message(item) for item in detail)
    return str(detail)


def _message_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, SwanError):
        return exc.message
    if isinstance(exc, exceptions.ValidationError):
        return _validation_message(exc.detail)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return (
            str(exc.detail)
            if isinstance(exc, exceptions.AuthenticationFailed)
            else _(
                "An API key is required: send it as 'Authorization: Bearer <key>' or 'X-Api-Key'."
            )
        )
    if isinstance(exc, exceptions.MethodNotAllowed):
        return str(exc.detail)
    if isinstance(exc, exceptions.Throttled):
        return _("Too many requests for this API key; retry in %(seconds)s seconds.") % {
            "seconds": (exc.wait and int(exc.wait + 0.999)) or 1
        }
    if isinstance(exc, exceptions.ParseError):
        return _("The request body could not be parsed: %(detail)s") % {"detail": exc.detail}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return str(exc.detail)
    return str(exc.detail)


class PayloadTooLarge(SwanError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def request_error(exc: Exception) -> SwanError | None:
    """Django's refusals of a request it cannot read, as SWAN errors naming the limit."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(
            _("The request body is larger than %(max)s bytes (DATA_UPLOAD_MAX_MEMORY_SIZE).")
            % {"max": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
        )
    if isinstance(exc, TooManyFieldsSent):
        return SwanError(
            _("The request has more than %(max)s parameters (DATA_UPLOAD_MAX_NUMBER_FIELDS).")
            % {"max": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}
        )
    if isinstance(exc, TooManyFilesSent):
        return SwanError(
            _("The request has more than %(max)s files (DATA_UPLOAD_MAX_NUMBER_FILES).")
            % {"max": settings.DATA_UPLOAD_MAX_NUMBER_FILES}
        )
    if isinstance(exc, MultiPartParserError):
        return SwanError(_("The request body could not be parsed: %(detail)s") % {"detail": exc})
    if isinstance(exc, BadRequest | SuspiciousOperation):
        return SwanError(_("Bad request."))
    return None


def domain_answer(exc: Exception) -> SwanError | None:
    """A domain error, or an unreachable PBX, as the SWAN error it is answered with."""
    status_code = status_of(exc)
    if status_code is None:
        return None
    if isinstance(exc, PbxUnavailable):
        logger.warning("pbx unavailable error=%s", exc)
    result = exc.result if isinstance(exc, DomainError) else None
    return SwanError(message_of(exc), status_code=status_code, result=result)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: every error, known or not, becomes an enveloped answer."""
    exc = request_error(exc) or domain_answer(exc) or exc
    if isinstance(exc, Http404):
        exc = SwanError(str(exc) or _("Not found."), status_code=status.HTTP_404_NOT_FOUND)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or _("Permission denied."))

    if isinstance(exc, OperationalError | InterfaceError):  # lost or refused connection
        logger.error("database unavailable error=%s", exc)
        exc = ServiceUnavailable(_("The database is not available right now; try again later."))

    if not isinstance(exc, exceptions.APIException):
        view = context.get("view")
        logger.exception("unhandled error view=%s", type(view).__name__ if view else "-")
        return Response(
            envelope(error_msg=_("Internal server error.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait + 0.999))
    result = exc.result if isinstance(exc, SwanError) else None
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc.status_code = status.HTTP_401_UNAUTHORIZED
    body = envelope(error_msg=_message_for(exc), result=result)
    body["error"] = True
    return Response(body, status=exc.status_code, headers=headers)


def error_response(status_code: int, message: str) -> HttpResponse:
    return HttpResponse(
        json_bytes(envelope(error_msg=message)),
        status=status_code,
        content_type="application/json; charset=utf-8",
    )


@csrf_exempt  # no session auth here: a POST without a CSRF token still gets the JSON 404
def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Unknown paths, for every method: a 404 envelope, never Django's HTML page."""
    return error_response(404, _("No endpoint at '%(path)s'.") % {"path": request.path})


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400s (BadRequest, SuspiciousOperation, a body over its limits) as envelopes."""
    error = request_error(exception) if exception is not None else None
    if error is None:
        return error_response(400, _("Bad request."))
    return error_response(error.status_code, error.message)


def permission_denied_view(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    return error_response(403, _("Permission denied."))


def server_error_view(request: HttpRequest) -> HttpResponse:
    return error_response(500, _("Internal server error."))


def _legacy_status(response: HttpResponse) -> HttpResponse:
    if (
        settings.SWAN_ALWAYS_HTTP_200
        and response.status_code != 200
        and response.get("Content-Type", "").startswith("application/json")
    ):
        response.status_code = 200
    return response


class LegacyStatusMiddleware:
    """With SWAN_ALWAYS_HTTP_200, enveloped errors go out as HTTP 200 for clients that read only
    the body. Sync and async capable, so it never forces a thread hop under ASGI."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        return _legacy_status(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return _legacy_status(await self.get_response(request))
