"""Admin for the PBXes, the directory (companies, users, queues, numbers), API keys and the live
PBX state."""

from __future__ import annotations

import ipaddress
import re

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Model, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from pbx.api.authentication import default_rate
from pbx.history.selectors import cdr_involving
from pbx.models import (
    DEFAULT_PBX,
    ApiKey,
    Company,
    Department,
    DeviceState,
    Pbx,
    PbxUser,
    PublicNumber,
    Queue,
    QueueMember,
    UserPresence,
    on_pbx,
)
from pbx.models.history import CdrRecord, QueueEntry
from terminals.admin import TerminalInline

_NETWORK_SEPARATORS = re.compile(r"[\s,;]+")


def _count_per_company(model: type[Model]) -> Coalesce:
    """Rows of `model` per company, as a subquery: two joined Counts would multiply each other."""
    rows = (
        model.objects.filter(company=OuterRef("pk"))
        .order_by()
        .values("company")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


class PbxListFilter(admin.SimpleListFilter):
    """Companies by PBX: the settings' one (no PBX named) and each PBX defined."""

    title = _("PBX")
    parameter_name = "pbx"

    def lookups(self, request, model_admin):
        names = Pbx.objects.values_list("name", flat=True)
        return [(DEFAULT_PBX, _("default (the settings' AMI_*)")), *((n, n) for n in names)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(on_pbx(self.value()))


class QueuePbxListFilter(PbxListFilter):
    """Queues by the PBX key they keep (`default` included)."""

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(pbx=self.value())


@admin.register(Pbx)
class PbxAdmin(admin.ModelAdmin):
    """The AMI secret is never stored nor shown: only whether its variable is set here."""

    list_display = [
        "name",
        "host",
        "port",
        "username",
        "secret_env",
        "secret_set",
        "company_count",
    ]
    search_fields = ["name", "host"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(company_count=Count("companies"))

    def get_fields(self, request: HttpRequest, obj: Pbx | None = None):
        fields = ["name", "host", "port", "username", "secret_env"]
        if obj is not None:
            fields.append("secret_set")
        return [*fields, "queue_log", "cdr_csv", "dial_context"]

    def get_readonly_fields(self, request: HttpRequest, obj: Pbx | None = None):
        # The name keys its companies, their queues, live state and history: never renamed.
        return ["name", "secret_set"] if obj is not None else []

    @admin.display(description=_("secret set"), boolean=True)
    def secret_set(self, obj: Pbx) -> bool:
        """In this web process's environment; an empty variable logs in to no PBX."""
        return bool(obj.secret())

    @admin.display(description=_("companies"), ordering="company_count")
    def company_count(self, obj: Pbx) -> int:
        return obj.company_count


class DepartmentListFilter(admin.RelatedFieldListFilter):
    """Departments print their company: load them together, not one query per department."""

    def field_choices(self, field, request, model_admin):
        return [(d.pk, str(d)) for d in Department.objects.select_related("company")]


class DepartmentInline(admin.TabularInline):
    model = Department
    extra = 0


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "time_zone",
        "pbx_column",
        "dial_context",
        "dnd_prefix",
        "user_count",
        "queue_count",
    ]
    list_filter = [PbxListFilter]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [DepartmentInline]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "pbx":
            kwargs["empty_label"] = _("default (the settings' AMI_*)")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(user_count=_count_per_company(PbxUser), queue_count=_count_per_company(Queue))
        )

    @admin.display(description=_("PBX"), ordering="pbx")
    def pbx_column(self, obj: Company) -> str:
        return obj.pbx_key

    @admin.display(description=_("users"), ordering="user_count")
    def user_count(self, obj: Company) -> int:
        return obj.user_count

    @admin.display(description=_("queues"), ordering="queue_count")
    def queue_count(self, obj: Company) -> int:
        return obj.queue_count


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "company"]
    list_filter = ["company"]
    list_select_related = ["company"]
    search_fields = ["name", "company__name"]
    autocomplete_fields = ["company"]

    def get_queryset(self, request: HttpRequest):
        # Autocomplete answers print "name (company)" for every match.
        return super().get_queryset(request).select_related("company")


