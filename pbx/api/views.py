"""SWAN v2 endpoints backed by the directory: one view per operation, thin, and its schema."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.openapi import (
    AMBIGUOUS,
    ARRAY_NOTE,
    BODY_NOTE,
    BOOLEAN_NOTE,
    COMPANY_PATH,
    COMPANY_QUERY,
    EXTENSION_PATH,
    NO_USER,
    PBX_NOTE,
    CallsEnvelope,
    ErrorEnvelope,
    PbxSuccessEnvelope,
    constant,
    envelope,
    envelope_responses,
    error_envelope,
    error_example,
    ok_example,
)
from pbx.api.params import (
    check_body_size,
    check_path_segment,
    clean_destination,
    get_bool,
    get_choice,
    get_str,
    get_str_list,
    request_params,
)
from pbx.api.read_cache import live_cache
from pbx.directory import lookups
from pbx.directory.pbxes import gateway_for
from pbx.errors import Conflict
from pbx.live import selectors as live_selectors
from pbx.live import services
from pbx.live import version as live_version
from pbx.models import PbxUser
from pbx.values import clean_extension
from swanproject.envelope import SwanNegotiation

_REASON_MAX_LENGTH = 120  # userStatus' `reason`


class SwanView(APIView):
    """Base of every SWAN endpoint: parameters parsed the SWAN way (pbx.api.params)."""

    body_array_param: str | None = None
    metadata_class = None  # OPTIONS is not part of the contract: a 405 envelope
    content_negotiation_class = SwanNegotiation  # `?format=` is no SWAN parameter
    # Answers read from the listener's live state say whether it is current: the contract's
    # result shapes are fixed, so a header tells (`X-Swan-Live-State: live` or `stale`).
    reads_live_state = False

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.reads_live_state and response.status_code < 400:
            live = self.live_probe(request, catch_up=True).link_live(self.answer_pbxes(request))
            response["X-Swan-Live-State"] = "live" if live else "stale"
        return response

    def answer_pbxes(self, request: Request) -> set[str]:
        """The PBXes this answer's live state comes from: the company's own, or the user's."""
        params = self.params(request)
        return live_cache.pbxes_of(
            client=request.user,
            company=self.kwargs.get("company") or get_str(params, "company"),
            extension=self.kwargs.get("extension"),
        )

    def live_probe(self, request: Request, *, catch_up: bool = False) -> live_version.Probe:
        """This request's one look at the shared live state; `catch_up` also brings the read
        cache up to date with it (pbx/api/read_cache.py)."""
        probe = getattr(request, "swan_probe", None)
        if probe is None:
            probe = live_cache.catch_up() if catch_up else live_version.probe()
            request.swan_probe = probe
        return probe

    def initial(self, request: Request, *args, **kwargs) -> None:
        """After the key and the rate: all input checked before the view acts on any of it."""
        super().initial(request, *args, **kwargs)
        check_body_size(request)
        for name, value in kwargs.items():
            check_path_segment(name, value)
        self.params(request)

    def params(self, request: Request) -> dict:
        """The request's parameters, parsed and checked once (`initial` does it up front)."""
        if not hasattr(request, "swan_params"):
            request.swan_params = request_params(request, body_array_param=self.body_array_param)
        return request.swan_params

    def extension_user(self, request: Request, extension: str, params: dict) -> PbxUser:
        """The user of the path's extension among the key's companies (`company` narrows it)."""
        return lookups.user_get(
            client=request.user,
            extension=clean_extension(extension),
            company=get_str(params, "company"),
        )


class UsernameResultSerializer(serializers.Serializer):
    username = serializers.CharField(
        allow_null=True, help_text="The user's name; null when no user has the extension."
    )


UsernameEnvelope = envelope(
    "UsernameEnvelope", UsernameResultSerializer, "username/{extension}: the user's name."
)


