"""SWAN v2 agenda endpoints: update-agenda and delete-phones-agenda."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from agenda import services
from agenda.models import Agenda
from pbx.api.openapi import (
    BODY_NOTE,
    BodyOnDeleteSchema,
    SuccessEnvelope,
    envelope_responses,
    error_example,
)
from pbx.api.params import get_list, get_str
from pbx.api.views import SwanView
from pbx.values import max_length

_NAME_MAX_LENGTH = max_length(Agenda, "name")


class PhoneEntrySerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=services.NAME_MAX_LENGTH,
        help_text="The contact's name (no control characters).",
    )
    number = serializers.CharField(
        help_text="The phone number. Spaces, dots, dashes, slashes and brackets are dropped and a "
        "leading '+' kept; what is left must be 1-32 digits."
    )


class UpdateAgendaSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=_NAME_MAX_LENGTH,
        help_text="The agenda's name; the agenda is created if it does not exist.",
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
    name = serializers.CharField(max_length=_NAME_MAX_LENGTH, help_text="The agenda's name.")
    phones = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Numbers to delete (normalised like update-agenda's). Absent: every phone of "
        "the agenda is deleted.",
    )


@extend_schema_view(
    post=extend_schema(
        operation_id="update_agenda",
        tags=["AGENDA"],
        summary="Add or rename phones of an agenda, creating it if needed",
        description="One transaction: new numbers are created, existing numbers renamed. "
        f"A bare JSON array body is taken as `phones` (then `name` goes in the query "
        f"string). {BODY_NOTE}",
        request=UpdateAgendaSerializer,
        responses=envelope_responses(
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
            error_example("phones[1]: 'abc' is not a valid phone number.", 400),
        ],
    ),
)
class AgendaUpdateView(SwanView):
    body_array_param = "phones"

    def post(self, request: Request) -> Response:
        params = self.params(request)
        name = get_str(params, "name", required=True, max_length=_NAME_MAX_LENGTH)
        phones = services.clean_phone_entries(get_list(params, "phones", required=True))
        services.agenda_upsert(
            client=request.user, name=name, phones=phones, company=get_str(params, "company")
        )
        return Response({"success": True})


@extend_schema_view(
    delete=extend_schema(
        operation_id="delete_phones_agenda",
        tags=["AGENDA"],
        summary="Delete some or all phones of an agenda",
        description=f"One transaction. {BODY_NOTE}",
        request=DeleteAgendaPhonesSerializer,
        responses=envelope_responses(SuccessEnvelope, "The phones were deleted.", (400, 404, 415)),
        examples=[
            OpenApiExample(
                "Some phones",
                value={"name": "clientes", "phones": ["+34931234567"]},
                request_only=True,
            ),
            error_example("Agenda 'clientes' not found.", 404),
        ],
    ),
)
class AgendaPhonesDeleteView(SwanView):
    body_array_param = "phones"
    schema = BodyOnDeleteSchema()

    def delete(self, request: Request) -> Response:
        params = self.params(request)
        name = get_str(params, "name", required=True, max_length=_NAME_MAX_LENGTH)
        # Absent: every phone. Present, even empty (`[]`, `""`, null): only those listed, so a
        # client whose list came out empty deletes nothing.
        numbers = None
        if "phones" in params:
            numbers = services.clean_phone_numbers(get_list(params, "phones") or [])
        services.agenda_phones_delete(client=request.user, name=name, numbers=numbers)
        return Response({"success": True})
