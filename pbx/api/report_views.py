"""Historical reports as JSON (api/reports/queues, api/reports/agents): thin, as the SWAN views."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from pbx.api.params import get_str, get_str_list
from pbx.api.views import SwanView
from pbx.directory.lookups import company_get
from pbx.history import reports


class _ReportView(SwanView):
    def period_and_queues(self, request: Request):
        """Dates first (a 400 needs no lookup), then the company (404) and its queues (404)."""
        params = self.params(request)
        dates = reports.dates_get(first=get_str(params, "from"), last=get_str(params, "to"))
        company = company_get(client=request.user, ident=get_str(params, "company", required=True))
        queues = reports.report_queues(company=company, names=get_str_list(params, "queues"))
        return company, reports.period_of(company, dates), queues


class QueueReportView(_ReportView):
    def get(self, request: Request) -> Response:
        _company, period, queues = self.period_and_queues(request)
        return Response({"queues": reports.queue_report(queues=queues, period=period)})


class AgentReportView(_ReportView):
    def get(self, request: Request) -> Response:
        company, period, queues = self.period_and_queues(request)
        chosen = bool(get_str_list(self.params(request), "queues"))
        agents = reports.agent_report(company=company, queues=queues, period=period, chosen=chosen)
        return Response({"agents": agents})
