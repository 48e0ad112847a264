"""Report pages of a company (queues, agents, calls) and the CSV export of each table."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dashboard.reports import tables
from dashboard.reports.charts import bar_chart
from dashboard.supervision import company_for
from pbx.csv_cells import csv_safe
from pbx.errors import InvalidValue, NotFound
from pbx.history import reports
from pbx.history.recordings import supervisor_recording_token
from pbx.history.selectors import ANSWERED
from pbx.models import Company, PbxUser, Queue

logger = logging.getLogger("swan.dashboard")
DEFAULT_DAYS = 7
CALLS_PER_PAGE = 50
OUTCOME_CHOICES = {
    "": gettext_lazy("All calls"),
    "answered": gettext_lazy("Answered"),
    "unanswered": gettext_lazy("Unanswered"),
    "abandoned": gettext_lazy("Abandoned"),
}


@dataclass
class ReportQuery:
    """What the page was asked for: the company, its days, queues and (calls page) filters."""

    company: Company
    first: date
    last: date
    all_queues: list[Queue]
    queues: list[Queue]
    chosen: list[str]
    agent: PbxUser | None = None
    outcome: str = ""
    error: str | None = None

    @property
    def period(self) -> reports.Period:
        return reports.period_of(self.company, (self.first, self.last))

    def query_string(self, **extra) -> str:
        params: list[tuple[str, str]] = [
            ("from", self.first.isoformat()),
            ("to", self.last.isoformat()),
        ]
        params += [("queues", name) for name in self.chosen]
        params += [(key, value) for key, value in extra.items() if value]
        return urlencode(params)


def _query(request: HttpRequest, company: Company) -> ReportQuery:
    """The period (default: the last 7 local days), the queues chosen, and the calls' filters.

    Bad input leaves the default period and every queue, with the message to show.
    """
    today = timezone.now().astimezone(ZoneInfo(company.time_zone)).date()
    all_queues = reports.report_queues(company=company, names=None)
    query = ReportQuery(
        company=company,
        first=today - timedelta(days=DEFAULT_DAYS - 1),
        last=today,
        all_queues=all_queues,
        queues=all_queues,
        chosen=[],
    )
    get = request.GET
    try:
        if get.get("from") or get.get("to"):
            query.first, query.last = reports.dates_get(first=get.get("from"), last=get.get("to"))
        chosen = [name for name in get.getlist("queues") if name]
        query.queues = (
            reports.report_queues(company=company, names=chosen) if chosen else all_queues
        )
        query.chosen = chosen
        query.agent = reports.report_agent(company=company, extension=get.get("agent"))
        outcome = get.get("outcome", "")
        if outcome not in OUTCOME_CHOICES:
            raise InvalidValue(
                _("The parameter '%(name)s' must be one of: %(choices)s.")
                % {"name": "outcome", "choices": ", ".join(c for c in OUTCOME_CHOICES if c)}
            )
        query.outcome = outcome
    except (InvalidValue, NotFound) as exc:
        query.error = str(exc.detail) if hasattr(exc, "detail") else str(exc)
    return query


def _company_or_404(request: HttpRequest, slug: str) -> Company | HttpResponse:
    try:
        return company_for(request.user, slug=slug)
    except Http404:
        return render(request, "dashboard/not_found.html", {"slug": slug}, status=404)


def _page(request: HttpRequest, template: str, query: ReportQuery, section: str, **context):
    base = reverse("dashboard:reports", kwargs={"slug": query.company.slug})
    context.update(
        company=query.company,
        query=query,
        section=section,
        outcome_choices=[(key, str(label)) for key, label in OUTCOME_CHOICES.items()],
        queue_rows=max(2, min(len(query.all_queues), 6)),
        links={
            "queues": f"{base}?{query.query_string()}",
            "agents": f"{base}agents/?{query.query_string()}",
            "calls": f"{base}calls/?{query.query_string()}",
        },
    )
    return render(request, template, context, status=400 if query.error else 200)


def _export_url(query: ReportQuery, table: str, **extra) -> str:
    url = reverse("dashboard:report-export", kwargs={"slug": query.company.slug, "table": table})
    return f"{url}?{query.query_string(**extra)}"


@login_required
def queues_view(request: HttpRequest, slug: str) -> HttpResponse:
    company = _company_or_404(request, slug)
    if isinstance(company, HttpResponse):
        return company
    query = _query(request, company)
    rows = [] if query.error else reports.queue_report(queues=query.queues, period=query.period)
    days = tables.days_table(rows)
    hours = tables.hours_table(rows)
    waits = tables.abandon_waits_table(rows)
    step = max(1, len(days.rows) // 15)  # a readable number of day labels
    return _page(
        request,
        "dashboard/reports/queues.html",
        query,
        "queues",
        summary=tables.queues_table(rows),
        hours=hours,
        days=days,
        waits=waits,
        hours_chart=_chart(hours, labels=[row[0][:2] for row in hours.rows]),
        days_chart=_chart(
            days, labels=[row[0][5:] if n % step == 0 else "" for n, row in enumerate(days.rows)]
        ),
        waits_chart=bar_chart(
            [str(row[0]) for row in waits.rows],
            [[row[2] for row in waits.rows]],
            [_wait_title(*row) for row in waits.rows],
        ),
        exports={
            name.replace("-", "_"): _export_url(query, name)
            for name in ("queues", "hours", "days", "abandon-waits")
        },
        thresholds=[
            (q.shown_name, q.service_level_seconds, q.short_abandon_seconds) for q in query.queues
        ],
    )


def _wait_title(low: int, high: int | str, abandoned: int) -> str:
    if high == "":
        return _("%(low)s s or more: %(abandoned)s abandoned") % {
            "low": low,
            "abandoned": abandoned,
        }
    return _("%(low)s to %(high)s s: %(abandoned)s abandoned") % {
        "low": low,
        "high": high,
        "abandoned": abandoned,
    }


def _chart(table: tables.Table, *, labels: list[str]):
    """Answered and abandoned bars of a table whose rows are (label, answered, abandoned, …)."""
    return bar_chart(
        labels,
        [[row[1] for row in table.rows], [row[2] for row in table.rows]],
        [
            _("%(label)s: %(answered)s answered, %(abandoned)s abandoned")
            % {"label": row[0], "answered": row[1], "abandoned": row[2]}
            for row in table.rows
        ],
    )


@login_required
def agents_view(request: HttpRequest, slug: str) -> HttpResponse:
    company = _company_or_404(request, slug)
    if isinstance(company, HttpResponse):
        return company
    query = _query(request, company)
    agents = (
        []
        if query.error
        else reports.agent_report(
            company=company, queues=query.queues, period=query.period, chosen=bool(query.chosen)
        )
    )
    table = tables.agents_table(agents)
    calls = reverse("dashboard:report-calls", kwargs={"slug": company.slug})
    return _page(
        request,
        "dashboard/reports/agents.html",
        query,
        "agents",
        table=table,
        reasons=tables.pause_reasons(agents),
        rows=[(row, f"{calls}?{query.query_string(agent=row[0])}") for row in table.rows],
        exports={"agents": _export_url(query, "agents")},
    )


@login_required
def calls_view(request: HttpRequest, slug: str) -> HttpResponse:
    company = _company_or_404(request, slug)
    if isinstance(company, HttpResponse):
        return company
    query = _query(request, company)
    page = None
    rows = []
    if not query.error:
        entries = reports.call_rows(
            queues=query.queues, period=query.period, agent=query.agent, outcome=query.outcome
        )
        page = Paginator(entries, CALLS_PER_PAGE).get_page(request.GET.get("page"))
        labels = {q.name: q.shown_name for q in query.all_queues}
        zone = query.period.zone
        outcomes = tables.outcome_labels()
        for entry in page.object_list:
            rows.append(
                {
                    "cells": tables.call_cells(entry, zone=zone, labels=labels, outcomes=outcomes),
                    "outcome": entry.outcome,
                    "recording": _recording_url(request, entry, company)
                    if entry.outcome in ANSWERED
                    else None,
                }
            )
    filters = {"agent": query.agent.extension if query.agent else "", "outcome": query.outcome}
    return _page(
        request,
        "dashboard/reports/calls.html",
        query,
        "calls",
        columns=tables.CALL_COLUMNS,
        rows=rows,
        page=page,
        agents=PbxUser.objects.filter(company=company).order_by("extension"),
        filters=filters,
        page_query=query.query_string(**filters),
        exports={"calls": _export_url(query, "calls", **filters)},
    )


def _recording_url(request: HttpRequest, entry, company: Company) -> str:
    """The signed, expiring recording-file URL of an answered call, issued to this supervisor."""
    token = supervisor_recording_token(call=entry.callid, company_id=company.pk, login=request.user)
    return reverse("recording-file", kwargs={"token": token})


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def export_view(request: HttpRequest, slug: str, table: str) -> HttpResponse:
    company = _company_or_404(request, slug)
    if isinstance(company, HttpResponse):
        return company
    if table not in ("queues", "hours", "days", "abandon-waits", "agents", "calls"):
        return render(request, "dashboard/not_found.html", {"slug": slug}, status=404)
    query = _query(request, company)
    if query.error:
        return HttpResponse(query.error, status=400, content_type="text/plain; charset=utf-8")
    period = query.period
    if table == "calls":
        entries = reports.call_rows(
            queues=query.queues, period=period, agent=query.agent, outcome=query.outcome
        )
        labels = {q.name: q.shown_name for q in query.all_queues}
        columns = tables.CALL_COLUMNS
        lines = tables.call_lines(
            entries.iterator(chunk_size=2000),
            zone=period.zone,
            labels=labels,
            outcomes=tables.outcome_labels(),
        )
    elif table == "agents":
        agents = reports.agent_report(
            company=company, queues=query.queues, period=period, chosen=bool(query.chosen)
        )
        built = tables.agents_table(agents)
        columns, lines = built.columns, built.rows
    else:
        rows = reports.queue_report(queues=query.queues, period=period)
        built = {
            "queues": tables.queues_table,
            "hours": tables.hours_table,
            "days": tables.days_table,
            "abandon-waits": tables.abandon_waits_table,
        }[table](rows)
        columns, lines = built.columns, built.rows
    writer = csv.writer(_Echo())
    header = [str(title) for title in columns]  # now, in the request's language

    def content():
        yield "\ufeff"  # a BOM: spreadsheets then read the file as UTF-8
        yield writer.writerow(header)
        for line in lines:
            yield writer.writerow([csv_safe(v) if isinstance(v, str) else v for v in line])

    filename = f"{company.slug}-{table}-{query.first.isoformat()}-{query.last.isoformat()}.csv"
    response = StreamingHttpResponse(content(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    logger.info("report exported company=%s table=%s user=%s", company.slug, table, request.user.pk)
    return response
