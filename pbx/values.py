"""Extensions, MAC addresses and phone numbers as every entry point takes them: the API, the
directory file, the admin. Each gives the one stored spelling or raises InvalidValue (400)."""

from __future__ import annotations

import re
from typing import Any

from django.db import models
from django.utils.translation import gettext as _

from pbx.errors import InvalidValue

_EXTENSION = re.compile(r"[0-9]{1,20}")  # ASCII digits only: \d would take ١٢
_MAC_SEPARATORS = re.compile(r"[:\-.]")
_MAC = re.compile(r"^[0-9a-f]{12}$")
_PHONE_FILLERS = re.compile(r"[\s.\-()\[\]/]")
PHONE_MAX_LENGTH = 32  # the number columns' (AgendaPhone, PublicNumber), `+` included
_PHONE = re.compile(rf"(?=.{{1,{PHONE_MAX_LENGTH}}}\Z)\+?[0-9]+", re.DOTALL)


def clean_extension(value: Any, *, name: str = "extension") -> str:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not _EXTENSION.fullmatch(text):
        raise InvalidValue(
            _("'%(value)s' is not a valid %(name)s: it must be 1 to 20 digits.")
            % {"value": str(value)[:40], "name": name}
        )
    return text


def clean_mac(value: str) -> str:
    """Any common MAC spelling → 12 lower-case hex digits; no control character anywhere."""
    text = _MAC_SEPARATORS.sub("", str(value)).lower()
    if not _MAC.fullmatch(text):
        raise InvalidValue(
            _("'%(value)s' is not a valid MAC address: it must be 12 hex digits.")
            % {"value": str(value)[:40]}
        )
    return text


def normalize_phone_number(value: Any) -> str | None:
    """Drops spaces, dots, dashes and brackets; keeps a leading +. None if what is left is invalid
    (at most PHONE_MAX_LENGTH characters, the + counted)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = _PHONE_FILLERS.sub("", str(value))
    return text if _PHONE.fullmatch(text) else None


def max_length(model: type[models.Model], name: str) -> int:
    """The max_length of a model's text field, for checks made before the row is written."""
    field = model._meta.get_field(name)
    length = getattr(field, "max_length", None)
    if not isinstance(length, int):
        raise TypeError(f"{model.__name__}.{name} has no max_length")
    return length
