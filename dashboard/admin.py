"""Admin for supervisors (on the user's page, and listed with their companies and permissions)
and their audit log, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from dashboard.models import AuditEntry, Supervisor
from pbx.admin import ReadOnlyAdmin

User = get_user_model()

PERMISSION_FIELDS = ["may_pause", "may_log_agents", "may_listen", "may_whisper", "may_barge"]
SUPERVISOR_FIELDSETS = [
    (None, {"fields": ["companies"]}),
    (
        _("Actions on agents"),
        {
            "fields": [*PERMISSION_FIELDS, "phone"],
            "description": _(
                "What this supervisor may do from the dashboard, through the PBX. Listening, "
                "whispering and barging ring the phone set here."
            ),
        },
    ),
]


class SupervisorInline(admin.StackedInline):
    model = Supervisor
    can_delete = True
    filter_horizontal = ["companies"]
    fieldsets = SUPERVISOR_FIELDSETS
    verbose_name_plural = _("supervisor of the dashboards of")


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [*DjangoUserAdmin.inlines, SupervisorInline]


@admin.register(Supervisor)
class SupervisorAdmin(admin.ModelAdmin):
    list_display = ["user", "company_list", *PERMISSION_FIELDS, "phone"]
    list_filter = PERMISSION_FIELDS
    search_fields = ["user__username", "user__first_name", "user__last_name", "companies__name"]
    autocomplete_fields = ["user"]
    filter_horizontal = ["companies"]
    fieldsets = [(None, {"fields": ["user"]}), *SUPERVISOR_FIELDSETS]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("user").prefetch_related("companies")

    @admin.display(description=_("companies"))
    def company_list(self, obj: Supervisor) -> str:
        return ", ".join(company.name for company in obj.companies.all()) or "—"


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """What supervisors did from the dashboard: kept as written, never added, edited or deleted."""

    list_display = [
        "at",
        "username",
        "company_name",
        "action",
        "extension",
        "target_name",
        "outcome",
        "status_code",
        "message",
    ]
    list_filter = ["action", "outcome", "company"]
    search_fields = ["username", "extension", "target_name", "message", "pbx_answer"]
    date_hierarchy = "at"
    fields = [
        "at",
        "user",
        "username",
        "company",
        "company_name",
        "action",
        "extension",
        "target_name",
        "detail",
        "outcome",
        "status_code",
        "message",
        "pbx_answer",
    ]
    list_select_related = ["user", "company"]
