"""SWAN endpoints on the call history (queues-status, user-resume, last-calls, recording), thin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.core import signing
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.response import Response

from pbx.api.params import get_groups, get_int, get_str
from pbx.api.read_cache import live_cache
from pbx.api.views import SwanView
from pbx.errors import NotFound
from pbx.history import recordings
from pbx.history import selectors as history
from pbx.values import clean_extension
from swanproject.envelope import error_response

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")  # ASCII digits: \d would take ٣
# Positions past any file; keeps int() clear of Python's 4300-digit limit on hostile headers.
_FAR = 10**18
_CALL_ID = re.compile(r"^[\w.\-:@]{1,64}$")


class QueuesStatusView(SwanView):
    reads_live_state = True  # members and currentCalls are live

    def get(self, request: Request) -> Response:
        params = self.params(request)
        groups = get_groups(params, "queues", required=True)
        company = get_str(params, "company")
        self.live_probe(request, catch_up=True)
        return Response(
            live_cache.queues_status(client=request.user, groups=groups, company=company)
        )


class UserResumeView(SwanView):
    reads_live_state = True  # waiting-calls are live

    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        extension = clean_extension(extension)
        company = get_str(params, "company", required=True)
        groups = get_groups(params, "queues")
        department = get_str(params, "department")
        self.live_probe(request, catch_up=True)
        return Response(
            live_cache.user_resume(
                client=request.user,
                extension=extension,
                company=company,
                groups=groups,
                department=department,
            )
        )


class LastCallsListView(SwanView):
    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        return Response(
            history.last_calls(
                client=request.user,
                extension=clean_extension(extension),
                company=get_str(params, "company"),
                hours=get_int(params, "hours", default=24, minimum=1, maximum=720),
            )
        )


class RecordingGetView(SwanView):
    def get(self, request: Request, callID: str, extension: str) -> Response:
        params = self.params(request)
        if not _CALL_ID.match(callID):
            raise NotFound(_("Call '%(call)s' not found.") % {"call": callID[:64]})
        return Response(
            recordings.recording_get(
                client=request.user,
                call_id=callID,
                extension=clean_extension(extension),
                company=get_str(params, "company"),
                url_for=lambda token: request.build_absolute_uri(
                    reverse("recording-file", kwargs={"token": token})
                ),
            )
        )


@method_decorator(csrf_exempt, name="dispatch")  # no session: the signed URL is the credential
class RecordingFileView(View):
    """The audio behind a signed URL: the URL is the credential, so no API key; Range for seeking."""

    http_method_names = ["get", "head", "options"]

    def http_method_not_allowed(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = error_response(
            405, _('Method "%(method)s" not allowed.') % {"method": request.method}
        )
        response["Allow"] = "GET, HEAD"
        return response

    def options(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self.http_method_not_allowed(request)

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            path, content_type = recordings.recording_file(token=token)
        except signing.SignatureExpired:
            return error_response(403, _("This recording link has expired."))
        except signing.BadSignature:
            return error_response(403, _("This recording link is not valid."))
        except recordings.RecordingRevoked as exc:
            if exc.by_supervisor:
                return error_response(
                    403,
                    _("This recording link was issued to a supervisor who no longer has access."),
                )
            return error_response(
                403, _("This recording link was issued by an API key that is no longer valid.")
            )
        except recordings.RecordingUnavailable:
            return error_response(404, _("The recording is not available yet."))
        return _serve(request, path, content_type)


def _serve(request: HttpRequest, path: Path, content_type: str) -> HttpResponse:
    size = path.stat().st_size
    byte_range = _parse_range(request.headers.get("Range", ""), size)
    if byte_range is None:
        response: HttpResponse = FileResponse(path.open("rb"), content_type=content_type)
    elif byte_range == "unsatisfiable":
        response = HttpResponse(status=416, content_type=content_type)
        response["Content-Range"] = f"bytes */{size}"
    else:
        start, end = byte_range
        response = StreamingHttpResponse(
            _read(path, start, end), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=0"
    return response


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One `bytes=` range → (first, last); "unsatisfiable"; None to send the whole file.

    Several ranges or a malformed header are answered with the whole file, which RFC 9110
    allows a server to do.
    """
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = (_position(text) for text in match.groups())
    if first is None and last is None:
        return None
    if first is None:  # the last N bytes
        length = last
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = first
    end = min(last, size - 1) if last is not None else size - 1
    if last is not None and last < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, end


def _position(digits: str) -> int | None:
    """A Range position; None when absent, capped at _FAR however many digits it has."""
    if not digits:
        return None
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) < 19 else _FAR


def _read(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
