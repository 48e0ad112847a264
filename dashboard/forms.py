"""Login forms of the dashboard and the admin: an address with too many wrong passwords waits."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from pbx.directory import lockout


class LockoutMixin:
    """Refuses a locked-out address before checking the password; counts each failed login.

    Unlike API keys (256 random bits), passwords can be guessed, so a locked-out address is
    refused even with the right password until the lockout ends.
    """

    locked_out = False  # the page shows the wait instead of "wrong password"
    locked_out_message = _(
        "Too many failed logins from your address; try again in %(seconds)s seconds."
    )

    def clean(self):
        address = self.request.META.get("REMOTE_ADDR") if self.request is not None else None
        wait = lockout.lockout_remaining(kind=lockout.LOGIN, address=address)
        if wait is not None:
            self.locked_out = True
            raise forms.ValidationError(
                self.locked_out_message, code="locked_out", params={"seconds": wait}
            )
        try:
            return super().clean()
        except forms.ValidationError:
            lockout.failure_record(kind=lockout.LOGIN, address=address)
            raise


class LoginForm(LockoutMixin, AuthenticationForm):
    """`/accounts/login/`, the supervisors' page."""


class AdminLoginForm(LockoutMixin, AdminAuthenticationForm):
    """`/admin/login/`."""
