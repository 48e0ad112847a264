"""Admin for supervisors: on the user's page, and listed on their own with their companies."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from dashboard.models import Supervisor

User = get_user_model()


class SupervisorInline(admin.StackedInline):
    model = Supervisor
    can_delete = True
    filter_horizontal = ["companies"]
    verbose_name_plural = _("supervisor of the dashboards of")


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [*DjangoUserAdmin.inlines, SupervisorInline]


@admin.register(Supervisor)
class SupervisorAdmin(admin.ModelAdmin):
    list_display = ["user", "company_list"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "companies__name"]
    autocomplete_fields = ["user"]
    filter_horizontal = ["companies"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("user").prefetch_related("companies")

    @admin.display(description=_("companies"))
    def company_list(self, obj: Supervisor) -> str:
        return ", ".join(company.name for company in obj.companies.all()) or "—"
