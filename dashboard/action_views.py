"""The dashboard's actions: the panel of the company page, and the POST each button sends."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dashboard.actions import REASON_MAX_LENGTH, Action, action_run
from dashboard.supervision import company_for
from pbx.directory.pbxes import gateway_for
from pbx.models import Company, PbxUser
from swanproject.envelope import envelope

BUTTON_LABELS = {
    Action.PAUSE: gettext_lazy("Pause"),
    Action.UNPAUSE: gettext_lazy("Unpause"),
    Action.LOGOUT: gettext_lazy("Log out of the queues"),
    Action.LOGIN: gettext_lazy("Log in to the queues"),
    Action.LISTEN: gettext_lazy("Listen"),
    Action.WHISPER: gettext_lazy("Whisper"),
    Action.BARGE: gettext_lazy("Barge in"),
}
# Texts the panel's script writes.
PANEL_TEXTS = {
    "working": gettext_lazy("Asking the PBX…"),
    "pbxAnswered": gettext_lazy("The PBX answered:"),
    "failed": gettext_lazy("The action could not be sent (HTTP %s)."),
    "offline": gettext_lazy("The server cannot be reached."),
}


def _answer(status: int, *, result=None, error: str | None = None) -> HttpResponse:
    body = envelope(result=result, error_msg=error)
    return HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json; charset=utf-8",
    )


def action_panel(company: Company, actions: list[str]) -> dict:
    """The panel's context: the company's agents, the buttons allowed, the URL to post to."""
    return {
        "agents": PbxUser.objects.filter(company=company).order_by("extension"),
        "buttons": [(action, BUTTON_LABELS[action]) for action in actions],
        "takes_reason": Action.PAUSE in actions,
        "reason_max_length": REASON_MAX_LENGTH,
        "url": reverse("dashboard:action", args=[company.slug, "ACTION"]),
        "texts": {key: str(text) for key, text in PANEL_TEXTS.items()},
    }


def company_action_view(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """POST extension (and reason, for a pause): does the action, answers the envelope with
    the PBX's answers. CSRF-protected like every session POST (CsrfViewMiddleware)."""
    if request.method != "POST":
        response = _answer(405, error=_("Only POST is allowed here."))
        response["Allow"] = "POST"
        return response
    if not request.user.is_authenticated:
        return _answer(403, error=_("Log in to act on the dashboard."))
    try:
        # A company one may not watch looks exactly like one that does not exist.
        company = company_for(request.user, slug=slug)
    except Http404:
        return _answer(404, error=_("No such company."))
    if action not in Action.values:
        return _answer(404, error=_("No such action."))
    with gateway_for(company) as gateway:
        result = action_run(
            gateway=gateway,
            actor=request.user,
            company=company,
            action=action,
            extension=request.POST.get("extension", "").strip(),
            reason=request.POST.get("reason", "").strip(),
        )
    return _answer(
        result.status_code, result=result.as_dict(), error=None if result.ok else result.message
    )
