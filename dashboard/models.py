"""Supervisors (Django logins that may watch, and act on, some companies) and their audit log."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pbx.gateway.base import SPY_TARGET_PATTERN
from pbx.models import Company, validate_no_control_characters

# A device the PBX can ring and ChanSpy's Originate can name: Tech/resource, nothing else.
phone_validator = RegexValidator(SPY_TARGET_PATTERN, _("A PBX device such as PJSIP/250."))


class Supervisor(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="supervisor", verbose_name=_("user")
    )
    companies = models.ManyToManyField(
        Company, blank=True, related_name="supervisors", verbose_name=_("companies")
    )
    phone = models.CharField(
        _("phone"),
        max_length=128,
        blank=True,
        validators=[validate_no_control_characters, phone_validator],
        help_text=_(
            "The supervisor's own phone as the PBX names it (e.g. PJSIP/250): it rings to "
            "listen to, whisper to or barge into an agent's call."
        ),
    )
    may_pause = models.BooleanField(_("may pause and unpause agents"), default=False)
    may_log_agents = models.BooleanField(
        _("may log agents out of their queues and back in"), default=False
    )
    may_listen = models.BooleanField(_("may listen to agents' calls"), default=False)
    may_whisper = models.BooleanField(_("may whisper to agents in a call"), default=False)
    may_barge = models.BooleanField(_("may barge into agents' calls"), default=False)

    class Meta:
        verbose_name = _("supervisor")
        verbose_name_plural = _("supervisors")

    def __str__(self) -> str:
        return self.user.get_username()


class AuditEntry(models.Model):
    """One action a supervisor asked of the PBX from the dashboard, and how it ended."""

    class Action(models.TextChoices):
        PAUSE = "pause", _("pause")
        UNPAUSE = "unpause", _("unpause")
        LOGOUT = "logout", _("log out of the queues")
        LOGIN = "login", _("log in to the queues")
        LISTEN = "listen", _("listen")
        WHISPER = "whisper", _("whisper")
        BARGE = "barge", _("barge")

    class Outcome(models.TextChoices):
        DONE = "done", _("done")
        REFUSED = "refused", _("refused")  # by the PBX, or not possible (no call, no phone)
        UNAVAILABLE = "unavailable", _("PBX unavailable")
        DENIED = "denied", _("not allowed")

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("supervisor"),
    )
    username = models.CharField(_("login"), max_length=150)  # kept when the login is deleted
    company = models.ForeignKey(
        Company,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("company"),
    )
    company_name = models.CharField(_("company name"), max_length=120)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    extension = models.CharField(_("extension"), max_length=20)
    target_name = models.CharField(_("agent"), max_length=120, blank=True)
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    outcome = models.CharField(_("result"), max_length=16, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"))
    message = models.TextField(_("message shown"), blank=True)
    pbx_answer = models.TextField(_("the PBX's answer"), blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["company", "-at"], name="audit_company_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.extension}"
