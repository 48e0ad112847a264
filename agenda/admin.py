"""Admin for agendas and their phones; numbers are normalised as update-agenda does."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from agenda.models import Agenda, AgendaPhone
from pbx.params import normalize_phone_number

# Beyond this an inline page gets heavy and its POST exceeds DATA_UPLOAD_MAX_NUMBER_FIELDS.
MAX_INLINE_PHONES = 200


class AgendaPhoneForm(forms.ModelForm):
    class Meta:
        model = AgendaPhone
        fields = ["agenda", "name", "number"]

    def clean_number(self) -> str:
        number = normalize_phone_number(self.cleaned_data["number"])
        if number is None:
            raise ValidationError(
                _("A phone number is digits with an optional leading +."), code="invalid"
            )
        return number


class AgendaPhoneInline(admin.TabularInline):
    model = AgendaPhone
    form = AgendaPhoneForm
    fields = ["name", "number"]
    extra = 1


@admin.register(Agenda)
class AgendaAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "phone_count"]
    list_filter = ["company"]
    list_select_related = ["company"]
    search_fields = ["name", "phones__number", "phones__name"]
    autocomplete_fields = ["company"]
    readonly_fields = ["phone_list_link"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(phone_count=Count("phones"))

    def get_fields(self, request: HttpRequest, obj: Agenda | None = None):
        return ["name", "company"] if obj is None else ["name", "company", "phone_list_link"]

    def get_inlines(self, request: HttpRequest, obj: Agenda | None):
        if obj is not None and obj.phone_count > MAX_INLINE_PHONES:
            return []
        return [AgendaPhoneInline]

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        number = normalize_phone_number(search_term.strip())
        if number and number != search_term.strip():
            # "931 23 45 67" finds "+34931234567": phones are stored normalised.
            results |= queryset.filter(phones__number__contains=number.lstrip("+"))
            may_have_duplicates = True
        return results, may_have_duplicates

    @admin.display(description=_("phones"), ordering="phone_count")
    def phone_count(self, obj: Agenda) -> int:
        return obj.phone_count

    @admin.display(description=_("phones"))
    def phone_list_link(self, obj: Agenda) -> str:
        url = reverse("admin:agenda_agendaphone_changelist") + f"?agenda__id__exact={obj.pk}"
        label = ngettext("%(count)d phone", "%(count)d phones", obj.phone_count) % {
            "count": obj.phone_count
        }
        return format_html('<a href="{}">{}</a>', url, label)


@admin.register(AgendaPhone)
class AgendaPhoneAdmin(admin.ModelAdmin):
    form = AgendaPhoneForm
    list_display = ["name", "number", "agenda"]
    list_filter = ["agenda__company"]
    list_select_related = ["agenda"]
    search_fields = ["name", "number", "agenda__name"]
    autocomplete_fields = ["agenda"]