@extend_schema_view(
    get=extend_schema(
        operation_id="username_get",
        tags=["USER"],
        summary="The name of the user with an extension",
        description="An unknown extension is not an error: `result.username` is null.",
        parameters=[EXTENSION_PATH, COMPANY_QUERY],
        responses=envelope_responses(
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
            error_example(
                "Extension 200 exists in several companies: name one with the 'company' parameter.",
                409,
            ),
        ],
    ),
)
class UsernameGetView(SwanView):
    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        name = lookups.user_name_for_extension(
            client=request.user,
            extension=clean_extension(extension),
            company=get_str(params, "company"),
        )
        return Response({"username": name})


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


BlfUsersEnvelope = envelope(
    "BlfUsersEnvelope",
    lambda: BlfUserSerializer(many=True),
    "blf-users/{company}: the company's users with their status, by extension.",
)


@extend_schema_view(
    get=extend_schema(
        operation_id="blf_users_list",
        tags=["STATUS"],
        summary="The company's users with their live status",
        description="Every user of `{company}`, optionally only of some departments, "
        "ordered by extension.",
        parameters=[
            COMPANY_PATH,
            OpenApiParameter(
                "departments",
                {"type": "array", "items": {"type": "string"}},
                OpenApiParameter.QUERY,
                style="form",
                explode=True,
                description="Department names (case-insensitive) to keep. An unknown "
                f"department answers 404. {ARRAY_NOTE}",
                examples=[OpenApiExample("One department", value=["Soporte"])],
            ),
            OpenApiParameter(
                "withMobile",
                bool,
                OpenApiParameter.QUERY,
                default=False,
                description=f"true: add each user's `mobile`. {BOOLEAN_NOTE}",
            ),
        ],
        responses=envelope_responses(BlfUsersEnvelope, "The users.", (400, 404)),
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
            error_example("Company 'acme' not found.", 404),
        ],
    ),
)
class BlfUsersListView(SwanView):
    reads_live_state = True

    def get(self, request: Request, company: str) -> Response:
        params = self.params(request)
        departments = get_str_list(params, "departments")
        with_mobile = get_bool(params, "withMobile")
        self.live_probe(request, catch_up=True)
        rows = live_cache.blf_users(
            client=request.user, company=company, departments=departments, with_mobile=with_mobile
        )
        return Response(rows)


class CompanyNumberSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Identifier of the number.")
    name = serializers.CharField(help_text="`<name> - <number>`, e.g. 'primari - 937060370'.")
    alias = serializers.CharField(allow_blank=True, help_text="Alias, e.g. 'ONFARMA'; may be ''.")
    value = serializers.CharField(help_text="The number, e.g. '937060370'.")


CompanyNumbersEnvelope = envelope(
    "CompanyNumbersEnvelope",
    lambda: CompanyNumberSerializer(many=True),
    "company-numbers/{company}: the company's public numbers, ordered by name.",
)


