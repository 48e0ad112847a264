"""SWAN v2 agenda endpoints: update-agenda and delete-phones-agenda."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from agenda import services
from pbx.api.params import get_list, get_str
from pbx.api.views import SwanView


class AgendaUpdateView(SwanView):
    body_array_param = "phones"

    def post(self, request: Request) -> Response:
        params = self.params(request)
        name = get_str(params, "name", required=True, max_length=120)
        phones = services.clean_phone_entries(get_list(params, "phones", required=True))
        services.agenda_upsert(
            client=request.user, name=name, phones=phones, company=get_str(params, "company")
        )
        return Response({"success": True})


class AgendaPhonesDeleteView(SwanView):
    body_array_param = "phones"

    def delete(self, request: Request) -> Response:
        params = self.params(request)
        name = get_str(params, "name", required=True, max_length=120)
        entries = get_list(params, "phones")
        numbers = services.clean_phone_numbers(entries) if entries is not None else None
        services.agenda_phones_delete(client=request.user, name=name, numbers=numbers)
        return Response({"success": True})
