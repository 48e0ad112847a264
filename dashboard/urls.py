"""Supervisor dashboard pages."""

from __future__ import annotations

from django.urls import path

from dashboard.action_views import company_action_view
from dashboard.views import company_dashboard_view, company_list_view
from dashboard.wallboard import company_wallboard_view

app_name = "dashboard"

urlpatterns = [
    path("", company_list_view, name="company-list"),
    path("<slug:slug>/", company_dashboard_view, name="company"),
    path("<slug:slug>/wallboard/", company_wallboard_view, name="wallboard"),
    path("<slug:slug>/actions/<str:action>/", company_action_view, name="action"),
]
