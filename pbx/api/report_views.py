"""Historical reports as JSON (api/reports/queues, api/reports/agents): thin, as the SWAN views."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from pbx.api.openapi import ARRAY_NOTE, envelope, envelope_responses, ok_example
from pbx.api.params import get_str, get_str_list
from pbx.api.views import SwanView
from pbx.directory.lookups import company_get
from pbx.history import reports


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


QueueReportEnvelope = envelope(
    "QueueReportEnvelope", QueueReportResultSerializer, "api/reports/queues: per queue."
)
AgentReportEnvelope = envelope(
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
            f"unknown one answers 404. {queues_note} {ARRAY_NOTE.replace('departments', 'queues')}",
        ),
    ]


_REPORT_ERRORS = {
    400: "`from`, `to` or `company` is missing or malformed, `to` is before `from` or more "
    "than 366 days after it; the message names it.",
    404: "`company` does not exist or is outside the key's companies, or a queue of `queues` "
    "is not one of the company's.",
}


class _ReportView(SwanView):
    def period_and_queues(self, request: Request):
        """Dates first (a 400 needs no lookup), then the company (404) and its queues (404)."""
        params = self.params(request)
        dates = reports.dates_get(first=get_str(params, "from"), last=get_str(params, "to"))
        company = company_get(client=request.user, ident=get_str(params, "company", required=True))
        queues = reports.report_queues(company=company, names=get_str_list(params, "queues"))
        return company, reports.period_of(company, dates), queues


@extend_schema_view(
    get=extend_schema(
        operation_id="report_queues",
        tags=["REPORTS"],
        summary="Per-queue figures over a range of days",
        description="Entries count on the local day and hour they entered the queue. "
        "Durations in seconds. Computed from the history tables that ingest keeps.",
        parameters=_report_parameters("Only these queues are listed."),
        responses=envelope_responses(QueueReportEnvelope, "One row per queue.", _REPORT_ERRORS),
    ),
)
class QueueReportView(_ReportView):
    def get(self, request: Request) -> Response:
        _company, period, queues = self.period_and_queues(request)
        return Response({"queues": reports.queue_report(queues=queues, period=period)})


@extend_schema_view(
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
        responses=envelope_responses(AgentReportEnvelope, "One row per agent.", _REPORT_ERRORS),
        examples=[
            ok_example(
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
class AgentReportView(_ReportView):
    def get(self, request: Request) -> Response:
        company, period, queues = self.period_and_queues(request)
        chosen = bool(get_str_list(self.params(request), "queues"))
        agents = reports.agent_report(company=company, queues=queues, period=period, chosen=chosen)
        return Response({"agents": agents})
