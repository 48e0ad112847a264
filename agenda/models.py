"""Phonebooks ("agendas") and their phones."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from pbx.models import Company


class Agenda(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    company = models.ForeignKey(
        Company, models.CASCADE, null=True, blank=True, related_name="agendas"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("agenda")
        verbose_name_plural = _("agendas")

    def __str__(self) -> str:
        return self.name


class AgendaPhone(models.Model):
    agenda = models.ForeignKey(Agenda, models.CASCADE, related_name="phones")
    name = models.CharField(_("name"), max_length=200)
    number = models.CharField(_("number"), max_length=32)

    class Meta:
        ordering = ["agenda__name", "name"]
        verbose_name = _("agenda phone")
        verbose_name_plural = _("agenda phones")
        constraints = [
            models.UniqueConstraint(fields=["agenda", "number"], name="agenda_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.number}>"
