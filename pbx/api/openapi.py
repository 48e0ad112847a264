"""Shared pieces of the OpenAPI 3 description of the SWAN v2 endpoints (drf-spectacular).

Each endpoint is described beside its view, bound to the class with `@extend_schema_view` (the
view modules of pbx.api). What they share is here:

- the envelope `{"error", "error-msg", "result"}`: `envelope()` builds a success envelope around
  a result serializer, `ErrorEnvelope` is every error, `envelope_responses()` lists an
  endpoint's answers with them (the 200 and each error status it has);
- the common parameters (`COMPANY_PATH`, `COMPANY_QUERY`, `EXTENSION_PATH`), the notes on how
  SWAN reads parameters (pbx.api.params), and example helpers;
- `BodyOnDeleteSchema`, the inspector of a view whose DELETE reads a body;
- `ApiKeyAuthenticationScheme`: the two ways to send an API key (bearer token or `X-Api-Key`);
- `preprocess_legacy_paths`: a drf-spectacular preprocessing hook. The legacy paths are routed
  as `^username/(?P<extension>[^/]+)/?$` (with or without a trailing slash); the generator would
  print them as `/username/{extension}/`, this hook prints them as the contract writes them. It
  also lists the contract's plain Django views (recording-file streams audio and is no DRF
  view), which the generator would skip: such a view names, as `schema_view`, the APIView that
  describes it.

Wire-up (settings): `SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"] =
["pbx.api.openapi.preprocess_legacy_paths"]`.

The serializers only describe; nothing validates with them. The descriptions are read when the
view modules are imported, so SWAN_ALWAYS_HTTP_200 is taken from the settings at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.urls import get_resolver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import EndpointEnumerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers

from pbx.api.authentication import ApiKeyAuthentication

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


def _plain_view_endpoints(endpoints: list[tuple]) -> list[tuple]:
    """The plain Django views (not DRF) that are part of the contract, which the generator skips.

    Such a view names the APIView that describes it (`schema_view`); the hook lists it with a
    stand-in callback whose `cls` is that APIView (inspected, never served), for each method
    the APIView has.
    """
    listed = {path_regex for _path, path_regex, _method, _callback in endpoints}
    enumerator = EndpointEnumerator(patterns=[])
    found = []
    for pattern in get_resolver().url_patterns:
        schema_view = getattr(getattr(pattern.callback, "view_class", None), "schema_view", None)
        path_regex = str(pattern.pattern)
        if schema_view is None or path_regex in listed:
            continue

        def callback(*args, _view=pattern.callback, **kwargs):
            return _view(*args, **kwargs)

        callback.cls = schema_view
        callback.initkwargs = {}
        path = enumerator.get_path_from_regex(path_regex)
        found.extend(
            (path, path_regex, method, callback)
            for method in enumerator.get_allowed_methods(callback)
        )
    return found


# --------------------------------------------------------------------------------------------
# Authentication


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """ApiKeyAuthentication: either header carries the same key; one of them suffices."""

    target_class = ApiKeyAuthentication
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


def constant(value: Any, schema_type: str, description: str) -> dict[str, Any]:
    """A schema admitting only `value`. Wrapped in allOf so that drf-spectacular's enum hook
    (postprocess_schema_enums) leaves it alone: it would turn `enum: [null]` into an empty enum."""
    inner: dict[str, Any] = {"type": schema_type, "enum": [value]}
    if value is None:
        inner["nullable"] = True
    return {"allOf": [inner], "description": description}


@extend_schema_field(constant(False, "boolean", "false: no error."))
class _FalseField(serializers.BooleanField):
    pass


@extend_schema_field(constant(True, "boolean", "true: an error."))
class _TrueField(serializers.BooleanField):
    pass


@extend_schema_field(constant(None, "string", "null: no error."))
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


@extend_schema_field(constant(None, "object", "null on error."))
class _NullResultField(serializers.Field):
    pass


def envelope(
    name: str, result: Callable[[], serializers.Field], doc: str
) -> type[serializers.Serializer]:
    """A success envelope serializer: `{"error": false, "error-msg": null, "result": <result>}`.

    Built with type() because `error-msg` is not a Python identifier; `result` is a factory so
    that the field is created last and listed last (serializer fields keep creation order).
    """
    fields = {"error": _FalseField(), "error-msg": _NullMessageField(allow_null=True)}
    fields["result"] = result()
    return type(name, (serializers.Serializer,), {"__doc__": doc, "__module__": __name__, **fields})


def error_envelope(
    name: str, result: Callable[[], serializers.Field], doc: str
) -> type[serializers.Serializer]:
    """An error envelope whose `result` is not null, as `envelope()` builds a success one."""
    fields = {"error": _TrueField(), "error-msg": _MessageField()}
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
# Results shared by several endpoints (each endpoint's own are beside its view)


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


SuccessEnvelope = envelope("SuccessEnvelope", SuccessResultSerializer, "A write: `result.success`.")
PbxSuccessEnvelope = envelope(
    "PbxSuccessEnvelope", PbxSuccessResultSerializer, "A PBX action: `result.success`."
)
CallsEnvelope = envelope(
    "CallsEnvelope",
    lambda: CallRowSerializer(many=True),
    "last-calls and current-calls: one row per call, newest first.",
)


# --------------------------------------------------------------------------------------------
# Parameters

COMPANY_PATH = OpenApiParameter(
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
COMPANY_QUERY = OpenApiParameter(
    "company",
    str,
    OpenApiParameter.QUERY,
    description="The company (slug or name, case-insensitive) to look the extension up in. "
    "Without it the extension is looked up among every company the API key sees, and an "
    "extension found in several answers 409.",
)
EXTENSION_PATH = OpenApiParameter(
    "extension",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=r"^\d{1,20}$",
    description="The user's extension: 1 to 20 digits. Anything else answers 400.",
    examples=[OpenApiExample("Extension", value="200")],
)
BOOLEAN_NOTE = "Also accepted: 1/0, yes/no, on/off, any case; anything else answers 400."
ARRAY_NOTE = (
    "Repeat the key (`departments=a&departments=b`), or write it as PHP does "
    "(`departments[]=a&departments[]=b`, `departments[0]=a`), or as a JSON string "
    '(`departments=["a","b"]`).'
)
BODY_NOTE = (
    "The body may be JSON, form-urlencoded or multipart; it is merged over the query string. "
    "In a form, arrays are written as PHP's http_build_query does "
    "(`phones[0][name]=Sol&phones[0][number]=931234567`)."
)
PBX_NOTE = (
    "The PBX is asked live; when it cannot be reached the answer is 503 and the stored state "
    "is left as it was."
)


# --------------------------------------------------------------------------------------------
# Responses

ERROR_DESCRIPTIONS = {
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
AMBIGUOUS = "The extension exists in several of the API key's companies and `company` is absent."
NO_USER = (
    "No user has the extension among the API key's companies (in `company`, when given), or "
    "`company` does not exist."
)


def envelope_responses(
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
            text = own.get(code) or ERROR_DESCRIPTIONS[code]
            responses[code] = OpenApiResponse(ErrorEnvelope, description=text)
    return responses


def error_example(message: str, status_code: int) -> OpenApiExample:
    """An example of the error envelope answered with `status_code`."""
    return OpenApiExample(
        f"Error {status_code}",
        value={"error": True, "error-msg": message, "result": None},
        response_only=True,
        status_codes=[status_code],
    )


def ok_example(name: str, result: Any) -> OpenApiExample:
    """An example of the success envelope around `result`."""
    return OpenApiExample(
        name,
        value={"error": False, "error-msg": None, "result": result},
        response_only=True,
        status_codes=[200],
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
