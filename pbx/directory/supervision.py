"""Who may watch which company: the one rule, for the dashboard's pages, streams and recordings."""

from __future__ import annotations

from django.db.models import QuerySet

from pbx.models import Company


def companies_for(user) -> QuerySet[Company]:
    """The companies a logged-in person may watch: all for superusers, else their supervisor's."""
    if not user.is_authenticated or not user.is_active:
        return Company.objects.none()
    if user.is_superuser:
        return Company.objects.all()
    return Company.objects.filter(supervisors__user=user)
