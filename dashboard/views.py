"""Supervisor pages: the list of companies one may watch, and a company's live dashboard."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from dashboard.action_views import action_panel
from dashboard.actions import allowed_actions
from dashboard.supervision import company_for
from pbx.directory.supervision import companies_for
from pbx.live.presence import STATUS_LABELS

# Texts the page's script writes; "%s" is filled in by the script.
PAGE_TEXTS = {
    "connecting": _("Connecting…"),
    "live": _("Live"),
    "stale": _("Stale: the PBX connection is down"),
    "staleUnknown": _("Stale: no word from the PBX listener"),
    "offline": _("Offline: reconnecting in %s s"),
    "soundOn": _("Alarm sound: on"),
    "soundOff": _("Alarm sound: off"),
    "alarm": _("Alarm"),
    "noAlarm": _("No alarm"),
    "waiting": _("Waiting now"),
    "completed": _("Answered"),
    "abandoned": _("Abandoned"),
    "serviceRatio": _("Service level"),
    "answeredRatio": _("Answered ratio"),
    "avgWait": _("Average wait (answered)"),
    "maxWait": _("Longest wait (answered)"),
    "members": _("Members"),
    "noMembers": _("Nobody logged in"),
    "callers": _("Callers waiting"),
    "noCallers": _("Nobody waiting"),
    "paused": _("paused"),
    "inCall": _("in a call"),
    "since": _("for"),
    "extension": _("Extension"),
    "noUsers": _("This company has no users."),
    "noQueues": _("This company has no queues."),
    "hour": _("Hour"),
    "chartLabel": _("Calls per hour today: answered and abandoned"),
}
ALARM_REASON_TEXTS = {
    "waiting_calls": _("too many callers waiting"),
    "wait_seconds": _("a caller has waited too long"),
    "service_ratio": _("service level below target"),
    "abandoned_ratio": _("answered ratio below target"),
}


@login_required
def company_list_view(request: HttpRequest) -> HttpResponse:
    companies = companies_for(request.user).order_by("name")
    return render(request, "dashboard/company_list.html", {"companies": companies})


@login_required
def company_dashboard_view(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        company = company_for(request.user, slug=slug)
    except Http404:
        # A company one may not watch looks exactly like one that does not exist.
        return render(request, "dashboard/not_found.html", {"slug": slug}, status=404)
    config = {
        "wsPath": f"/ws/dashboard/{company.slug}/",
        "wsPort": settings.SWAN_WEBSOCKET_PORT,  # None: the page's own origin (the proxy routes)
        "company": company.slug,
        "timeZone": company.time_zone,
        "statusLabels": {status: str(label) for status, label in STATUS_LABELS.items()},
        "texts": {key: str(text) for key, text in PAGE_TEXTS.items()},
        "alarmReasons": {key: str(text) for key, text in ALARM_REASON_TEXTS.items()},
    }
    context = {"company": company, "config": config}
    actions = allowed_actions(request.user)
    if actions:  # no permission, no buttons (a POST anyway is a 403)
        context["actions"] = action_panel(company, actions)
    return render(request, "dashboard/company.html", context)
