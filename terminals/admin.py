"""Admin for terminals: MACs typed in any common spelling are stored as 12 lower-case hex digits."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pbx.directory.pbxes import pbx_address
from pbx.errors import InvalidValue, message_of
from pbx.gateway import PbxGateway, PbxUnavailable
from pbx.gateway.connection import pbx_gateway
from pbx.models import DEFAULT_PBX, DeviceState
from pbx.values import clean_mac
from terminals.models import Terminal
from terminals.selectors import terminal_device_states
from terminals.services import terminal_register, terminal_unregister

logger = logging.getLogger("swan.terminals")

_MAC_FRAGMENT = re.compile(r"^[0-9a-fA-F:.\-]{2,17}$")

# What a device state means for a phone, in words an administrator reads at a glance.
DEVICE_STATE_TEXTS = {
    DeviceState.State.NOT_INUSE: _("reachable, idle"),
    DeviceState.State.INUSE: _("reachable, in a call"),
    DeviceState.State.BUSY: _("reachable, busy"),
    DeviceState.State.RINGING: _("reachable, ringing"),
    DeviceState.State.RINGINUSE: _("reachable, ringing during a call"),
    DeviceState.State.ONHOLD: _("reachable, on hold"),
    DeviceState.State.UNAVAILABLE: _("unreachable: no live contact"),
    DeviceState.State.INVALID: _("unknown to the PBX"),
    DeviceState.State.UNKNOWN: _("unknown"),
}


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
        except InvalidValue as exc:
            raise ValidationError(exc.message, code="invalid") from exc


class TerminalInline(admin.TabularInline):
    """A user's terminals, on the PBX user page."""

    model = Terminal
    form = TerminalAdminForm
    fields = ["mac", "type", "interface", "registered", "registered_at"]
    readonly_fields = ["registered", "registered_at"]
    extra = 0


class RegistrationListFilter(admin.BooleanFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("registered (terminal-register)")


class TerminalChangeList(ChangeList):
    """Loads the live device state of the page's terminals in one query."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        states = terminal_device_states(self.result_list)
        for terminal in self.result_list:
            terminal.live_device_state = states.get(terminal.pk)


@admin.register(Terminal)
class TerminalAdmin(admin.ModelAdmin):
    form = TerminalAdminForm
    list_display = [
        "mac_column",
        "type",
        "user",
        "interface",
        "registration",
        "registered_at",
        "live_state",
    ]
    list_filter = ["type", ("registered", RegistrationListFilter), "user__company"]
    list_select_related = ["user__company"]
    search_fields = ["mac", "interface", "user__extension", "user__name"]
    autocomplete_fields = ["user"]
    # Registration is what the PBX did; only the register/unregister operations may change it.
    fields = ["mac", "type", "user", "interface", "registration", "registered_at", "live_state"]
    readonly_fields = ["registration", "registered_at", "live_state"]
    actions = ["register_on_pbx", "unregister_on_pbx"]

    def get_changelist(self, request: HttpRequest, **kwargs):
        return TerminalChangeList

    @admin.display(
        description=_("registered (terminal-register)"), boolean=True, ordering="registered"
    )
    def registration(self, obj: Terminal) -> bool:
        """What terminal-register (or the admin action) last did, not whether the phone is up."""
        return obj.registered

    @admin.display(description=_("live device state (PBX)"))
    def live_state(self, obj: Terminal) -> str:
        if not hasattr(obj, "live_device_state"):  # the change page: one terminal
            obj.live_device_state = terminal_device_states([obj]).get(obj.pk)
        device = obj.live_device_state
        if device is None:
            return gettext("not reported by the PBX")
        text = DEVICE_STATE_TEXTS.get(device.state, device.state)
        return f"{text} ({device.state})"

    @admin.action(
        description=_("Register on the PBX (join the user's queues)"), permissions=["change"]
    )
    def register_on_pbx(self, request: HttpRequest, queryset) -> None:
        self._run_on_pbx(request, queryset, terminal_register, gettext("registered"))

    @admin.action(
        description=_("Unregister on the PBX (leave the user's queues)"), permissions=["change"]
    )
    def unregister_on_pbx(self, request: HttpRequest, queryset) -> None:
        self._run_on_pbx(request, queryset, terminal_unregister, gettext("unregistered"))

    def _run_on_pbx(
        self,
        request: HttpRequest,
        queryset,
        operation: Callable[..., bool],
        done: str,
    ) -> None:
        """One connection per PBX of the batch; one message per terminal saying what the PBX did.

        A PBX that cannot be reached fails its own terminals only."""
        terminals = list(queryset.select_related("user__company__pbx").order_by("mac"))
        by_pbx: dict[str, list[Terminal]] = {}
        for terminal in terminals:
            key = terminal.user.company.pbx_key if terminal.user else DEFAULT_PBX
            by_pbx.setdefault(key, []).append(terminal)
        for key, batch in by_pbx.items():
            pending = list(batch)
            try:
                with pbx_gateway(pbx_address(key)) as gateway:
                    for terminal in batch:
                        self._run_one(request, gateway, terminal, operation, done)
                        pending.remove(terminal)
            except PbxUnavailable as exc:
                logger.warning("pbx unavailable pbx=%s error=%s", key, exc)
                failed = ", ".join(t.mac_display for t in pending)
                self.message_user(
                    request,
                    gettext("%(error)s Not done, or stopped half-way: %(terminals)s.")
                    % {"error": message_of(exc), "terminals": failed},
                    messages.ERROR,
                )

    def _run_one(
        self,
        request: HttpRequest,
        gateway: PbxGateway,
        terminal: Terminal,
        operation: Callable[..., bool],
        done: str,
    ) -> None:
        names = {"terminal": terminal.mac_display, "done": done}
        if terminal.user is None:
            self.message_user(
                request,
                gettext("%(terminal)s has no user: nothing to do.") % names,
                messages.WARNING,
            )
            return
        if operation(gateway=gateway, terminal=terminal):
            self.message_user(request, gettext("%(terminal)s %(done)s.") % names, messages.SUCCESS)
        else:
            terminal.refresh_from_db(fields=["registered"])
            names["state"] = (
                gettext("registered") if terminal.registered else gettext("unregistered")
            )
            self.message_user(
                request,
                gettext(
                    "%(terminal)s: the PBX did not do every step; the terminal is now %(state)s."
                )
                % names,
                messages.WARNING,
            )
        self.log_change(request, terminal, gettext("Terminal %(done)s on the PBX.") % names)

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
