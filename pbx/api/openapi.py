"""The OpenAPI 3 description of the SWAN v2 endpoints, kept apart from the views.

The views (pbx.api.views, pbx.api.history_views, pbx.api.terminal_views, pbx.api.agenda_views) read their parameters
by hand (pbx.api.params) and have no serializers, so drf-spectacular cannot guess anything about
them. This module tells it, with extensions that are registered when the module is imported:

- `ApiKeyAuthenticationScheme`: the two ways to send an API key (bearer token or `X-Api-Key`);
- one `OpenApiViewExtension` per endpoint (matched by the view's dotted path), which hands the
  generator an annotated subclass of the view: parameters, request body, and every answer as the
  envelope `{"error", "error-msg", "result"}`;
- `preprocess_legacy_paths`: a drf-spectacular preprocessing hook. The legacy paths are routed
  as `^username/(?P<extension>[^/]+)/?$` (with or without a trailing slash); the generator would
  print them as `/username/{extension}/`, this hook prints them as the contract writes them. It
  also lists the contract's plain Django views (`_PLAIN_VIEWS`: recording-file streams audio and
  is no DRF view), which the generator would skip.

Wire-up (settings): `SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"] =
["pbx.api.openapi.preprocess_legacy_paths"]`. drf-spectacular imports this module to resolve
the hook, which also registers the extensions before any view is inspected.

The serializers below only describe; nothing validates with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.urls import get_resolver
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.generators import EndpointEnumerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.views import APIView

# --------------------------------------------------------------------------------------------
# Paths


def preprocess_legacy_paths(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """`/username/{extension}/` → `/username/{extension}` for paths routed with an optional slash.

    urls.swan_path() routes `^<route>/?$`; the schema shows the slash-less spelling, which is the
    one the contract (swan-v2.md) writes. The other spelling is served too and is not listed.
    """
    result = []
    for path, path_regex, method, callback in [*endpoints, *_plain_view_endpoints(endpoints)]:
        if path_regex.endswith("/?$") and path.endswith("/") and path != "/":
            path = path.rstrip("/")
        result.append((path, path_regex, method, callback))
    return result


# Plain Django views (not DRF) that are part of the contract: the generator skips them, so the
# hook lists them, by URL name, with a stand-in callback whose `cls` is the APIView that the
# view's OpenApiViewExtension describes it with (the stand-in is inspected, never served).
_PLAIN_VIEWS = {"recording-file": ("GET",)}


def _plain_view_endpoints(endpoints: list[tuple]) -> list[tuple]:
    listed = {path_regex for _path, path_regex, _method, _callback in endpoints}
    enumerator = EndpointEnumerator(patterns=[])
    found = []
    for pattern in get_resolver().url_patterns:
        methods = _PLAIN_VIEWS.get(getattr(pattern, "name", None) or "")
        path_regex = str(pattern.pattern)
        if not methods or path_regex in listed or not hasattr(pattern.callback, "view_class"):
            continue

        def callback(*args, _view=pattern.callback, **kwargs):
            return _view(*args, **kwargs)

        callback.cls = pattern.callback.view_class
        callback.initkwargs = {}
        extension = OpenApiViewExtension.get_match(callback)
        if extension is None:
            continue  # undocumented: leave it out rather than fail the whole schema
        callback.cls = extension.view_replacement()
        path = enumerator.get_path_from_regex(path_regex)
        found.extend((path, path_regex, method, callback) for method in methods)
    return found


# --------------------------------------------------------------------------------------------
# Authentication


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """pbx.api.authentication.ApiKeyAuthentication: either header carries the same key; one of them suffices."""

    target_class = "pbx.api.authentication.ApiKeyAuthentication"
    name = ["ApiKeyBearer", "ApiKeyHeader"]

    def get_security_requirement(self, auto_schema):
        return [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]  # either one, not both

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The API key as a bearer token: `Authorization: Bearer <key>`. "
                "Keys are created in the admin or with `manage.py create_api_key` and shown once.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Api-Key",
                "description": "The same API key in the `X-Api-Key` header.",
            },
        ]


# --------------------------------------------------------------------------------------------
# Envelope fields


def _const(value: Any, schema_type: str, description: str) -> dict[str, Any]:
    """A schema admitting only `value`. Wrapped in allOf so that drf-spectacular's enum hook
    (postprocess_schema_enums) leaves it alone: it would turn `enum: [null]` into an empty enum."""
    inner: dict[str, Any] = {"type": schema_type, "enum": [value]}
    if value is None:
        inner["nullable"] = True
    return {"allOf": [inner], "description": description}


@extend_schema_field(_const(False, "boolean", "false: no error."))
class _FalseField(serializers.BooleanField):
    pass


@extend_schema_field(_const(True, "boolean", "true: an error."))
class _TrueField(serializers.BooleanField):
    pass


@extend_schema_field(_const(None, "string", "null: no error."))
class _NullMessageField(serializers.CharField):
    pass


@extend_schema_field(
    {
        "type": "string",
        "description": "A human sentence naming the parameter or object at fault, in Spanish "
        "(default) or English (`Accept-Language`).",
    }
)
class _MessageField(serializers.CharField):
    pass


@extend_schema_field(_const(None, "object", "null on error."))
class _NullResultField(serializers.Field):
    pass


def _envelope(
    name: str, result: Callable[[], serializers.Field], doc: str
) -> type[serializers.Serializer]:
    """A success envelope serializer: `{"error": false, "error-msg": null, "result": <result>}`.

    Built with type() because `error-msg` is not a Python identifier; `result` is a factory so
    that the field is created last and listed last (serializer fields keep creation order).
    """
    fields = {"error": _FalseField(), "error-msg": _NullMessageField(allow_null=True)}
    fields["result"] = result()
    return type(name, (serializers.Serializer,), {"__doc__": doc, "__module__": __name__, **fields})


ErrorEnvelope = type(
    "ErrorEnvelope",
    (serializers.Serializer,),
    {
        "__doc__": "Every error answer: `error` true, a message, `result` null. The HTTP status "
        "gives the class of error (unless SWAN_ALWAYS_HTTP_200 is on).",
        "__module__": __name__,
        "error": _TrueField(),
        "error-msg": _MessageField(),
        "result": _NullResultField(allow_null=True),
    },
)


# --------------------------------------------------------------------------------------------
# Results


class UsernameResultSerializer(serializers.Serializer):
    username = serializers.CharField(
        allow_null=True, help_text="The user's name; null when no user has the extension."
    )


class UserStatusSerializer(serializers.Serializer):
    extension = serializers.CharField(help_text="The user's extension (1-20 digits).")
    id = serializers.IntegerField(help_text="The user's id.")
    name = serializers.CharField(help_text="The user's name.")
    status = serializers.ChoiceField(
        choices=["available", "unavailable", "busy", "ringing", "pause"],
        help_text="Derived from the user's devices, live from the PBX.",
    )
    description = serializers.CharField(
        help_text="The reason of a pause or busy state (e.g. 'Descanso'), else the translated "
        "status label ('Disponible', 'No disponible', 'Ocupado', 'Sonando', 'En pausa')."
    )


class BlfUserSerializer(UserStatusSerializer):
    mobile = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The user's mobile, null if none. Present only with `withMobile=true`.",
    )


class CompanyNumberSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Identifier of the number.")
    name = serializers.CharField(help_text="`<name> - <number>`, e.g. 'primari - 937060370'.")
    alias = serializers.CharField(allow_blank=True, help_text="Alias, e.g. 'ONFARMA'; may be ''.")
    value = serializers.CharField(help_text="The number, e.g. '937060370'.")


class SuccessResultSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="true when the change was made.")


class PbxSuccessResultSerializer(serializers.Serializer):
    success = serializers.BooleanField(
        help_text="true only when the PBX did every step; false when it refused one. The "
        "stored state always says what the PBX really did."
    )


class CallRowSerializer(serializers.Serializer):
    uniqueid = serializers.CharField(help_text="The call's id: its linked id, else its unique id.")
    calldate = serializers.RegexField(
        r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
        help_text="When the call began, local time of the user's company: `YYYY-MM-DD HH:MM:SS`.",
    )
    duration = serializers.IntegerField(
        min_value=0,
        help_text="last-calls: talk seconds of an answered call, 0 if unanswered. "
        "current-calls: seconds since the call began.",
    )
    number = serializers.CharField(
        allow_blank=True, help_text="The other party's number; '' when the PBX did not say."
    )
    direction = serializers.ChoiceField(
        choices=["outgoing", "incoming"],
        help_text="outgoing when the extension placed the call, else incoming.",
    )


class WebPhoneSerializer(serializers.Serializer):
    username = serializers.RegexField(
        r"^[0-9a-f]{12}$",
        allow_null=True,
        help_text="The MAC of the user's webphone terminal (12 lower-case hex digits); null "
        "when the user has none.",
    )
    is_registered = serializers.BooleanField(
        help_text="Whether the webphone has a live registration. Always false in a 200: a "
        "registered webphone answers 409."
    )


@extend_schema_field(_const(True, "boolean", "true: another tab or device is logged in."))
class _TrueResultField(serializers.BooleanField):
    pass


class WebPhoneRegisteredSerializer(serializers.Serializer):
    username = serializers.RegexField(
        r"^[0-9a-f]{12}$", help_text="The MAC of the user's webphone terminal."
    )
    is_registered = _TrueResultField()


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


UsernameEnvelope = _envelope(
    "UsernameEnvelope", UsernameResultSerializer, "username/{extension}: the user's name."
)
BlfUsersEnvelope = _envelope(
    "BlfUsersEnvelope",
    lambda: BlfUserSerializer(many=True),
    "blf-users/{company}: the company's users with their status, by extension.",
)
CompanyNumbersEnvelope = _envelope(
    "CompanyNumbersEnvelope",
    lambda: CompanyNumberSerializer(many=True),
    "company-numbers/{company}: the company's public numbers, ordered by name.",
)
SuccessEnvelope = _envelope(
    "SuccessEnvelope", SuccessResultSerializer, "A write: `result.success`."
)
PbxSuccessEnvelope = _envelope(
    "PbxSuccessEnvelope", PbxSuccessResultSerializer, "A PBX action: `result.success`."
)
UserStatusEnvelope = _envelope(
    "UserStatusEnvelope", UserStatusSerializer, "userStatus/{extension}: the user's live status."
)
CallsEnvelope = _envelope(
    "CallsEnvelope",
    lambda: CallRowSerializer(many=True),
    "last-calls and current-calls: one row per call, newest first.",
)
WebPhoneEnvelope = _envelope(
    "WebPhoneEnvelope", WebPhoneSerializer, "web-phone-username/{extension}: the webphone's MAC."
)
QueuesStatusEnvelope = _envelope(
    "QueuesStatusEnvelope", QueuesStatusResultSerializer, "queues-status: figures per group."
)
UserResumeEnvelope = _envelope(
    "UserResumeEnvelope", UserResumeResultSerializer, "user-resume/{extension}: today's resume."
)
RecordingEnvelope = _envelope(
    "RecordingEnvelope", RecordingResultSerializer, "recording/{callID}/{extension}."
)
WebPhoneRegisteredEnvelope = type(
    "WebPhoneRegisteredEnvelope",
    (serializers.Serializer,),
    {
        "__doc__": "web-phone-username's 409 when the webphone is already registered: an error "
        "whose `result` still carries the MAC and `is_registered: true`.",
        "__module__": __name__,
        "error": _TrueField(),
        "error-msg": _MessageField(),
        "result": WebPhoneRegisteredSerializer(),
    },
)


# --------------------------------------------------------------------------------------------
# Requests (COMPONENT_SPLIT_REQUEST: these become `...Request` components)


class PhoneEntrySerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=200, help_text="The contact's name (no control characters)."
    )
    number = serializers.CharField(
        help_text="The phone number. Spaces, dots, dashes, slashes and brackets are dropped and a "
        "leading '+' kept; what is left must be 1-32 digits."
    )


class UpdateAgendaSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=120, help_text="The agenda's name; the agenda is created if it does not exist."
    )
    phones = serializers.ListField(
        child=PhoneEntrySerializer(),
        min_length=1,
        help_text="Phones to add; an existing number is renamed. Any invalid entry rejects the "
        "whole request (400) and nothing is written.",
    )
    company = serializers.CharField(
        required=False,
        max_length=255,
        help_text="Company (slug or name) a new agenda belongs to. Required when the API key "
        "serves several companies and the agenda does not exist yet.",
    )


class DeleteAgendaPhonesSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, help_text="The agenda's name.")
    phones = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Numbers to delete (normalised like update-agenda's). Absent: every phone of "
        "the agenda is deleted.",
    )


@extend_schema_field(
    {
        # allOf keeps drf-spectacular's enum hook from naming it: a second `status` enum (the
        # result's, with five values) would collide with it (a warning and a hashed name).
        "allOf": [{"type": "string", "enum": ["available", "busy", "pause"]}],
        "description": "available: unpause in every queue and clear do-not-disturb; pause: "
        "pause in every queue (409 when the user is in none); busy: set do-not-disturb. "
        "Anything else answers 400.",
    }
)
class _SettableStatusField(serializers.ChoiceField):
    pass


class UserStatusSetSerializer(serializers.Serializer):
    status = _SettableStatusField(choices=["available", "busy", "pause"])
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=120,
        help_text="The reason of a pause or busy state (e.g. 'Descanso'), shown as `description`.",
    )
    company = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The company (slug or name) to look the extension up in; needed when the "
        "extension exists in several of the key's companies.",
    )


class CallPlaceSerializer(serializers.Serializer):
    private_source = serializers.RegexField(
        r"^\d{1,20}$",
        help_text="The extension whose device rings first (1-20 digits); it must exist in "
        "`company` (else 404).",
    )
    company = serializers.CharField(
        max_length=255, help_text="The company (slug or name) of `private_source`."
    )


class UserUnregisterSerializer(serializers.Serializer):
    company = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The company (slug or name) to look the extension up in; needed when the "
        "extension exists in several of the key's companies.",
    )


# --------------------------------------------------------------------------------------------
# Parameters

_COMPANY_PATH = OpenApiParameter(
    "company",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=r"^[^/]+$",
    description="The company's slug or name, case-insensitive. A company the API key may not "
    "see answers 404.",
    examples=[
        OpenApiExample("By slug", value="onfarma"),
        OpenApiExample("By name", value="ONFARMA"),
    ],
)
_COMPANY_QUERY = OpenApiParameter(
    "company",
    str,
    OpenApiParameter.QUERY,
    description="The company (slug or name, case-insensitive) to look the extension up in. "
    "Without it the extension is looked up among every company the API key sees, and an "
    "extension found in several answers 409.",
)
_EXTENSION_PATH = OpenApiParameter(
    "extension",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=r"^\d{1,20}$",
    description="The user's extension: 1 to 20 digits. Anything else answers 400.",
    examples=[OpenApiExample("Extension", value="200")],
)
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
_MAC_PATH = OpenApiParameter(
    "mac",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=r"^[:.\-]*(?:[0-9A-Fa-f][:.\-]*){12}$",
    description="The terminal's MAC: 12 hex digits, any case, written with `:`, `-`, `.` or no "
    "separator (`00:15:65:AA:BB:CC`, `0015.65aa.bbcc`, `001565aabbcc`). Anything else answers "
    "400; an unknown MAC, or one of another company, 404.",
    examples=[OpenApiExample("MAC", value="00:15:65:AA:BB:CC")],
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
_BOOLEAN_NOTE = "Also accepted: 1/0, yes/no, on/off, any case; anything else answers 400."
_ARRAY_NOTE = (
    "Repeat the key (`departments=a&departments=b`), or write it as PHP does "
    "(`departments[]=a&departments[]=b`, `departments[0]=a`), or as a JSON string "
    '(`departments=["a","b"]`).'
)


# --------------------------------------------------------------------------------------------
# Responses

_ERROR_DESCRIPTIONS = {
    400: "A parameter is missing or malformed; the message names it. Nothing is written.",
    401: "No API key, or a key that is not valid (`WWW-Authenticate: Bearer`).",
    403: "The API key may not be used from the client's address.",
    404: "The object named (company, department, agenda, extension, terminal, call) does not "
    "exist or is outside the API key's companies.",
    405: "The method is not allowed on this path.",
    406: "The `Accept` header asks for something other than JSON.",
    409: "The request conflicts with the stored data; the message says how.",
    415: "The body's content type is not JSON, form-urlencoded or multipart.",
    429: "Too many requests for this API key (`Retry-After` says when to retry).",
    500: "An unexpected server error.",
    503: "The database cannot be reached right now (any endpoint), or the PBX (the endpoints "
    "that act on it); nothing was changed. Retry later.",
}
_COMMON_ERRORS = (401, 403, 405, 406, 429, 500, 503)
_AMBIGUOUS = "The extension exists in several of the API key's companies and `company` is absent."
_NO_USER = (
    "No user has the extension among the API key's companies (in `company`, when given), or "
    "`company` does not exist."
)


def _responses(
    success,
    description: str,
    errors: tuple[int, ...] | dict[int, str],
    *,
    special: dict[int, OpenApiResponse] | None = None,
) -> dict:
    """200 with the success envelope, and the error envelope for each status the endpoint has.

    `errors` lists the endpoint's own statuses, or maps them to a description of when they
    happen; the common ones (401, 403, 405, 406, 429, 500, 503) are added. `special` replaces the
    answer of a status whose body is not the plain error envelope.
    With SWAN_ALWAYS_HTTP_200 every answer goes out as 200, so 200 may also be an error envelope.
    """
    special = special or {}
    if settings.SWAN_ALWAYS_HTTP_200:
        extra = []
        for answer in special.values():
            proxy = answer.response
            extra.extend(
                proxy.serializers if isinstance(proxy, PolymorphicProxySerializer) else [proxy]
            )
        # each alternative once: oneOf fails when a body matches two of them
        alternatives = list(dict.fromkeys([success, ErrorEnvelope, *extra]))
        success = PolymorphicProxySerializer(
            component_name=f"{success.__name__}OrError",
            serializers=alternatives,
            resource_type_field_name=None,
        )
        description += " With SWAN_ALWAYS_HTTP_200 on, errors are answered with 200 too."
    own = errors if isinstance(errors, dict) else dict.fromkeys(errors, "")
    responses: dict[int, OpenApiResponse] = {200: OpenApiResponse(success, description=description)}
    for code in sorted({*own, *_COMMON_ERRORS, *special}):
        if code in special:
            responses[code] = special[code]
        else:
            text = own.get(code) or _ERROR_DESCRIPTIONS[code]
            responses[code] = OpenApiResponse(ErrorEnvelope, description=text)
    return responses


def _error_example(message: str, status_code: int) -> OpenApiExample:
    return OpenApiExample(
        f"Error {status_code}",
        value={"error": True, "error-msg": message, "result": None},
        response_only=True,
        status_codes=[status_code],
    )


# --------------------------------------------------------------------------------------------
# Schema inspector that documents a DELETE body


class BodyOnDeleteSchema(AutoSchema):
    """drf-spectacular only documents bodies for POST/PUT/PATCH; SWAN's DELETE reads one too."""

    def _get_request_body(self, direction: str = "request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


# --------------------------------------------------------------------------------------------
# Views


def _annotated(view_class: type, schema_class: type[AutoSchema] | None = None, **methods) -> type:
    """An annotated subclass of `view_class` for the generator; the served view is unchanged.

    `methods` maps a handler name to its `extend_schema(...)` decorator. Each handler is wrapped
    in the subclass so the annotation stays off the original; `schema_class`, if given, is the
    inspector the annotation builds on (extend_schema reads it from the handler's `kwargs`).
    """
    attrs: dict[str, Any] = {"__module__": view_class.__module__, "__doc__": view_class.__doc__}
    for name, decorator in methods.items():
        original = getattr(view_class, name)

        def handler(self, request, *args, _original=original, **kwargs):
            return _original(self, request, *args, **kwargs)

        handler.__name__ = name
        if schema_class is not None:
            handler.kwargs = {"schema": schema_class}
        attrs[name] = decorator(handler)
    return type(view_class.__name__, (view_class,), attrs)


class UsernameGetViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.UsernameGetView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="username_get",
                tags=["USER"],
                summary="The name of the user with an extension",
                description="An unknown extension is not an error: `result.username` is null.",
                parameters=[_EXTENSION_PATH, _COMPANY_QUERY],
                responses=_responses(
                    UsernameEnvelope, "The user's name, or null.", (400, 404, 409)
                ),
                examples=[
                    OpenApiExample(
                        "Found",
                        value={"error": False, "error-msg": None, "result": {"username": "Ana"}},
                        response_only=True,
                        status_codes=[200],
                    ),
                    OpenApiExample(
                        "Unknown extension",
                        value={"error": False, "error-msg": None, "result": {"username": None}},
                        response_only=True,
                        status_codes=[200],
                    ),
                    _error_example(
                        "Extension 200 exists in several companies: name one with the "
                        "'company' parameter.",
                        409,
                    ),
                ],
            ),
        )


class BlfUsersListViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.BlfUsersListView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="blf_users_list",
                tags=["STATUS"],
                summary="The company's users with their live status",
                description="Every user of `{company}`, optionally only of some departments, "
                "ordered by extension.",
                parameters=[
                    _COMPANY_PATH,
                    OpenApiParameter(
                        "departments",
                        {"type": "array", "items": {"type": "string"}},
                        OpenApiParameter.QUERY,
                        style="form",
                        explode=True,
                        description="Department names (case-insensitive) to keep. An unknown "
                        f"department answers 404. {_ARRAY_NOTE}",
                        examples=[OpenApiExample("One department", value=["Soporte"])],
                    ),
                    OpenApiParameter(
                        "withMobile",
                        bool,
                        OpenApiParameter.QUERY,
                        default=False,
                        description=f"true: add each user's `mobile`. {_BOOLEAN_NOTE}",
                    ),
                ],
                responses=_responses(BlfUsersEnvelope, "The users.", (400, 404)),
                examples=[
                    OpenApiExample(
                        "Users",
                        value={
                            "error": False,
                            "error-msg": None,
                            "result": [
                                {
                                    "extension": "200",
                                    "id": 1,
                                    "name": "Ana García",
                                    "status": "pause",
                                    "description": "Descanso",
                                    "mobile": "+34600111222",
                                }
                            ],
                        },
                        response_only=True,
                        status_codes=[200],
                    ),
                    _error_example("Company 'acme' not found.", 404),
                ],
            ),
        )


class CompanyNumbersListViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.CompanyNumbersListView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="company_numbers_list",
                tags=["COMPANY"],
                summary="The company's public numbers",
                parameters=[
                    _COMPANY_PATH,
                    OpenApiParameter(
                        "in_use",
                        bool,
                        OpenApiParameter.QUERY,
                        default=False,
                        description="true: only the numbers routed to something; false or "
                        f"absent: all. {_BOOLEAN_NOTE}",
                    ),
                ],
                responses=_responses(
                    CompanyNumbersEnvelope, "The numbers, ordered by name.", (400, 404)
                ),
                examples=[
                    OpenApiExample(
                        "Numbers",
                        value={
                            "error": False,
                            "error-msg": None,
                            "result": [
                                {
                                    "id": 1,
                                    "name": "primari - 937060370",
                                    "alias": "ONFARMA",
                                    "value": "937060370",
                                }
                            ],
                        },
                        response_only=True,
                        status_codes=[200],
                    )
                ],
            ),
        )


_BODY_NOTE = (
    "The body may be JSON, form-urlencoded or multipart; it is merged over the query string. "
    "In a form, arrays are written as PHP's http_build_query does "
    "(`phones[0][name]=Sol&phones[0][number]=931234567`)."
)


class AgendaUpdateViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.agenda_views.AgendaUpdateView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            post=extend_schema(
                operation_id="update_agenda",
                tags=["AGENDA"],
                summary="Add or rename phones of an agenda, creating it if needed",
                description="One transaction: new numbers are created, existing numbers renamed. "
                f"A bare JSON array body is taken as `phones` (then `name` goes in the query "
                f"string). {_BODY_NOTE}",
                request=UpdateAgendaSerializer,
                responses=_responses(
                    SuccessEnvelope,
                    "The phones were stored.",
                    {
                        400: "",
                        404: "`company` does not exist or is outside the key's companies.",
                        409: "The agenda name is taken by an agenda the key cannot see (names "
                        "are unique across companies; the answer names no owner), or `company` "
                        "is not the company of the key's agenda.",
                        415: "",
                    },
                ),
                examples=[
                    OpenApiExample(
                        "Two phones",
                        value={
                            "name": "clientes",
                            "phones": [
                                {"name": "Farmacia Sol", "number": "+34 931 234 567"},
                                {"name": "Farmacia Luna", "number": "931-234-568"},
                            ],
                        },
                        request_only=True,
                    ),
                    _error_example("phones[1]: 'abc' is not a valid phone number.", 400),
                ],
            ),
        )


class AgendaPhonesDeleteViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.agenda_views.AgendaPhonesDeleteView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            BodyOnDeleteSchema,
            delete=extend_schema(
                operation_id="delete_phones_agenda",
                tags=["AGENDA"],
                summary="Delete some or all phones of an agenda",
                description=f"One transaction. {_BODY_NOTE}",
                request=DeleteAgendaPhonesSerializer,
                responses=_responses(SuccessEnvelope, "The phones were deleted.", (400, 404, 415)),
                examples=[
                    OpenApiExample(
                        "Some phones",
                        value={"name": "clientes", "phones": ["+34931234567"]},
                        request_only=True,
                    ),
                    _error_example("Agenda 'clientes' not found.", 404),
                ],
            ),
        )


# --------------------------------------------------------------------------------------------
# Status, user, PBX and terminal endpoints

_PBX_NOTE = (
    "The PBX is asked live; when it cannot be reached the answer is 503 and the stored state "
    "is left as it was."
)


def _ok_example(name: str, result: Any) -> OpenApiExample:
    return OpenApiExample(
        name,
        value={"error": False, "error-msg": None, "result": result},
        response_only=True,
        status_codes=[200],
    )


_STATUS_EXAMPLE = {
    "extension": "200",
    "id": 1,
    "name": "Ana García",
    "status": "pause",
    "description": "Descanso",
}


class UserStatusViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.UserStatusView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="user_status_get",
                tags=["STATUS"],
                summary="The live status of the user with an extension",
                description="Derived from the user's devices (live from the PBX), "
                "do-not-disturb and pause, first match wins: every device unreachable or no "
                "device → unavailable; ringing; busy or do-not-disturb → busy; paused → pause; "
                "else available.",
                parameters=[_EXTENSION_PATH, _COMPANY_QUERY],
                responses=_responses(
                    UserStatusEnvelope,
                    "The user's status.",
                    {
                        404: _NO_USER,
                        400: "",
                        409: _AMBIGUOUS,
                    },
                ),
                examples=[_ok_example("Paused", _STATUS_EXAMPLE)],
            ),
            post=extend_schema(
                operation_id="user_status_set",
                tags=["STATUS"],
                summary="Change the status of the user with an extension",
                description="The answer is the status after the change, as `GET` gives it. "
                f"{_PBX_NOTE} {_BODY_NOTE}",
                parameters=[_EXTENSION_PATH],
                request=UserStatusSetSerializer,
                responses=_responses(
                    UserStatusEnvelope,
                    "The status after the change.",
                    {
                        400: "",
                        404: _NO_USER,
                        409: f"{_AMBIGUOUS} Or `pause` for a user in no queue on the PBX, or "
                        "the PBX refused the change.",
                        415: "",
                        503: "",
                    },
                ),
                examples=[
                    OpenApiExample(
                        "Pause",
                        value={"status": "pause", "reason": "Descanso"},
                        request_only=True,
                    ),
                    _ok_example("Paused", _STATUS_EXAMPLE),
                    _error_example("The PBX cannot be reached right now; try again later.", 503),
                ],
            ),
        )


class CurrentCallsListViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.CurrentCallsListView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="current_calls_list",
                tags=["USER"],
                summary="The calls up now on the user's devices",
                description="One row per call, newest first; `duration` is the seconds since "
                "the call began.",
                parameters=[_EXTENSION_PATH, _COMPANY_QUERY],
                responses=_responses(
                    CallsEnvelope,
                    "The current calls; [] when none.",
                    {
                        400: "",
                        404: _NO_USER,
                        409: _AMBIGUOUS,
                    },
                ),
                examples=[
                    _ok_example(
                        "One call",
                        [
                            {
                                "uniqueid": "1715328000.42",
                                "calldate": "2024-05-10 10:00:00",
                                "duration": 35,
                                "number": "600123456",
                                "direction": "incoming",
                            }
                        ],
                    )
                ],
            ),
        )


class WebPhoneUsernameViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.WebPhoneUsernameView"

    def view_replacement(self):
        conflict = PolymorphicProxySerializer(
            component_name="WebPhoneConflict",
            serializers=[WebPhoneRegisteredEnvelope, ErrorEnvelope],
            resource_type_field_name=None,
        )
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="web_phone_username_get",
                tags=["USER"],
                summary="The MAC of the user's webphone, to log in on a webphone",
                description="When the webphone already has a live registration (another tab or "
                "device is logged in) the answer is a 409 error whose `result` still carries "
                "`{username, is_registered: true}`.",
                parameters=[_EXTENSION_PATH, _COMPANY_QUERY],
                responses=_responses(
                    WebPhoneEnvelope,
                    "The webphone's MAC, or null when the user has no webphone.",
                    {400: "", 404: _NO_USER},
                    special={
                        409: OpenApiResponse(
                            conflict,
                            description="Either the webphone is already registered "
                            "(`result` is `{username, is_registered: true}`), or the extension "
                            "exists in several of the API key's companies and `company` is "
                            "absent (`result` null).",
                        )
                    },
                ),
                examples=[
                    _ok_example("Free", {"username": "0a0b0c0d0e0f", "is_registered": False}),
                    _ok_example("No webphone", {"username": None, "is_registered": False}),
                    OpenApiExample(
                        "Already registered",
                        value={
                            "error": True,
                            "error-msg": "The webphone of extension 200 is already registered.",
                            "result": {"username": "0a0b0c0d0e0f", "is_registered": True},
                        },
                        response_only=True,
                        status_codes=[409],
                    ),
                ],
            ),
        )


class CallPlaceViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.CallPlaceView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            post=extend_schema(
                operation_id="call_place",
                tags=["PBX"],
                summary="Ring an extension, then connect it to a destination (click-to-call)",
                description="The PBX rings the device of `private_source` in `company` and, once "
                "answered, dials `{destination}` in the company's outbound context. "
                f"`success` is the PBX's answer. {_PBX_NOTE} {_BODY_NOTE}",
                parameters=[
                    OpenApiParameter(
                        "destination",
                        str,
                        OpenApiParameter.PATH,
                        required=True,
                        pattern=r"^(?:\+[0-9*#]{1,31}|[0-9*#]{1,32})$",
                        description="The number to dial: digits, `*` and `#` (write it `%23` "
                        "in the URL), with an optional leading `+`; at most 32 characters. "
                        "Anything else answers 400.",
                        examples=[OpenApiExample("Number", value="937060370")],
                    )
                ],
                request=CallPlaceSerializer,
                responses=_responses(
                    PbxSuccessEnvelope,
                    "Whether the PBX accepted the call.",
                    {
                        400: "",
                        404: "`company` does not exist or is outside the key's companies, or "
                        "`private_source` is not an extension of it.",
                        409: "`private_source` has no terminal to ring.",
                        415: "",
                        503: "",
                    },
                ),
                examples=[
                    OpenApiExample(
                        "Click-to-call",
                        value={"private_source": "200", "company": "onfarma"},
                        request_only=True,
                    ),
                    _ok_example("Placed", {"success": True}),
                ],
            ),
        )


class UserUnregisterViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.views.UserUnregisterView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            post=extend_schema(
                operation_id="user_unregister",
                tags=["USER"],
                summary="Tell the PBX that the user logged out",
                description="The user's devices are removed from its queues and its webphone "
                f"is marked unregistered. {_PBX_NOTE} {_BODY_NOTE}",
                parameters=[_EXTENSION_PATH],
                request=UserUnregisterSerializer,
                responses=_responses(
                    PbxSuccessEnvelope,
                    "Whether the PBX removed every device from every queue.",
                    {
                        400: "",
                        404: _NO_USER,
                        409: _AMBIGUOUS,
                        415: "",
                        503: "",
                    },
                ),
                examples=[_ok_example("Done", {"success": True})],
            ),
        )


class TerminalRegisterViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.terminal_views.TerminalRegisterView"

    def view_replacement(self):
        errors = {
            400: "",
            404: "No terminal has the MAC, or its user is outside the key's companies.",
            409: "The terminal has no user.",
            503: "",
        }
        return _annotated(
            self.target_class,
            post=extend_schema(
                operation_id="terminal_register",
                tags=["TERMINAL"],
                summary="Register a terminal: its user joins its queues on this device",
                description="If the terminal is registered it is first unregistered; then its "
                "user is added to each of its queues on this terminal's device and the terminal "
                f"is marked registered. No body. {_PBX_NOTE}",
                parameters=[_MAC_PATH],
                request=None,
                responses=_responses(PbxSuccessEnvelope, "Whether the PBX did every step.", errors),
                examples=[_ok_example("Registered", {"success": True})],
            ),
            delete=extend_schema(
                operation_id="terminal_unregister",
                tags=["TERMINAL"],
                summary="Unregister a terminal: its user leaves its queues on this device",
                description="If the terminal is not registered it is first registered; then its "
                f"user is removed from every queue. No body. {_PBX_NOTE}",
                parameters=[_MAC_PATH],
                request=None,
                responses=_responses(PbxSuccessEnvelope, "Whether the PBX did every step.", errors),
                examples=[_ok_example("Unregistered", {"success": True})],
            ),
        )


class QueuesStatusViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.history_views.QueuesStatusView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
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
                responses=_responses(
                    QueuesStatusEnvelope,
                    "One entry per group.",
                    {400: "", 404: "`company` does not exist or is outside the key's companies."},
                ),
                examples=[
                    _ok_example(
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


class UserResumeViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.history_views.UserResumeView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="user_resume_get",
                tags=["USER"],
                summary="Today's resume of a user: waiting calls, queue totals, comparison",
                description="`queue` is present with `queues`; `user` when the extension exists "
                "in `company` (an unknown extension is not an error).",
                parameters=[
                    _EXTENSION_PATH,
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
                responses=_responses(
                    UserResumeEnvelope,
                    "The resume.",
                    {
                        400: "",
                        404: "`company` or `department` does not exist or is outside the key's "
                        "companies.",
                    },
                ),
                examples=[
                    _ok_example(
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


class LastCallsListViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.history_views.LastCallsListView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="last_calls_list",
                tags=["USER"],
                summary="The user's calls of the last hours",
                description="One row per call (however many CDR rows the PBX wrote), newest "
                "first; `duration` is the talk seconds, 0 for an unanswered call.",
                parameters=[
                    _EXTENSION_PATH,
                    _COMPANY_QUERY,
                    OpenApiParameter(
                        "hours",
                        int,
                        OpenApiParameter.QUERY,
                        default=24,
                        description="How many hours back: a whole number from 1 to 720. "
                        "Anything else answers 400.",
                        examples=[OpenApiExample("A day", value=24)],
                    ),
                ],
                responses=_responses(
                    CallsEnvelope,
                    "The calls; [] when none.",
                    {
                        400: "",
                        404: _NO_USER,
                        409: _AMBIGUOUS,
                    },
                ),
                examples=[
                    _ok_example(
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


class RecordingGetViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.history_views.RecordingGetView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="recording_get",
                tags=["PBX"],
                summary="Where to listen to a call's recording",
                description="A participant of the call gets `path`, a signed and expiring URL of "
                "this service (`/recording-file/{token}`); anyone else gets `link`, the call in "
                "the PBX admin.",
                parameters=[_CALL_ID_PATH, _EXTENSION_PATH, _COMPANY_QUERY],
                responses=_responses(
                    RecordingEnvelope,
                    "Where the audio is.",
                    {
                        400: "",
                        404: "The call is unknown or of another company, or no user has the "
                        "extension in the key's companies.",
                        409: _AMBIGUOUS,
                    },
                ),
                examples=[
                    _ok_example(
                        "Participant",
                        {
                            "processing": False,
                            "path": "https://10.1.1.87/recording-file/eyJjYWxsIjoiNTAwLjEifQ:1s:x",
                        },
                    ),
                    _ok_example(
                        "Not a participant",
                        {"processing": False, "link": "https://pbx.example/cdr?uid=500.1"},
                    ),
                ],
            ),
        )


_AUDIO_TYPES = (
    "audio/wav",
    "audio/mpeg",
    "audio/ogg",
    "audio/x-gsm",
    "audio/mp4",
    "application/octet-stream",
)


class RecordingFileViewSchema(OpenApiViewExtension):
    """pbx.api.history_views.RecordingFileView is a plain Django view (it streams files); the hook
    lists it (`_PLAIN_VIEWS`) and this replacement describes it as an APIView without auth."""

    target_class = "pbx.api.history_views.RecordingFileView"

    def view_replacement(self):
        def get(self, request, token):  # only inspected by the schema generator, never routed
            raise AssertionError("the schema stand-in of RecordingFileView was called")

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
            ErrorEnvelope, description=_ERROR_DESCRIPTIONS[500]
        )
        annotated = extend_schema(
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
            responses=responses,
        )(get)
        return type(
            "RecordingFileView",
            (APIView,),
            {
                "__module__": self.target_class.__module__,
                "__doc__": self.target_class.__doc__,
                "authentication_classes": [],
                "permission_classes": [],
                "get": annotated,
            },
        )


# --------------------------------------------------------------------------------------------
# Historical reports (api/reports/queues, api/reports/agents; docs/reports.md)


class ReportHourSerializer(serializers.Serializer):
    hour = serializers.IntegerField(min_value=0, max_value=23, help_text="Local hour of entry.")
    answered = serializers.IntegerField(min_value=0)
    abandoned = serializers.IntegerField(min_value=0, help_text="The caller hung up.")
    unanswered = serializers.IntegerField(min_value=0, help_text="Every exit without an agent.")


class ReportDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="A local day of the period; every day is listed.")
    answered = serializers.IntegerField(min_value=0)
    abandoned = serializers.IntegerField(min_value=0)
    unanswered = serializers.IntegerField(min_value=0)


class ReportBucketSerializer(serializers.Serializer):
    from_seconds = serializers.IntegerField(min_value=0, help_text="Waits from this many seconds…")
    to_seconds = serializers.IntegerField(
        min_value=15,
        allow_null=True,
        help_text="…to less than this many; null for the last bucket (300 s and more).",
    )
    abandoned = serializers.IntegerField(min_value=0, help_text="Callers who hung up.")


class QueueReportSerializer(serializers.Serializer):
    queue = serializers.CharField(help_text="The Asterisk queue name.")
    display_name = serializers.CharField(help_text="The queue's display name, else its name.")
    offered = serializers.IntegerField(
        min_value=0, help_text="Entries that entered in the period (those still waiting too)."
    )
    answered = serializers.IntegerField(min_value=0, help_text="Answered by an agent.")
    unanswered = serializers.IntegerField(
        min_value=0, help_text="abandoned + timeouts + exited_with_key + exited_empty."
    )
    abandoned = serializers.IntegerField(min_value=0, help_text="The caller hung up (ABANDON).")
    timeouts = serializers.IntegerField(min_value=0, help_text="EXITWITHTIMEOUT.")
    exited_with_key = serializers.IntegerField(min_value=0, help_text="EXITWITHKEY.")
    exited_empty = serializers.IntegerField(min_value=0, help_text="EXITEMPTY.")
    short_abandons = serializers.IntegerField(
        min_value=0,
        help_text="Abandoned after waiting less than the queue's short-abandon threshold "
        "(default 5 s); counted in `abandoned` too.",
    )
    service_level = serializers.FloatField(
        help_text="Answered after waiting less than the queue's service level (default 20 s) "
        "* 100 / (answered + unanswered - short_abandons), 2 decimals; 100 when that is 0."
    )
    avg_wait = serializers.FloatField(help_text="Mean wait of answered entries, seconds.")
    max_wait = serializers.IntegerField(min_value=0, help_text="Longest wait of an answered one.")
    avg_talk = serializers.FloatField(help_text="Mean talk of answered entries, seconds.")
    by_hour = ReportHourSerializer(many=True, help_text="24 rows, local hours 0 to 23.")
    by_day = ReportDaySerializer(many=True)
    abandon_wait_buckets = ReportBucketSerializer(
        many=True, help_text="21 buckets of 15 s: [0, 15) … [285, 300), then 300 s and more."
    )


class QueueReportResultSerializer(serializers.Serializer):
    queues = QueueReportSerializer(many=True, help_text="One row per queue, by name.")


class AgentReportSerializer(serializers.Serializer):
    extension = serializers.CharField()
    name = serializers.CharField()
    answered = serializers.IntegerField(min_value=0, help_text="Queue calls answered.")
    talk_seconds = serializers.IntegerField(min_value=0, help_text="Their talk time.")
    avg_talk = serializers.FloatField(help_text="talk_seconds / answered, 2 decimals; 0 if none.")
    ring_no_answer = serializers.IntegerField(
        min_value=0, help_text="Queue calls that rang the agent unanswered (RINGNOANSWER)."
    )
    login_seconds = serializers.IntegerField(
        min_value=0, help_text="Time logged in to at least one queue, within the period."
    )
    pause_seconds = serializers.DictField(
        child=serializers.IntegerField(min_value=1),
        help_text='Time paused, by the reason given ("" for none), within the period.',
    )


class AgentReportResultSerializer(serializers.Serializer):
    agents = AgentReportSerializer(many=True, help_text="One row per agent, by extension.")


QueueReportEnvelope = _envelope(
    "QueueReportEnvelope", QueueReportResultSerializer, "api/reports/queues: per queue."
)
AgentReportEnvelope = _envelope(
    "AgentReportEnvelope", AgentReportResultSerializer, "api/reports/agents: per agent."
)


def _report_parameters(queues_note: str) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(
            "company",
            str,
            OpenApiParameter.QUERY,
            required=True,
            description="The company (slug or name, case-insensitive); its time zone sets the "
            "days. A company the API key cannot see answers 404.",
            examples=[OpenApiExample("Company", value="onfarma")],
        ),
        OpenApiParameter(
            "from",
            OpenApiTypes.DATE,
            OpenApiParameter.QUERY,
            required=True,
            description="First day, `YYYY-MM-DD`, from local midnight.",
            examples=[OpenApiExample("From", value="2026-11-01")],
        ),
        OpenApiParameter(
            "to",
            OpenApiTypes.DATE,
            OpenApiParameter.QUERY,
            required=True,
            description="Last day, `YYYY-MM-DD`, included; not before `from`, at most 366 days.",
            examples=[OpenApiExample("To", value="2026-11-30")],
        ),
        OpenApiParameter(
            "queues",
            {"type": "array", "items": {"type": "string"}},
            OpenApiParameter.QUERY,
            description=f"Asterisk queue names of the company (all of them without it); an "
            f"unknown one answers 404. {queues_note} {_ARRAY_NOTE.replace('departments', 'queues')}",
        ),
    ]


_REPORT_ERRORS = {
    400: "`from`, `to` or `company` is missing or malformed, `to` is before `from` or more "
    "than 366 days after it; the message names it.",
    404: "`company` does not exist or is outside the key's companies, or a queue of `queues` "
    "is not one of the company's.",
}


class QueueReportViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.report_views.QueueReportView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="report_queues",
                tags=["REPORTS"],
                summary="Per-queue figures over a range of days",
                description="Entries count on the local day and hour they entered the queue. "
                "Durations in seconds. Computed from the history tables that ingest keeps.",
                parameters=_report_parameters("Only these queues are listed."),
                responses=_responses(QueueReportEnvelope, "One row per queue.", _REPORT_ERRORS),
            ),
        )


class AgentReportViewSchema(OpenApiViewExtension):
    target_class = "pbx.api.report_views.AgentReportView"

    def view_replacement(self):
        return _annotated(
            self.target_class,
            get=extend_schema(
                operation_id="report_agents",
                tags=["REPORTS"],
                summary="Per-agent figures over a range of days",
                description="Agents are users of the company: the configured members of the "
                "queues and anyone with a figure in the period. Login and pause times come from "
                "ADDMEMBER/REMOVEMEMBER and PAUSE/UNPAUSE (and their ALL forms) lines, cut at "
                "the period and at now.",
                parameters=_report_parameters(
                    "Calls and rings count in these queues; login and pause time stay the agent's."
                ),
                responses=_responses(AgentReportEnvelope, "One row per agent.", _REPORT_ERRORS),
                examples=[
                    _ok_example(
                        "One agent",
                        {
                            "agents": [
                                {
                                    "extension": "200",
                                    "name": "Ana García",
                                    "answered": 2,
                                    "talk_seconds": 120,
                                    "avg_talk": 60.0,
                                    "ring_no_answer": 1,
                                    "login_seconds": 28800,
                                    "pause_seconds": {"Descanso": 900},
                                }
                            ]
                        },
                    )
                ],
            ),
        )
