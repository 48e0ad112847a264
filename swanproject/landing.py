"""The front door at `/`: what this service is, and links to its dashboard, admin and API docs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from swanproject.envelope import error_response


def landing_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = error_response(
            405, _('Method "%(method)s" not allowed.') % {"method": request.method}
        )
        response["Allow"] = "GET, HEAD"
        return response
    return render(request, "landing.html")
