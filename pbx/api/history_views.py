"""SWAN endpoints on the call history (queues-status, user-resume, last-calls, recording), thin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.openapi import (
    AMBIGUOUS,
    COMPANY_QUERY,
    ERROR_DESCRIPTIONS,
    EXTENSION_PATH,
    NO_USER,
    CallsEnvelope,
    ErrorEnvelope,
    envelope,
    envelope_responses,
    ok_example,
)
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
_HOURS_DEFAULT, _HOURS_MAX = 24, 720  # last-calls' `hours`
_CALL_ID = re.compile(r"^[\w.\-:@]{1,64}$")

_QUEUES_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
_QUEUES_NOTE = (
    "A map of group name to queue names (Asterisk's). Written as PHP does "
    "(`queues[ventas][]=q1&queues[ventas][]=q2&queues[soporte][0]=q3`) or as a JSON string "
    '(`queues={"ventas":["q1","q2"]}`). A queue that does not exist or that the key cannot see '
    "counts as an empty one."
)
_CALL_ID_PATH = OpenApiParameter(
    "callID",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=r"^[A-Za-z0-9_.:@\-]{1,64}$",
    description="The call's unique id or linked id (e.g. `1715328000.42`). Anything else, an "
    "unknown call, or a call of another company answers 404.",
    examples=[OpenApiExample("Call id", value="500.1")],
)


class QueueFiguresSerializer(serializers.Serializer):
    abandoned = serializers.IntegerField(
        min_value=0, help_text="Queue entries of today that left unanswered."
    )
    abandonedRatio = serializers.FloatField(
        help_text="100 - abandoned*100/(completed+abandoned), 2 decimals; 100 with no entries."
    )
    avgRingTime = serializers.FloatField(
        help_text="Mean seconds a completed entry waited before an agent answered."
    )
    avgRingTimeRatio = serializers.FloatField(
        help_text="avgRingTime*100/maxRingTime, 2 decimals; 0 when maxRingTime is 0."
    )
    completed = serializers.IntegerField(
        min_value=0, help_text="Queue entries of today answered by an agent."
    )
    currentCalls = serializers.IntegerField(
        min_value=0, help_text="Callers waiting in the group's queues now."
    )
    maxRingTime = serializers.IntegerField(
        min_value=0, help_text="Longest wait, in seconds, of a completed entry."
    )
    ringTimeOK = serializers.IntegerField(
        min_value=0,
        help_text="Completed entries that waited less than the queue's service level (20 s).",
    )
    serviceRatio = serializers.FloatField(
        help_text="ringTimeOK*100/completed, 2 decimals; 100 with nothing completed."
    )


class QueueGroupSerializer(serializers.Serializer):
    members = serializers.ListField(
        child=serializers.CharField(),
        help_text="Sorted, unique extensions logged in now to any queue of the group.",
    )
    alarm = serializers.BooleanField(
        help_text="true when a queue of the group breaks one of its alarm rules."
    )
    status = QueueFiguresSerializer(help_text="Today's figures over the group's queues.")


class QueuesStatusResultSerializer(serializers.Serializer):
    queues = serializers.DictField(
        child=QueueGroupSerializer(),
        help_text="One entry per group of the `queues` parameter, by group name.",
    )


QueuesStatusEnvelope = envelope(
    "QueuesStatusEnvelope", QueuesStatusResultSerializer, "queues-status: figures per group."
)


@extend_schema_view(
    get=extend_schema(
        operation_id="queues_status_get",
        tags=["STATUS"],
        summary="Today's figures, members and alarm of groups of queues",
        description="Counted over today (local midnight of the queue's company), per "
        "queue entry. Ratios have 2 decimals.",
        parameters=[
            OpenApiParameter(
                "queues",
                _QUEUES_SCHEMA,
                OpenApiParameter.QUERY,
                required=True,
                style="deepObject",
                explode=True,
                description=f"Required. {_QUEUES_NOTE}",
                examples=[
                    OpenApiExample("One group", value={"soporte": ["q-soporte"]}),
                ],
            ),
            OpenApiParameter(
                "company",
                str,
                OpenApiParameter.QUERY,
                description="Only queues of this company (slug or name); 404 if the "
                "key cannot see it.",
            ),
        ],
        responses=envelope_responses(
            QueuesStatusEnvelope,
            "One entry per group.",
            {400: "", 404: "`company` does not exist or is outside the key's companies."},
        ),
        examples=[
            ok_example(
                "One group",
                {
                    "queues": {
                        "soporte": {
                            "members": ["200", "201"],
                            "alarm": False,
                            "status": {
                                "abandoned": 1,
                                "abandonedRatio": 75.0,
                                "avgRingTime": 12.33,
                                "avgRingTimeRatio": 41.1,
                                "completed": 3,
                                "currentCalls": 0,
                                "maxRingTime": 30,
                                "ringTimeOK": 2,
                                "serviceRatio": 66.67,
                            },
                        }
                    }
                },
            )
        ],
    ),
)
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


class QueueResumeSerializer(serializers.Serializer):
    completed = serializers.IntegerField(min_value=0, help_text="Entries answered today.")
    abandoned = serializers.IntegerField(min_value=0, help_text="Entries unanswered today.")
    totalSpeechTime = serializers.CharField(
        help_text="Talk time of the answered entries: 'MM minutos SS segundos' (English: "
        "'MM minutes SS seconds'), minutes not capped."
    )


class ComparisonSerializer(serializers.Serializer):
    percentage = serializers.FloatField(
        help_text="The user's value * 100 / the base, 2 decimals; 100 when the base is 0."
    )
    state = serializers.ChoiceField(
        choices=[1, 2, 3, 4, 5],
        help_text="1 VERY_BAD (<= -25 points), 2 BAD, 3 NORMAL (within 5 points), 4 GOOD, "
        "5 VERY_GOOD (>= 25 points); points = percentage - 100.",
    )


class UserFiguresSerializer(serializers.Serializer):
    completed = serializers.IntegerField(min_value=0, help_text="Queue calls answered today.")
    totalSpeechTime = serializers.CharField(
        help_text="Their talk time, formatted like `queue.totalSpeechTime`."
    )
    lastCall = serializers.CharField(
        allow_null=True,
        allow_blank=True,
        help_text="The other party's number of the user's latest call; null if none.",
    )
    stats_complete = ComparisonSerializer(help_text="Answered calls against the base.")
    stats_time = ComparisonSerializer(help_text="Talk time against the base.")


UserResumeResultSerializer = type(
    "UserResumeResultSerializer",
    (serializers.Serializer,),
    {
        "__module__": __name__,
        "waiting-calls": serializers.DictField(
            child=serializers.IntegerField(min_value=0),
            help_text="Callers waiting now, per group of `queues`; {} without `queues`.",
        ),
        "queue": QueueResumeSerializer(
            required=False, help_text="Present with `queues`: today's totals of their queues."
        ),
        "user": UserFiguresSerializer(
            required=False,
            help_text="Present when the extension exists in the company. The base: the "
            "`department`'s members, else the members of `queues`, else the company's users.",
        ),
    },
)


UserResumeEnvelope = envelope(
    "UserResumeEnvelope", UserResumeResultSerializer, "user-resume/{extension}: today's resume."
)


@extend_schema_view(
    get=extend_schema(
        operation_id="user_resume_get",
        tags=["USER"],
        summary="Today's resume of a user: waiting calls, queue totals, comparison",
        description="`queue` is present with `queues`; `user` when the extension exists "
        "in `company` (an unknown extension is not an error).",
        parameters=[
            EXTENSION_PATH,
            OpenApiParameter(
                "company",
                str,
                OpenApiParameter.QUERY,
                required=True,
                description="The user's company (slug or name, case-insensitive).",
                examples=[OpenApiExample("Company", value="onfarma")],
            ),
            OpenApiParameter(
                "queues",
                _QUEUES_SCHEMA,
                OpenApiParameter.QUERY,
                style="deepObject",
                explode=True,
                description=f"Groups to count waiting calls in. {_QUEUES_NOTE}",
            ),
            OpenApiParameter(
                "department",
                str,
                OpenApiParameter.QUERY,
                description="A department of `company` (case-insensitive) whose members' "
                "average is the comparison base; unknown → 404.",
            ),
        ],
        responses=envelope_responses(
            UserResumeEnvelope,
            "The resume.",
            {
                400: "",
                404: "`company` or `department` does not exist or is outside the key's companies.",
            },
        ),
        examples=[
            ok_example(
                "Full",
                {
                    "waiting-calls": {"soporte": 2},
                    "queue": {
                        "completed": 12,
                        "abandoned": 1,
                        "totalSpeechTime": "25 minutos 10 segundos",
                    },
                    "user": {
                        "completed": 5,
                        "totalSpeechTime": "10 minutos 02 segundos",
                        "lastCall": "600123456",
                        "stats_complete": {"percentage": 125.0, "state": 5},
                        "stats_time": {"percentage": 98.5, "state": 3},
                    },
                },
            )
        ],
    ),
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


@extend_schema_view(
    get=extend_schema(
        operation_id="last_calls_list",
        tags=["USER"],
        summary="The user's calls of the last hours",
        description="One row per call (however many CDR rows the PBX wrote), newest "
        "first; `duration` is the talk seconds, 0 for an unanswered call.",
        parameters=[
            EXTENSION_PATH,
            COMPANY_QUERY,
            OpenApiParameter(
                "hours",
                int,
                OpenApiParameter.QUERY,
                default=_HOURS_DEFAULT,
                description=f"How many hours back: a whole number from 1 to {_HOURS_MAX}. "
                "Anything else answers 400.",
                examples=[OpenApiExample("A day", value=24)],
            ),
        ],
        responses=envelope_responses(
            CallsEnvelope,
            "The calls; [] when none.",
            {
                400: "",
                404: NO_USER,
                409: AMBIGUOUS,
            },
        ),
        examples=[
            ok_example(
                "Calls",
                [
                    {
                        "uniqueid": "1715328000.42",
                        "calldate": "2024-05-10 09:55:00",
                        "duration": 30,
                        "number": "600123456",
                        "direction": "incoming",
                    }
                ],
            )
        ],
    ),
)
class LastCallsListView(SwanView):
    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        return Response(
            history.last_calls(
                client=request.user,
                extension=clean_extension(extension),
                company=get_str(params, "company"),
                hours=get_int(
                    params, "hours", default=_HOURS_DEFAULT, minimum=1, maximum=_HOURS_MAX
                ),
            )
        )


class RecordingResultSerializer(serializers.Serializer):
    processing = serializers.BooleanField(
        help_text="true while the call has no finished audio file yet (still live, or no file)."
    )
    path = serializers.URLField(
        required=False,
        help_text="Only when the extension took part in the call: a signed URL of this service "
        "(`/recording-file/{token}`), valid for RECORDING_URL_MAX_AGE seconds (default 3600), "
        "that streams the audio. It is bound to the API key that asked for it: once that key is "
        "deactivated, deleted, rotated or no longer sees the call's company, the link is a 403.",
    )
    link = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Only when the extension did not take part: the PBX admin URL of the call, "
        "from RECORDING_ADMIN_LINK_TEMPLATE; null when no template is configured.",
    )


RecordingEnvelope = envelope(
    "RecordingEnvelope", RecordingResultSerializer, "recording/{callID}/{extension}."
)


@extend_schema_view(
    get=extend_schema(
        operation_id="recording_get",
        tags=["PBX"],
        summary="Where to listen to a call's recording",
        description="A participant of the call gets `path`, a signed and expiring URL of "
        "this service (`/recording-file/{token}`); anyone else gets `link`, the call in "
        "the PBX admin.",
        parameters=[_CALL_ID_PATH, EXTENSION_PATH, COMPANY_QUERY],
        responses=envelope_responses(
            RecordingEnvelope,
            "Where the audio is.",
            {
                400: "",
                404: "The call is unknown or of another company, or no user has the "
                "extension in the key's companies.",
                409: AMBIGUOUS,
            },
        ),
        examples=[
            ok_example(
                "Participant",
                {
                    "processing": False,
                    "path": "https://10.1.1.87/recording-file/eyJjYWxsIjoiNTAwLjEifQ:1s:x",
                },
            ),
            ok_example(
                "Not a participant",
                {"processing": False, "link": "https://pbx.example/cdr?uid=500.1"},
            ),
        ],
    ),
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


_AUDIO_TYPES = (
    "audio/wav",
    "audio/mpeg",
    "audio/ogg",
    "audio/x-gsm",
    "audio/mp4",
    "application/octet-stream",
)


def _recording_file_responses() -> dict:
    """The audio in each content type it may have (200, 206, 416), else the error envelope."""
    responses: dict = {}
    for code, text in (
        (200, "The whole file (no `Range`, or one the server chose to ignore)."),
        (206, "The requested bytes (`Content-Range: bytes first-last/size`)."),
        (416, "The range starts past the end; empty body, `Content-Range: bytes */size`."),
    ):
        for media_type in _AUDIO_TYPES:
            responses[code, media_type] = OpenApiResponse(OpenApiTypes.BINARY, description=text)
    if settings.SWAN_ALWAYS_HTTP_200:
        responses[200, "application/json"] = OpenApiResponse(
            ErrorEnvelope, description="With SWAN_ALWAYS_HTTP_200 on, errors too."
        )
    responses[403, "application/json"] = OpenApiResponse(
        ErrorEnvelope,
        description="The link is altered, older than RECORDING_URL_MAX_AGE, or the API key "
        "that issued it is no longer valid (deactivated, deleted, rotated, or no longer "
        "sees the call's company).",
    )
    responses[404, "application/json"] = OpenApiResponse(
        ErrorEnvelope, description="The link is good but the audio is not (yet) there."
    )
    responses[500, "application/json"] = OpenApiResponse(
        ErrorEnvelope, description=ERROR_DESCRIPTIONS[500]
    )
    return responses


@extend_schema_view(
    get=extend_schema(
        operation_id="recording_file_get",
        tags=["PBX"],
        summary="The audio of a recording, behind a signed link",
        description="The URL that `recording/{callID}/{extension}` gives as `path`: the "
        "signed token is the credential, so no API key. Streams the file with its content "
        "type (by extension: wav, mp3, ogg/opus, gsm, m4a; else octet-stream) and supports "
        "one HTTP `Range` for seeking (`Accept-Ranges: bytes`).",
        parameters=[
            OpenApiParameter(
                "token",
                str,
                OpenApiParameter.PATH,
                required=True,
                pattern=r"^[A-Za-z0-9_:\-]+$",
                description="The signed token of the link; only this service makes them.",
            ),
            OpenApiParameter(
                "Range",
                str,
                OpenApiParameter.HEADER,
                description="One byte range: `bytes=first-last`, `bytes=first-` or "
                "`bytes=-suffix`. Several ranges or a malformed header get the whole file.",
                examples=[
                    OpenApiExample("First KiB", value="bytes=0-1023"),
                    OpenApiExample("Last KiB", value="bytes=-1024"),
                ],
            ),
            OpenApiParameter(
                "Content-Range",
                str,
                OpenApiParameter.HEADER,
                response=[206, 416],
                description="`bytes first-last/size` (206) or `bytes */size` (416).",
            ),
            OpenApiParameter(
                "Accept-Ranges",
                str,
                OpenApiParameter.HEADER,
                response=[200, 206, 416],
                description="Always `bytes`.",
            ),
        ],
        responses=_recording_file_responses(),
    )
)
class RecordingFileSchemaView(APIView):
    """RecordingFileView as the schema shows it: an APIView that takes no API key.

    The generator skips plain Django views; the schema hook (pbx.api.openapi) lists
    RecordingFileView's URL with this class, which is inspected, never routed.
    """

    authentication_classes = ()
    permission_classes = ()

    def get(self, request: Request, token: str) -> Response:
        raise AssertionError("the schema stand-in of RecordingFileView was called")


@method_decorator(csrf_exempt, name="dispatch")  # no session: the signed URL is the credential
class RecordingFileView(View):
    """The audio behind a signed URL: the URL is the credential, so no API key; Range for seeking."""

    http_method_names = ["get", "head", "options"]
    schema_view = RecordingFileSchemaView  # how the schema describes it (a plain Django view)

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