@admin.register(PbxUser)
class PbxUserAdmin(admin.ModelAdmin):
    list_display = ["extension", "name", "company", "department", "mobile"]
    list_display_links = ["extension", "name"]
    list_filter = ["company", ("department", DepartmentListFilter)]
    list_select_related = ["company", "department__company"]
    search_fields = ["extension", "name", "mobile"]
    autocomplete_fields = ["company", "department"]
    inlines = [TerminalInline]


class QueueMemberFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        # The model's own check cannot run for a queue that is being created (it has no pk yet).
        company_id = self.instance.company_id
        for form in self.forms:
            user = form.cleaned_data.get("user")
            if user is None or form.cleaned_data.get("DELETE"):
                continue
            if company_id and user.company_id != company_id:
                raise ValidationError(
                    _("%(user)s belongs to another company than the queue."),
                    params={"user": user},
                    code="foreign_member",
                )


class QueueMemberInline(admin.TabularInline):
    model = QueueMember
    formset = QueueMemberFormSet
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "display_name",
        "company",
        "pbx",
        "member_count",
        "service_level_seconds",
        "short_abandon_seconds",
        "alarm_waiting_calls",
        "alarm_wait_seconds",
        "alarm_service_ratio_below",
        "alarm_abandoned_ratio_below",
    ]
    list_filter = [QueuePbxListFilter, "company"]
    list_select_related = ["company"]
    search_fields = ["name", "display_name", "company__name"]
    autocomplete_fields = ["company"]
    readonly_fields = ["pbx"]  # its company's, kept by Queue.save and Company.save
    inlines = [QueueMemberInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "company",
                    "pbx",
                    "name",
                    "display_name",
                    "service_level_seconds",
                    "short_abandon_seconds",
                ]
            },
        ),
        (
            _("Alarm rules"),
            {
                "description": _(
                    "The queue raises the alarm of queues-status when it breaks any rule. "
                    "Leave a rule empty to turn it off."
                ),
                "fields": [
                    "alarm_waiting_calls",
                    "alarm_wait_seconds",
                    "alarm_service_ratio_below",
                    "alarm_abandoned_ratio_below",
                ],
            },
        ),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Queue | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None:
            return fieldsets
        # A new queue has no PBX to show yet: it takes its company's when saved.
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "pbx"]})
            for name, options in fieldsets
        ]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, obj: Queue) -> int:
        return obj.member_count


