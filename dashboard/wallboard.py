"""The wallboard: a company's agents and queues on one wall screen, from the dashboard's stream."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from dashboard.supervision import company_for
from dashboard.views import PAGE_TEXTS
from pbx.live.presence import STATUS_LABELS

LOGGED_OUT = "logged_out"

# Texts the page's script writes; "{name}" placeholders are filled in by the script.
WALLBOARD_TEXTS = {
    **{
        key: PAGE_TEXTS[key]
        for key in (
            "connecting",
            "live",
            "stale",
            "staleUnknown",
            "offline",
            "alarm",
            "waiting",
            "completed",
            "abandoned",
            "serviceRatio",
            "extension",
            "noUsers",
            "noQueues",
        )
    },
    "longestWait": _("Longest wait now"),
    "freeAgents": _("Free agents"),
    "loggedOutLabel": _("Logged out"),
    "agentsTitle": _("Agents"),
}
# One sentence per alarm rule: which threshold is broken and by how much.
ALARM_TEXTS = {
    "waiting_calls": _("{value} waiting, alarm at {threshold}: {excess} over"),
    "wait_seconds": _("Waited {value}, alarm at {threshold}: {excess} over"),
    "service_ratio": _("Service level {value}, target {threshold}: {excess} points under"),
    "abandoned_ratio": _("Answered {value}, target {threshold}: {excess} points under"),
}


@login_required
def company_wallboard_view(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        company = company_for(request.user, slug=slug)
    except Http404:
        # As the dashboard: a company one may not watch looks exactly like one that does not exist.
        return render(request, "dashboard/not_found.html", {"slug": slug}, status=404)
    labels = {status: str(label) for status, label in STATUS_LABELS.items()}
    labels[LOGGED_OUT] = str(WALLBOARD_TEXTS["loggedOutLabel"])
    config = {
        "wsPath": f"/ws/dashboard/{company.slug}/",
        "wsPort": settings.SWAN_WEBSOCKET_PORT,  # None: the page's own origin (the proxy routes)
        "company": company.slug,
        "timeZone": company.time_zone,
        "language": request.LANGUAGE_CODE,
        "statusLabels": labels,
        "texts": {key: str(text) for key, text in WALLBOARD_TEXTS.items()},
        "alarmTexts": {key: str(text) for key, text in ALARM_TEXTS.items()},
    }
    return render(request, "dashboard/wallboard.html", {"company": company, "config": config})
