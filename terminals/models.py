"""Phones by MAC: webphones, desk phones and softphones, and whether they are registered."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from pbx.models import PbxUser, on_pbx, validate_no_control_characters


class Terminal(models.Model):
    class Type(models.TextChoices):
        WEBPHONE = "webphone", _("webphone")
        DESK = "desk", _("desk phone")
        SOFTPHONE = "softphone", _("softphone")

    mac = models.CharField(
        _("MAC"), max_length=12, unique=True, help_text=_("12 lower-case hex digits.")
    )
    type = models.CharField(_("type"), max_length=16, choices=Type.choices, default=Type.DESK)
    user = models.ForeignKey(
        PbxUser, models.SET_NULL, null=True, blank=True, related_name="terminals"
    )
    interface = models.CharField(
        _("PBX device interface"),
        max_length=128,
        help_text=_("For example PJSIP/200."),
        validators=[validate_no_control_characters],
    )
    registered = models.BooleanField(_("registered"), default=False)
    registered_at = models.DateTimeField(_("registered at"), null=True, blank=True)

    class Meta:
        ordering = ["mac"]
        verbose_name = _("terminal")
        verbose_name_plural = _("terminals")
        indexes = [models.Index(fields=["interface"], name="terminal_interface_idx")]

    def __str__(self) -> str:
        return f"{self.mac_display} ({self.get_type_display()})"

    def clean(self) -> None:
        """A device of a PBX belongs to one company: live state and call history are matched by
        it. Another PBX's device of the same name is another device."""
        user = self.user
        if user is None or not self.interface:
            return
        clash = (
            Terminal.objects.filter(interface__iexact=self.interface, user__isnull=False)
            .filter(on_pbx(user.company.pbx_key, "user__company"))
            .exclude(user__company_id=user.company_id)
            .exclude(pk=self.pk)
            .select_related("user__company")
            .first()
        )
        if clash is not None:
            raise ValidationError(
                {
                    "interface": _(
                        "%(interface)s is already a device of company %(company)s: "
                        "a device belongs to one company."
                    )
                    % {
                        "interface": self.interface,
                        "company": clash.user.company if clash.user else "",
                    }
                }
            )

    @property
    def mac_display(self) -> str:
        return ":".join(self.mac[i : i + 2] for i in range(0, 12, 2))
