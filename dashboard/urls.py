"""Supervisor dashboard pages."""

from __future__ import annotations

from django.urls import path

from dashboard.action_views import company_action_view
from dashboard.reports import views as reports
from dashboard.views import company_dashboard_view, company_list_view
from dashboard.wallboard import company_wallboard_view

app_name = "dashboard"

urlpatterns = [
    path("", company_list_view, name="company-list"),
    path("<slug:slug>/", company_dashboard_view, name="company"),
    path("<slug:slug>/wallboard/", company_wallboard_view, name="wallboard"),
    path("<slug:slug>/reports/", reports.queues_view, name="reports"),
    path("<slug:slug>/reports/agents/", reports.agents_view, name="report-agents"),
    path("<slug:slug>/reports/calls/", reports.calls_view, name="report-calls"),
    path("<slug:slug>/reports/<slug:table>.csv", reports.export_view, name="report-export"),
    path("<slug:slug>/actions/<str:action>/", company_action_view, name="action"),
]
