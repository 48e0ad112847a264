"""SWAN v2 terminal endpoints: terminal-register POST and DELETE."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from pbx.api.views import SwanView
from pbx.gateway.connection import pbx_gateway
from pbx.values import clean_mac
from terminals import services


class TerminalRegisterView(SwanView):
    def post(self, request: Request, mac: str) -> Response:
        terminal = services.terminal_get(client=request.user, mac=clean_mac(mac))
        with pbx_gateway() as gateway:
            success = services.terminal_register(gateway=gateway, terminal=terminal)
        return Response({"success": success})

    def delete(self, request: Request, mac: str) -> Response:
        terminal = services.terminal_get(client=request.user, mac=clean_mac(mac))
        with pbx_gateway() as gateway:
            success = services.terminal_unregister(gateway=gateway, terminal=terminal)
        return Response({"success": success})