@extend_schema_view(
    get=extend_schema(
        operation_id="company_numbers_list",
        tags=["COMPANY"],
        summary="The company's public numbers",
        parameters=[
            COMPANY_PATH,
            OpenApiParameter(
                "in_use",
                bool,
                OpenApiParameter.QUERY,
                default=False,
                description="true: only the numbers routed to something; false or "
                f"absent: all. {BOOLEAN_NOTE}",
            ),
        ],
        responses=envelope_responses(
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
class CompanyNumbersListView(SwanView):
    def get(self, request: Request, company: str) -> Response:
        params = self.params(request)
        rows = lookups.company_numbers(
            client=request.user, company=company, in_use_only=get_bool(params, "in_use")
        )
        return Response(rows)


UserStatusEnvelope = envelope(
    "UserStatusEnvelope", UserStatusSerializer, "userStatus/{extension}: the user's live status."
)


@extend_schema_field(
    {
        # allOf keeps drf-spectacular's enum hook from naming it: a second `status` enum (the
        # result's, with five values) would collide with it (a warning and a hashed name).
        "allOf": [{"type": "string", "enum": list(services.SETTABLE_STATUSES)}],
        "description": "available: unpause in every queue and clear do-not-disturb; pause: "
        "pause in every queue (409 when the user is in none); busy: set do-not-disturb. "
        "Anything else answers 400.",
    }
)
class _SettableStatusField(serializers.ChoiceField):
    pass


class UserStatusSetSerializer(serializers.Serializer):
    status = _SettableStatusField(choices=services.SETTABLE_STATUSES)
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=_REASON_MAX_LENGTH,
        help_text="The reason of a pause or busy state (e.g. 'Descanso'), shown as `description`.",
    )
    company = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The company (slug or name) to look the extension up in; needed when the "
        "extension exists in several of the key's companies.",
    )


_STATUS_EXAMPLE = {
    "extension": "200",
    "id": 1,
    "name": "Ana García",
    "status": "pause",
    "description": "Descanso",
}


@extend_schema_view(
    get=extend_schema(
        operation_id="user_status_get",
        tags=["STATUS"],
        summary="The live status of the user with an extension",
        description="Derived from the user's devices (live from the PBX), "
        "do-not-disturb and pause, first match wins: every device unreachable or no "
        "device → unavailable; ringing; busy or do-not-disturb → busy; paused → pause; "
        "else available.",
        parameters=[EXTENSION_PATH, COMPANY_QUERY],
        responses=envelope_responses(
            UserStatusEnvelope,
            "The user's status.",
            {
                404: NO_USER,
                400: "",
                409: AMBIGUOUS,
            },
        ),
        examples=[ok_example("Paused", _STATUS_EXAMPLE)],
    ),
    post=extend_schema(
        operation_id="user_status_set",
        tags=["STATUS"],
        summary="Change the status of the user with an extension",
        description="The answer is the status after the change, as `GET` gives it. "
        f"{PBX_NOTE} {BODY_NOTE}",
        parameters=[EXTENSION_PATH],
        request=UserStatusSetSerializer,
        responses=envelope_responses(
            UserStatusEnvelope,
            "The status after the change.",
            {
                400: "",
                404: NO_USER,
                409: f"{AMBIGUOUS} Or `pause` for a user in no queue on the PBX, or "
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
            ok_example("Paused", _STATUS_EXAMPLE),
            error_example("The PBX cannot be reached right now; try again later.", 503),
        ],
    ),
)
class UserStatusView(SwanView):
    reads_live_state = True

    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        extension = clean_extension(extension)
        company = get_str(params, "company")
        self.live_probe(request, catch_up=True)
        return Response(
            live_cache.user_status(client=request.user, extension=extension, company=company)
        )

    def post(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        status = get_choice(params, "status", choices=services.SETTABLE_STATUSES)
        reason = get_str(params, "reason", max_length=_REASON_MAX_LENGTH) or ""
        with gateway_for(user.company) as gateway:
            result = services.user_status_set(
                gateway=gateway, user=user, status=status, reason=reason
            )
        return Response(result)


class CallPlaceSerializer(serializers.Serializer):
    private_source = serializers.RegexField(
        r"^\d{1,20}$",
        help_text="The extension whose device rings first (1-20 digits); it must exist in "
        "`company` (else 404).",
    )
    company = serializers.CharField(
        max_length=255, help_text="The company (slug or name) of `private_source`."
    )


@extend_schema_view(
    post=extend_schema(
        operation_id="call_place",
        tags=["PBX"],
        summary="Ring an extension, then connect it to a destination (click-to-call)",
        description="The PBX rings the device of `private_source` in `company` and, once "
        "answered, dials `{destination}` in the company's outbound context. "
        f"`success` is the PBX's answer. {PBX_NOTE} {BODY_NOTE}",
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
        responses=envelope_responses(
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
            ok_example("Placed", {"success": True}),
        ],
    ),
)
class CallPlaceView(SwanView):
    def post(self, request: Request, destination: str) -> Response:
        params = self.params(request)
        destination = clean_destination(destination)
        extension = clean_extension(
            get_str(params, "private_source", required=True, max_length=20), name="private_source"
        )
        company = get_str(params, "company", required=True)
        user = lookups.user_get(client=request.user, extension=extension, company=company)
        with gateway_for(user.company) as gateway:
            success = services.call_place(gateway=gateway, user=user, destination=destination)
        return Response({"success": success})


class UserUnregisterSerializer(serializers.Serializer):
    company = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The company (slug or name) to look the extension up in; needed when the "
        "extension exists in several of the key's companies.",
    )


@extend_schema_view(
    post=extend_schema(
        operation_id="user_unregister",
        tags=["USER"],
        summary="Tell the PBX that the user logged out",
        description="The user's devices are removed from its queues and its webphone "
        f"is marked unregistered. {PBX_NOTE} {BODY_NOTE}",
        parameters=[EXTENSION_PATH],
        request=UserUnregisterSerializer,
        responses=envelope_responses(
            PbxSuccessEnvelope,
            "Whether the PBX removed every device from every queue.",
            {
                400: "",
                404: NO_USER,
                409: AMBIGUOUS,
                415: "",
                503: "",
            },
        ),
        examples=[ok_example("Done", {"success": True})],
    ),
)
class UserUnregisterView(SwanView):
    def post(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        with gateway_for(user.company) as gateway:
            success = services.user_unregister(gateway=gateway, user=user)
        return Response({"success": success})


@extend_schema_view(
    get=extend_schema(
        operation_id="current_calls_list",
        tags=["USER"],
        summary="The calls up now on the user's devices",
        description="One row per call, newest first; `duration` is the seconds since "
        "the call began.",
        parameters=[EXTENSION_PATH, COMPANY_QUERY],
        responses=envelope_responses(
            CallsEnvelope,
            "The current calls; [] when none.",
            {
                400: "",
                404: NO_USER,
                409: AMBIGUOUS,
            },
        ),
        examples=[
            ok_example(
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
class CurrentCallsListView(SwanView):
    reads_live_state = True

    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        return Response(live_selectors.current_calls(user=user))


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


@extend_schema_field(constant(True, "boolean", "true: another tab or device is logged in."))
class _TrueResultField(serializers.BooleanField):
    pass


class WebPhoneRegisteredSerializer(serializers.Serializer):
    username = serializers.RegexField(
        r"^[0-9a-f]{12}$", help_text="The MAC of the user's webphone terminal."
    )
    is_registered = _TrueResultField()


WebPhoneEnvelope = envelope(
    "WebPhoneEnvelope", WebPhoneSerializer, "web-phone-username/{extension}: the webphone's MAC."
)
WebPhoneRegisteredEnvelope = error_envelope(
    "WebPhoneRegisteredEnvelope",
    WebPhoneRegisteredSerializer,
    "web-phone-username's 409 when the webphone is already registered: an error "
    "whose `result` still carries the MAC and `is_registered: true`.",
)


_WEB_PHONE_CONFLICT = PolymorphicProxySerializer(
    component_name="WebPhoneConflict",
    serializers=[WebPhoneRegisteredEnvelope, ErrorEnvelope],
    resource_type_field_name=None,
)


@extend_schema_view(
    get=extend_schema(
        operation_id="web_phone_username_get",
        tags=["USER"],
        summary="The MAC of the user's webphone, to log in on a webphone",
        description="When the webphone already has a live registration (another tab or "
        "device is logged in) the answer is a 409 error whose `result` still carries "
        "`{username, is_registered: true}`.",
        parameters=[EXTENSION_PATH, COMPANY_QUERY],
        responses=envelope_responses(
            WebPhoneEnvelope,
            "The webphone's MAC, or null when the user has no webphone.",
            {400: "", 404: NO_USER},
            special={
                409: OpenApiResponse(
                    _WEB_PHONE_CONFLICT,
                    description="Either the webphone is already registered "
                    "(`result` is `{username, is_registered: true}`), or the extension "
                    "exists in several of the API key's companies and `company` is "
                    "absent (`result` null).",
                )
            },
        ),
        examples=[
            ok_example("Free", {"username": "0a0b0c0d0e0f", "is_registered": False}),
            ok_example("No webphone", {"username": None, "is_registered": False}),
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
class WebPhoneUsernameView(SwanView):
    reads_live_state = True

    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        phone = live_selectors.web_phone(user=user)
        if phone["is_registered"]:
            raise Conflict(
                _("The webphone of extension %(extension)s is already registered.")
                % {"extension": user.extension},
                result=phone,
            )
        return Response(phone)
