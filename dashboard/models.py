"""Supervisors: Django logins that may watch the dashboards of some companies."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from pbx.models import Company


class Supervisor(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="supervisor", verbose_name=_("user")
    )
    companies = models.ManyToManyField(
        Company, blank=True, related_name="supervisors", verbose_name=_("companies")
    )

    class Meta:
        verbose_name = _("supervisor")
        verbose_name_plural = _("supervisors")

    def __str__(self) -> str:
        return self.user.get_username()
