"""A company the logged-in person may watch, or the dashboard's 404 (pbx/directory/supervision.py)."""

from __future__ import annotations

from django.http import Http404

from pbx.directory.supervision import companies_for
from pbx.models import Company


def company_for(user, *, slug: str) -> Company:
    """The company with this slug if the person may watch it, else 404 as if it did not exist."""
    company = companies_for(user).filter(slug=slug).first()
    if company is None:
        raise Http404("No such company.")
    return company
