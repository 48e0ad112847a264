"""The directory: PBXes, companies, departments, users, queues, public numbers and API keys."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext_lazy as _

from pbx.text import has_control_character

extension_validator = RegexValidator(r"^[0-9]{1,20}\Z", _("An extension is 1 to 20 digits."))
slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9_-]*$", _("Lower-case letters, digits, - and _."))
# Part of an AstDB key and of a `Custom:` device name: letters, digits, - and _ only. It may not end
# in a digit, so that prefix + extension names one (prefix, extension) pair: "a"+"12" ≠ "a1"+"2".
dnd_prefix_validator = RegexValidator(
    r"^(?:[A-Za-z0-9_-]*[A-Za-z_-])?\Z",
    _("Letters, digits, - and _, not ending in a digit (e.g. acme-)."),
)


def validate_no_control_characters(value: str) -> None:
    """Names and devices reach the PBX (AMI is line based): no CR, LF or other control."""
    if has_control_character(value):
        raise ValidationError(_("Control characters (line breaks, tabs…) are not allowed."))


# The PBX of the settings (AMI_*): the PBX of every company that names none. Its name is taken.
DEFAULT_PBX = "default"
# A PBX's AMI secret is read only from a variable with this prefix. Whoever may edit a PBX names
# the variable and the host SWAN sends the secret to: any other variable (DATABASE_URL,
# SECRET_KEY…) would be sent to that host at login.
SECRET_ENV_PREFIX = "SWAN_PBX_"
SECRET_ENV_NAME = re.compile(rf"{SECRET_ENV_PREFIX}[A-Z0-9_]+")
secret_env_validator = RegexValidator(
    rf"^{SECRET_ENV_NAME.pattern}\Z",
    _(
        "An environment variable name that starts with SWAN_PBX_ (then A-Z, 0-9 and _), e.g. "
        "SWAN_PBX_A_SECRET: a PBX's secret is read from no other variable."
    ),
)
# Dialplan contexts and queue names reach the PBX as AMI values: no blanks, no control characters.
token_validator = RegexValidator(r"^[^\s]+\Z", _("No blanks or line breaks."))


def validate_not_default_pbx(value: str) -> None:
    if value.lower() == DEFAULT_PBX:
        raise ValidationError(
            _("'%(name)s' is the PBX of the settings (AMI_HOST…): choose another name."),
            params={"name": value},
        )


def validate_time_zone(value: str) -> None:
    from zoneinfo import available_timezones

    if value not in available_timezones():
        raise ValidationError(_("'%(value)s' is not a known time zone."), params={"value": value})


class Pbx(models.Model):
    """An Asterisk server SWAN talks to over AMI and reads the history files of.

    The AMI secret is not stored: `secret_env` names the environment variable that holds it, so a
    database dump alone does not reveal it. Companies that name no PBX are on the settings' one
    (AMI_HOST, AMI_PORT, AMI_USERNAME, AMI_SECRET), called `default`.
    """

    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[slug_validator, validate_not_default_pbx],
        help_text=_("Lower-case letters, digits, - and _. It keys live state and history."),
    )
    host = models.CharField(
        _("AMI host"), max_length=255, validators=[validate_no_control_characters, token_validator]
    )
    port = models.PositiveIntegerField(
        _("AMI port"),
        default=5038,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
    )
    username = models.CharField(
        _("AMI user"), max_length=80, validators=[validate_no_control_characters, token_validator]
    )
    secret_env = models.CharField(
        _("AMI secret: environment variable"),
        max_length=128,
        validators=[secret_env_validator],
        help_text=_(
            "The name of the environment variable that holds the AMI secret in the listener's "
            "and web workers' environment, e.g. SWAN_PBX_A_SECRET. The secret is never stored."
        ),
    )
    queue_log = models.CharField(
        _("queue_log file"),
        max_length=512,
        blank=True,
        validators=[validate_no_control_characters],
        help_text=_("Path of its queue_log, as ingest_queue_log --pbx reads it. Empty: none."),
    )
    cdr_csv = models.CharField(
        _("CDR file"),
        max_length=512,
        blank=True,
        validators=[validate_no_control_characters],
        help_text=_("Path of its Master.csv, as ingest_cdr --pbx reads it. Empty: none."),
    )
    dial_context = models.CharField(
        _("default dial context"),
        max_length=80,
        default="from-internal",
        validators=[validate_no_control_characters, token_validator],
        help_text=_("Click-to-call's dialplan context for companies that set none."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("PBX")
        verbose_name_plural = _("PBXes")

    def __str__(self) -> str:
        return self.name

    def secret(self) -> str | None:
        """The AMI secret from the environment; None when the variable is not set or empty, or
        is not a SWAN_PBX_ variable (a row written before that rule: checks.pbx_secret_check)."""
        if not SECRET_ENV_NAME.fullmatch(self.secret_env):
            return None
        return os.environ.get(self.secret_env) or None


def on_pbx(key: str, company: str = "") -> models.Q:
    """Rows whose company (reached by the `company` path, e.g. "user__company") is on PBX `key`."""
    field = f"{company}__pbx" if company else "pbx"
    if key == DEFAULT_PBX:
        return models.Q(**{f"{field}__isnull": True})
    return models.Q(**{field: key})


class Company(models.Model):
    slug = models.SlugField(_("slug"), max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(_("name"), max_length=120, unique=True)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default=settings.SWAN_DEFAULT_COMPANY_TIME_ZONE,
        validators=[validate_time_zone],
    )
    pbx = models.ForeignKey(
        Pbx,
        models.PROTECT,
        to_field="name",
        db_column="pbx",
        null=True,
        blank=True,
        related_name="companies",
        verbose_name=_("PBX"),
        help_text=_("The Asterisk server of its phones and queues. Empty: the settings' (AMI_*)."),
    )
    dial_context = models.CharField(
        _("outbound dial context"),
        max_length=80,
        blank=True,
        validators=[validate_no_control_characters, token_validator],
        default="",
        help_text=_(
            "Asterisk dialplan context that click-to-call dials the destination in. "
            "Empty: the PBX's default dial context."
        ),
    )
    dnd_prefix = models.CharField(
        _("DND prefix"),
        max_length=20,
        blank=True,
        default="",
        validators=[dnd_prefix_validator],
        help_text=_(
            "Empty: do-not-disturb is FreePBX's AstDB DND/<extension> and Custom:DND<extension>. "
            "Set it when several companies share the PBX and an extension number: "
            "DND/<prefix><extension> and Custom:DND<prefix><extension> (docs/pbx.md)."
        ),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        constraints = [
            # DND keys live in one PBX's AstDB and hints: the prefix is unique per PBX.
            models.UniqueConstraint(
                Coalesce("pbx", models.Value(DEFAULT_PBX)),
                Lower("dnd_prefix"),
                condition=~models.Q(dnd_prefix=""),
                name="company_dnd_prefix_unique_on_pbx",
                violation_error_message=_(
                    "Another company on this PBX already uses this DND prefix."
                ),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        # A queue keeps its company's PBX, so that its name is unique per PBX in the database.
        Queue.objects.filter(company=self).exclude(pbx=self.pbx_key).update(pbx=self.pbx_key)

    @property
    def pbx_key(self) -> str:
        """The name that keys this company's live state and history: its PBX's."""
        return self.pbx_id or DEFAULT_PBX

    def clean(self) -> None:
        if self.pk is None:
            return
        names = Queue.objects.filter(company=self).values_list("name", flat=True)
        clash = (
            Queue.objects.filter(pbx=self.pbx_key, name__in=names)
            .exclude(company=self)
            .select_related("company")
            .first()
        )
        if clash is not None:
            raise ValidationError(
                {
                    "pbx": _(
                        "Queue %(queue)s of company %(company)s is on that PBX already: "
                        "a queue name is one queue on a PBX."
                    )
                    % {"queue": clash.name, "company": clash.company}
                }
            )
        self._clean_devices()

    def _clean_devices(self) -> None:
        """A device of a PBX belongs to one company (terminals/models.py): moving the company
        must not bring a terminal onto a PBX where another company has the same device."""
        Terminal = apps.get_model("terminals", "Terminal")  # terminals.models imports this module
        interfaces = list(
            Terminal.objects.filter(user__company=self)
            .exclude(interface="")
            .values_list("interface", flat=True)
        )
        if not interfaces:
            return
        clash = (
            Terminal.objects.filter(user__isnull=False)
            .filter(on_pbx(self.pbx_key, "user__company"))
            .exclude(user__company=self)
            .annotate(lowered=Lower("interface"))
            .filter(lowered__in={interface.lower() for interface in interfaces})
            .select_related("user__company")
            .first()
        )
        if clash is not None:
            raise ValidationError(
                {
                    "pbx": _(
                        "Device %(interface)s of company %(company)s is on that PBX "
                        "already: a device belongs to one company."
                    )
                    % {"interface": clash.interface, "company": clash.user and clash.user.company}
                }
            )


class Department(models.Model):
    company = models.ForeignKey(Company, models.CASCADE, related_name="departments")
    name = models.CharField(_("name"), max_length=120)

    class Meta:
        ordering = ["company__name", "name"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="department_unique_in_company")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.company})"


class PbxUser(models.Model):
    """A person with an extension on the PBX (not a login of this service)."""

    company = models.ForeignKey(Company, models.CASCADE, related_name="users")
    extension = models.CharField(_("extension"), max_length=20, validators=[extension_validator])
    name = models.CharField(_("name"), max_length=120, validators=[validate_no_control_characters])
    mobile = models.CharField(_("mobile"), max_length=32, blank=True)
    department = models.ForeignKey(
        Department, models.SET_NULL, null=True, blank=True, related_name="users"
    )

    class Meta:
        ordering = ["company__name", "extension"]
        verbose_name = _("PBX user")
        verbose_name_plural = _("PBX users")
        constraints = [
            models.UniqueConstraint(
                fields=["company", "extension"], name="extension_unique_in_company"
            )
        ]
        indexes = [models.Index(fields=["extension"], name="pbxuser_extension_idx")]

    def __str__(self) -> str:
        return f"{self.extension} {self.name}"

    def clean(self) -> None:
        department = self.department
        if department is not None and department.company_id != self.company_id:
            raise ValidationError({"department": _("The department belongs to another company.")})


class Queue(models.Model):
    """An Asterisk queue, with the service level and alarm rules of contract.md."""

    company = models.ForeignKey(Company, models.CASCADE, related_name="queues")
    name = models.CharField(
        _("Asterisk queue name"),
        max_length=128,
        validators=[validate_no_control_characters],
        help_text=_("Unique on its PBX: two PBXes may each have a queue of this name."),
    )
    pbx = models.CharField(
        _("PBX"),
        max_length=64,
        default=DEFAULT_PBX,
        editable=False,
        help_text=_("Its company's PBX, kept here so that the name is unique per PBX."),
    )
    display_name = models.CharField(
        _("display name"),
        max_length=128,
        blank=True,
        validators=[validate_no_control_characters],
        help_text=_(
            "The name supervisors see on the dashboard, the wallboard and reports. "
            "Empty: the Asterisk queue name."
        ),
    )
    service_level_seconds = models.PositiveIntegerField(_("service level (seconds)"), default=20)
    short_abandon_seconds = models.PositiveIntegerField(
        _("short abandon under (seconds)"),
        default=5,
        help_text=_(
            "Callers who hang up sooner are short abandons: reported apart and left out of the "
            "service level. 0: none."
        ),
    )
    alarm_waiting_calls = models.PositiveIntegerField(
        _("alarm: callers waiting at least"), null=True, blank=True, default=5
    )
    alarm_wait_seconds = models.PositiveIntegerField(
        _("alarm: longest wait at least (seconds)"), null=True, blank=True, default=60
    )
    alarm_service_ratio_below = models.DecimalField(
        _("alarm: service ratio below (%)"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    alarm_abandoned_ratio_below = models.DecimalField(
        _("alarm: abandoned ratio below (%)"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    members = models.ManyToManyField(PbxUser, through="QueueMember", related_name="queues")

    class Meta:
        ordering = ["name"]
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        constraints = [
            models.UniqueConstraint(
                fields=["pbx", "name"],
                name="queue_name_unique_per_pbx",
                violation_error_message=_("A queue of this name is on this PBX already."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if self.company_id is not None:
            self.pbx = self.company.pbx_key
        super().save(*args, **kwargs)

    def clean(self) -> None:
        # The form leaves `pbx` out, so Django skips the constraint: checked here on the PBX it gets.
        if self.company_id is None or not self.name:
            return
        clash = (
            Queue.objects.filter(pbx=self.company.pbx_key, name=self.name)
            .exclude(pk=self.pk)
            .select_related("company")
            .first()
        )
        if clash is not None:
            raise ValidationError(
                {
                    "name": _("Company %(company)s has a queue %(queue)s on this PBX already.")
                    % {"company": clash.company, "queue": clash.name}
                }
            )

    @property
    def shown_name(self) -> str:
        """The name to show people: the display name, else the Asterisk name."""
        return self.display_name or self.name


class QueueMember(models.Model):
    """A user configured to answer a queue."""

    queue = models.ForeignKey(Queue, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(PbxUser, models.CASCADE, related_name="queue_memberships")
    penalty = models.PositiveIntegerField(_("penalty"), default=0)

    class Meta:
        ordering = ["queue__name", "user__extension"]
        verbose_name = _("queue member")
        verbose_name_plural = _("queue members")
        constraints = [
            models.UniqueConstraint(fields=["queue", "user"], name="queue_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.queue}"

    def clean(self) -> None:
        if self.queue_id and self.user_id and self.queue.company_id != self.user.company_id:
            raise ValidationError(_("A queue's members must belong to the queue's company."))


class PublicNumber(models.Model):
    company = models.ForeignKey(Company, models.CASCADE, related_name="numbers")
    name = models.CharField(_("name"), max_length=120)
    alias = models.CharField(_("alias"), max_length=120, blank=True)
    number = models.CharField(_("number"), max_length=32)
    in_use = models.BooleanField(_("in use"), default=False)

    class Meta:
        ordering = ["company__name", "name", "number"]
        verbose_name = _("public number")
        verbose_name_plural = _("public numbers")
        constraints = [
            models.UniqueConstraint(fields=["company", "number"], name="number_unique_in_company")
        ]

    def __str__(self) -> str:
        return f"{self.name} - {self.number}"


def hash_api_key(raw_key: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def validate_networks(value: str) -> None:
    for item in value.split():
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValidationError(
                _("'%(item)s' is not an IP network."), params={"item": item}
            ) from exc


# DRF's rate format, as SWAN_THROTTLE_RATE: requests per second, minute, hour or day.
throttle_rate_validator = RegexValidator(
    r"^[1-9][0-9]{0,8}/(?:s|sec|second|m|min|minute|h|hour|d|day)\Z",
    _(
        "A rate is a number of requests per second, minute, hour or day, "
        "such as 60000/min, 1000/s or 5000/h."
    ),
    code="invalid_rate",
)


class ApiKey(models.Model):
    """A key for the helpdesk client; the raw key is shown once and only its hash is kept."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    all_companies = models.BooleanField(
        _("all companies"),
        default=False,
        help_text=_("The key sees every company, present and future; leave the companies empty."),
    )
    companies = models.ManyToManyField(
        Company,
        blank=True,
        related_name="api_keys",
        verbose_name=_("companies"),
        help_text=_("The companies a limited key sees. None left: the key sees nothing."),
    )
    allowed_networks = models.TextField(
        _("allowed networks"),
        blank=True,
        validators=[validate_networks],
        help_text=_("Client networks in CIDR notation, separated by spaces or lines. Empty: any."),
    )
    throttle_rate = models.CharField(
        _("rate limit"),
        max_length=20,
        blank=True,
        default="",
        validators=[throttle_rate_validator],
        help_text=_(
            "Requests this key may make, such as 60000/min or 1000/s. "
            "Empty: the server's default (SWAN_THROTTLE_RATE)."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def set_new_key(self) -> str:
        """Gives the key a fresh secret and returns it: the only time it can be read."""
        raw = "swan_" + secrets.token_urlsafe(32)
        self.prefix = raw[:10]
        self.key_hash = hash_api_key(raw)
        return raw

    def allows_address(self, address: str | None) -> bool:
        networks = self.allowed_networks.split()
        if not networks:
            return True
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)
