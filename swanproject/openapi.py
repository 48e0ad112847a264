"""The OpenAPI 3 description of the SWAN v2 endpoints, kept apart from the views.

The views (pbx.views, agenda.views) read their parameters by hand (pbx.params) and have no
serializers, so drf-spectacular cannot guess anything about them. This module tells it, with
extensions that are registered when the module is imported:

- `ApiKeyAuthenticationScheme`: the two ways to send an API key (bearer token or `X-Api-Key`);
- one `OpenApiViewExtension` per endpoint (matched by the view's dotted path), which hands the
  generator an annotated subclass of the view: parameters, request body, and every answer as the
  envelope `{"error", "error-msg", "result"}`;
- `preprocess_legacy_paths`: a drf-spectacular preprocessing hook. The legacy paths are routed
  as `^username/(?P<extension>[^/]+)/?$` (with or without a trailing slash); the generator would
  print them as `/username/{extension}/`, this hook prints them as the contract writes them.

Wire-up (settings): `SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"] =
["swanproject.openapi.preprocess_legacy_paths"]`. drf-spectacular imports this module to resolve
the hook, which also registers the extensions before any view is inspected.

The serializers below only describe; nothing validates with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers

# --------------------------------------------------------------------------------------------
# Paths


def preprocess_legacy_paths(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """`/username/{extension}/` → `/username/{extension}` for paths routed with an optional slash.

    urls.swan_path() routes `^<route>/?$`; the schema shows the slash-less spelling, which is the
    one the contract (swan-v2.md) writes. The other spelling is served too and is not listed.
    """
    result = []
    for path, path_regex, method, callback in endpoints:
        if path_regex.endswith("/?$") and path.endswith("/") and path != "/":
            path = path.rstrip("/")
        result.append((path, path_regex, method, callback))
    return result


# --------------------------------------------------------------------------------------------
# Authentication


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """pbx.auth.ApiKeyAuthentication: either header carries the same key; one of them suffices."""

    target_class = "pbx.auth.ApiKeyAuthentication"
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


class BlfUserSerializer(serializers.Serializer):
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
    404: "The object named (company, department, agenda) does not exist or is outside the API "
    "key's companies.",
    405: "The method is not allowed on this path.",
    406: "The `Accept` header asks for something other than JSON.",
    409: "The request conflicts with the stored data; the message says how.",
    415: "The body's content type is not JSON, form-urlencoded or multipart.",
    429: "Too many requests for this API key (`Retry-After` says when to retry).",
    500: "An unexpected server error.",
}
_COMMON_ERRORS = (401, 403, 405, 406, 429, 500)


def _responses(success, description: str, errors: tuple[int, ...]) -> dict:
    """200 with the success envelope, and the error envelope for each status the endpoint has.

    With SWAN_ALWAYS_HTTP_200 every answer goes out as 200, so 200 may also be an error envelope.
    """
    if settings.SWAN_ALWAYS_HTTP_200:
        success = PolymorphicProxySerializer(
            component_name=f"{success.__name__}OrError",
            serializers=[success, ErrorEnvelope],
            resource_type_field_name=None,
        )
        description += " With SWAN_ALWAYS_HTTP_200 on, errors are answered with 200 too."
    responses: dict[int, OpenApiResponse] = {200: OpenApiResponse(success, description=description)}
    for code in sorted({*errors, *_COMMON_ERRORS}):
        responses[code] = OpenApiResponse(ErrorEnvelope, description=_ERROR_DESCRIPTIONS[code])
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
    target_class = "pbx.views.UsernameGetView"

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
    target_class = "pbx.views.BlfUsersListView"

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
    target_class = "pbx.views.CompanyNumbersListView"

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
    target_class = "agenda.views.AgendaUpdateView"

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
                    SuccessEnvelope, "The phones were stored.", (400, 404, 409, 415)
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
    target_class = "agenda.views.AgendaPhonesDeleteView"

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