@admin.register(PublicNumber)
class PublicNumberAdmin(admin.ModelAdmin):
    list_display = ["name", "number", "alias", "company", "in_use"]
    list_editable = ["in_use"]
    list_filter = ["company", "in_use"]
    list_select_related = ["company"]
    search_fields = ["name", "alias", "number"]
    autocomplete_fields = ["company"]


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = [
            "name",
            "all_companies",
            "companies",
            "allowed_networks",
            "throttle_rate",
            "is_active",
        ]

    def clean(self) -> dict:
        """A key sees all companies or a list of them: both, or neither, is a mistake."""
        cleaned = super().clean()
        companies = cleaned.get("companies")
        if cleaned.get("all_companies") and companies:
            raise ValidationError(
                _("A key of all companies takes no company list: untick one or empty the other."),
                code="all_and_list",
            )
        if not cleaned.get("all_companies") and companies is not None and not companies:
            raise ValidationError(
                _("Choose the companies this key sees, or tick 'all companies'."),
                code="no_companies",
            )
        return cleaned

    def clean_allowed_networks(self) -> str:
        """Accepts spaces, lines, commas or semicolons between networks; stores one per line."""
        networks = []
        for item in filter(None, _NETWORK_SEPARATORS.split(self.cleaned_data["allowed_networks"])):
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError as exc:
                raise ValidationError(
                    _("'%(item)s' is not an IP network such as 10.0.0.0/8 or 192.168.1.20."),
                    params={"item": item},
                    code="invalid",
                ) from exc
        return "\n".join(networks)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """The raw key is shown once, on the page right after it is made; only its hash is stored."""

    form = ApiKeyForm
    list_display = [
        "name",
        "prefix",
        "company_list",
        "network_list",
        "rate",
        "is_active",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["is_active", "all_companies", "companies"]
    search_fields = ["name", "prefix"]
    autocomplete_fields = ["companies"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["rotate_key"]
    key_template = "admin/pbx/apikey/show_keys.html"

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        if obj is None:
            return [
                "name",
                "all_companies",
                "companies",
                "allowed_networks",
                "throttle_rate",
                "is_active",
            ]
        return [
            "name",
            "prefix",
            "all_companies",
            "companies",
            "allowed_networks",
            "throttle_rate",
            "is_active",
            "created_at",
            "last_used_at",
        ]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("companies")

    @admin.display(description=_("companies"))
    def company_list(self, obj: ApiKey) -> str:
        if obj.all_companies:
            return _("all")
        return ", ".join(c.name for c in obj.companies.all()) or _(
            "limited, no companies left: sees nothing"
        )

    @admin.display(description=_("allowed networks"))
    def network_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.allowed_networks.split()) or _("any")

    @admin.display(description=_("rate limit"), ordering="throttle_rate")
    def rate(self, obj: ApiKey) -> str:
        if obj.throttle_rate:
            return obj.throttle_rate
        return _("default (%(rate)s)") % {"rate": default_rate()}

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if not change:
            obj._raw_key = obj.set_new_key()
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None):
        raw = getattr(obj, "_raw_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        return self._show_keys(request, [(obj, raw)], _("New API key"))

    @admin.action(description=_("Rotate key (the old key stops working)"), permissions=["change"])
    def rotate_key(self, request: HttpRequest, queryset):
        issued = []
        with transaction.atomic():
            for key in queryset.select_for_update().order_by("name"):
                raw = key.set_new_key()
                key.save(update_fields=["prefix", "key_hash"])
                self.log_change(request, key, _("Rotated the key."))
                issued.append((key, raw))
        return self._show_keys(request, issued, _("New API keys"))

    def _show_keys(self, request: HttpRequest, issued: list[tuple[ApiKey, str]], title: str):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "issued": issued,
        }
        return TemplateResponse(request, self.key_template, context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Live state written by the listener: shown for diagnosis, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(DeviceState)
class DeviceStateAdmin(ReadOnlyAdmin):
    list_display = ["interface", "pbx", "state", "changed_at", "confirmed_at"]
    list_filter = ["pbx", "state"]
    search_fields = ["interface"]


@admin.register(UserPresence)
class UserPresenceAdmin(ReadOnlyAdmin):
    list_display = [
        "user",
        "company",
        "dnd",
        "dnd_reason",
        "paused",
        "pause_reason",
        "changed_at",
        "confirmed_at",
    ]
    list_filter = ["dnd", "paused", "user__company"]
    list_select_related = ["user__company"]
    search_fields = ["user__extension", "user__name"]

    @admin.display(description=_("company"), ordering="user__company__name")
    def company(self, obj: UserPresence) -> Company:
        return obj.user.company


# -- call history ------------------------------------------------------------------------------
# Written by ingest from the PBX's files: browsable, never edited. The filters offer the
# directory's queues and users (a few hundred rows), not the distinct values of the history
# tables, which would scan millions of rows on every page.

# The dispositions Asterisk writes in a CDR.
CDR_DISPOSITIONS = ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"]


def _queue_choices() -> list[tuple[int, str]]:
    return [
        (queue.pk, f"{queue.shown_name} ({queue.company.name})")
        for queue in Queue.objects.select_related("company").order_by("company__name", "name")
    ]


def _agent_choices() -> list[tuple[int, str]]:
    return [
        (user.pk, f"{user} ({user.company.name})")
        for user in PbxUser.objects.select_related("company")
    ]


class QueueListFilter(admin.RelatedFieldListFilter):
    """Queues by the name people see, with their company, in one query."""

    def field_choices(self, field, request, model_admin):
        return _queue_choices()


class AgentListFilter(admin.RelatedFieldListFilter):
    """Agents as "extension name (company)", in one query."""

    def field_choices(self, field, request, model_admin):
        return _agent_choices()


@admin.register(QueueEntry)
class QueueEntryAdmin(ReadOnlyAdmin):
    """Queue calls: one row per caller's stay in a queue."""

    list_display = [
        "entered_at",
        "queue_column",
        "company",
        "caller",
        "outcome",
        "wait_seconds",
        "talk_seconds",
        "agent_column",
        "callid",
        "pbx",
    ]
    list_filter = [
        ("entered_at", admin.DateFieldListFilter),
        "pbx",
        "company",
        ("queue", QueueListFilter),
        ("agent_user", AgentListFilter),
        "outcome",
    ]
    list_select_related = ["queue", "company", "agent_user"]
    date_hierarchy = "entered_at"
    search_fields = ["callid", "caller", "queue_name", "agent"]
    ordering = ["-entered_at"]
    show_full_result_count = False  # a second COUNT over the whole table on every page

    @admin.display(description=_("queue"), ordering="queue_name")
    def queue_column(self, obj: QueueEntry) -> str:
        return obj.queue.shown_name if obj.queue else obj.queue_name

    @admin.display(description=_("agent"), ordering="agent_user__extension")
    def agent_column(self, obj: QueueEntry) -> str:
        return str(obj.agent_user) if obj.agent_user else obj.agent


class CdrQueueFilter(admin.SimpleListFilter):
    """CDR rows of the calls that went through a queue (by the queue entries' call ids)."""

    title = _("queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return _queue_choices()

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        queue = Queue.objects.filter(pk=self.value()).first()
        if queue is None:
            return queryset.none()
        # Call ids repeat across PBXes: the queue's own PBX's rows only.
        callids = QueueEntry.objects.filter(queue=queue).values("callid")
        return queryset.filter(pbx=queue.pbx).filter(
            Q(linkedid__in=callids) | Q(uniqueid__in=callids)
        )


class CdrAgentFilter(admin.SimpleListFilter):
    """CDR rows a user took part in, found as last-calls finds them."""

    title = _("agent")
    parameter_name = "agent"

    def lookups(self, request, model_admin):
        return _agent_choices()

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        user = PbxUser.objects.filter(pk=self.value()).first()
        if user is None:
            return queryset.none()
        return queryset.filter(cdr_involving(user))


class CdrDispositionFilter(admin.SimpleListFilter):
    title = _("outcome")
    parameter_name = "disposition"

    def lookups(self, request, model_admin):
        return [(value, value) for value in CDR_DISPOSITIONS]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(disposition=self.value())


@admin.register(CdrRecord)
class CdrRecordAdmin(ReadOnlyAdmin):
    """CDR calls: the PBX's own rows, several per call."""

    list_display = [
        "calldate",
        "src",
        "dst",
        "clid",
        "disposition",
        "duration",
        "billsec",
        "channel",
        "dstchannel",
        "company",
        "call_id",
        "pbx",
    ]
    list_filter = [
        ("calldate", admin.DateFieldListFilter),
        "pbx",
        "company",
        CdrQueueFilter,
        CdrAgentFilter,
        CdrDispositionFilter,
    ]
    list_select_related = ["company"]
    date_hierarchy = "calldate"
    search_fields = ["src", "dst", "clid", "uniqueid", "linkedid"]
    ordering = ["-calldate"]
    show_full_result_count = False

    @admin.display(description=_("call id"), ordering="linkedid")
    def call_id(self, obj: CdrRecord) -> str:
        return obj.call_id
