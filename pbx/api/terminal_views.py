"""SWAN v2 terminal endpoints: terminal-register POST and DELETE."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework.request import Request
from rest_framework.response import Response

from pbx.api.openapi import PBX_NOTE, PbxSuccessEnvelope, envelope_responses, ok_example
from pbx.api.views import SwanView
from pbx.directory.pbxes import gateway_for
from pbx.values import clean_mac
from terminals import services

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
_ERRORS = {
    400: "",
    404: "No terminal has the MAC, or its user is outside the key's companies.",
    409: "The terminal has no user.",
    503: "",
}


@extend_schema_view(
    post=extend_schema(
        operation_id="terminal_register",
        tags=["TERMINAL"],
        summary="Register a terminal: its user joins its queues on this device",
        description="If the terminal is registered it is first unregistered; then its "
        "user is added to each of its queues on this terminal's device and the terminal "
        f"is marked registered. No body. {PBX_NOTE}",
        parameters=[_MAC_PATH],
        request=None,
        responses=envelope_responses(
            PbxSuccessEnvelope, "Whether the PBX did every step.", _ERRORS
        ),
        examples=[ok_example("Registered", {"success": True})],
    ),
    delete=extend_schema(
        operation_id="terminal_unregister",
        tags=["TERMINAL"],
        summary="Unregister a terminal: its user leaves its queues on this device",
        description="If the terminal is not registered it is first registered; then its "
        f"user is removed from every queue. No body. {PBX_NOTE}",
        parameters=[_MAC_PATH],
        request=None,
        responses=envelope_responses(
            PbxSuccessEnvelope, "Whether the PBX did every step.", _ERRORS
        ),
        examples=[ok_example("Unregistered", {"success": True})],
    ),
)
class TerminalRegisterView(SwanView):
    def post(self, request: Request, mac: str) -> Response:
        terminal = services.terminal_get(client=request.user, mac=clean_mac(mac))
        with gateway_for(terminal.user.company) as gateway:
            success = services.terminal_register(gateway=gateway, terminal=terminal)
        return Response({"success": success})

    def delete(self, request: Request, mac: str) -> Response:
        terminal = services.terminal_get(client=request.user, mac=clean_mac(mac))
        with gateway_for(terminal.user.company) as gateway:
            success = services.terminal_unregister(gateway=gateway, terminal=terminal)
        return Response({"success": success})
