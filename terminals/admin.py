"""Admin for terminals: MACs typed in any common spelling are stored as 12 lower-case hex digits."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from pbx.params import ParameterError, clean_mac
from terminals.models import Terminal

_MAC_FRAGMENT = re.compile(r"^[0-9a-fA-F:.\-]{2,17}$")


class TerminalAdminForm(forms.ModelForm):
    class Meta:
        model = Terminal
        fields = ["mac", "type", "user", "interface"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Room for "AA:BB:CC:DD:EE:FF" while typing; the stored value is 12 digits.
        self.fields["mac"].max_length = 17
        self.fields["mac"].widget.attrs["maxlength"] = 17
        self.fields["mac"].validators = []

    def clean_mac(self) -> str:
        try:
            return clean_mac(self.cleaned_data["mac"])
        except ParameterError as exc:
            raise ValidationError(exc.message, code="invalid") from exc


class TerminalInline(admin.TabularInline):
    """A user's terminals, on the PBX user page."""

    model = Terminal
    form = TerminalAdminForm
    fields = ["mac", "type", "interface", "registered", "registered_at"]
    readonly_fields = ["registered", "registered_at"]
    extra = 0


@admin.register(Terminal)
class TerminalAdmin(admin.ModelAdmin):
    form = TerminalAdminForm
    list_display = ["mac_column", "type", "user", "interface", "registered", "registered_at"]
    list_filter = ["type", "registered", "user__company"]
    list_select_related = ["user"]
    search_fields = ["mac", "interface", "user__extension", "user__name"]
    autocomplete_fields = ["user"]
    # Registration is what the PBX did; only the register/unregister operations may change it.
    fields = ["mac", "type", "user", "interface", "registered", "registered_at"]
    readonly_fields = ["registered", "registered_at"]

    @admin.display(description=_("MAC"), ordering="mac")
    def mac_column(self, obj: Terminal) -> str:
        return obj.mac_display

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if _MAC_FRAGMENT.match(term):
            digits = re.sub(r"[:.\-]", "", term).lower()
            if digits and digits != term:
                results |= queryset.filter(mac__contains=digits)
        return results, may_have_duplicates
