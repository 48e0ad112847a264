"""Who may watch which company from the dashboard: the one rule, for pages, streams and files."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from pbx.models import Company


def companies_for(user) -> QuerySet[Company]:
    """The companies a logged-in person may watch: all for superusers, else their supervisor's."""
    if not user.is_authenticated or not user.is_active:
        return Company.objects.none()
    if user.is_superuser:
        return Company.objects.all()
    return Company.objects.filter(supervisors__user=user)


def company_for(user, *, slug: str) -> Company:
    """The company with this slug if the person may watch it, else 404 as if it did not exist."""
    company = companies_for(user).filter(slug=slug).first()
    if company is None:
        raise Http404("No such company.")
    return company
