"""Admin for agendas and their phones; numbers are normalised as update-agenda does."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from agenda.csv_format import CSV_HEADER, CSV_MAX_BYTES, parse_agenda_csv
from agenda.models import Agenda, AgendaPhone
from agenda.services import agendas_import
from pbx.csv_cells import csv_safe
from pbx.values import normalize_phone_number

# Beyond this an inline page gets heavy and its POST exceeds DATA_UPLOAD_MAX_NUMBER_FIELDS.
MAX_INLINE_PHONES = 200


class AgendaCsvForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("Columns agenda,name,number; a header line is optional. UTF-8."),
    )


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
    actions = ["export_csv"]
    change_list_template = "dashboard/admin/agenda_change_list.html"
    import_template = "dashboard/admin/agenda_import_csv.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_csv_view)
        return [path("import-csv/", view, name="agenda_agenda_import_csv"), *super().get_urls()]

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": self.has_import_permission(request)}
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Export selected agendas to CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="agendas.csv"'
        # The BOM lets spreadsheet programs read the accents right.
        response.write("\ufeff")
        writer = csv.writer(response)
        writer.writerow(CSV_HEADER)
        phones = AgendaPhone.objects.filter(agenda__in=queryset).select_related("agenda")
        for phone in phones.order_by("agenda__name", "name", "number").iterator():
            # Numbers are digits with an optional leading +: no formula can hide in them.
            writer.writerow([csv_safe(phone.agenda.name), csv_safe(phone.name), phone.number])
        return response

    def import_csv_view(self, request: HttpRequest):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = AgendaCsvForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                if upload.size > CSV_MAX_BYTES:
                    raise ValidationError(_("The file is larger than 10 MB."))
                result = agendas_import(parse_agenda_csv(upload.read()))
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
                messages.error(request, gettext("Nothing was imported."))
            else:
                messages.success(
                    request,
                    gettext(
                        "Imported: %(agendas)d new agendas, %(created)d new phones, "
                        "%(renamed)d renamed, %(unchanged)d unchanged."
                    )
                    % {
                        "agendas": result.agendas_created,
                        "created": result.phones.created,
                        "renamed": result.phones.renamed,
                        "unchanged": result.phones.unchanged,
                    },
                )
                return redirect("admin:agenda_agenda_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import agendas from CSV"),
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, self.import_template, context)

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
