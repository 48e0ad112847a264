"""Domain errors: what services and selectors raise when a request cannot be done.

They name what is wrong in words a caller can act on and say nothing of HTTP. The API's exception
handler (swanproject/envelope.py) answers each with `status_of(exc)`: the one table below, which
also holds the gateway's PbxUnavailable (the PBX is down: 503), so no service wraps its gateway
calls to translate it. The supervisor actions audit the same statuses.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from pbx.gateway import PbxUnavailable


class DomainError(Exception):
    """`message` is what the caller is told; `result` is the rare answer an error carries."""

    def __init__(self, message: str, *, result: Any = None):
        super().__init__(message)
        self.message = message
        self.result = result


class InvalidValue(DomainError):
    """A value that is not what it must be: a parameter, a field of a file (400)."""


class NotFound(DomainError):
    """No such object for this caller: another company's object is not found either."""


class Conflict(DomainError):
    """Understood, but not possible now: the PBX refused, or the state does not allow it."""


PBX_UNAVAILABLE_MESSAGE = _("The PBX cannot be reached right now; try again later.")

_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidValue, 400),
    (DomainError, 400),
    (PbxUnavailable, 503),
)


def status_of(exc: Exception) -> int | None:
    """The HTTP status a domain error (or an unreachable PBX) is answered with; None otherwise."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return None


def message_of(exc: Exception) -> str:
    """What the caller is told for an error `status_of` knows."""
    if isinstance(exc, PbxUnavailable):
        return str(PBX_UNAVAILABLE_MESSAGE)
    return exc.message if isinstance(exc, DomainError) else str(exc)
