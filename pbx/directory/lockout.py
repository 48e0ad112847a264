"""Failed authentication counted per client address, in the cache: bad API keys and logins."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("swan.auth")

API_KEY = "api_key"  # REST and websockets alike
LOGIN = "login"  # the admin's and the dashboard's login pages


def _now() -> float:
    return time.time()


def _limit(kind: str) -> int:
    return settings.API_KEY_FAILURE_LIMIT if kind == API_KEY else settings.LOGIN_FAILURE_LIMIT


def count_key(kind: str, address: str | None) -> str:
    return f"swan:authfail:{kind}:{address or 'unknown'}"


def lock_key(kind: str, address: str | None) -> str:
    return f"swan:authlock:{kind}:{address or 'unknown'}"


def lockout_remaining(*, kind: str, address: str | None) -> int | None:
    """Whole seconds until this address may try again; None when it is not locked out.

    The counters live in the cache (Redis in production); when it is down nobody is locked out,
    as ApiKeyRateThrottle lets requests through.
    """
    try:
        until = cache.get(lock_key(kind, address))
    except Exception as exc:
        logger.warning("lockout check skipped: cache unavailable error=%s", type(exc).__name__)
        return None
    if until is None:
        return None
    remaining = int(until - _now() + 0.999)
    return remaining if remaining > 0 else None


def failure_record(*, kind: str, address: str | None) -> None:
    """Counts one failure; the one that reaches the limit locks the address out."""
    window = settings.AUTH_FAILURE_WINDOW_SECONDS
    key = count_key(kind, address)
    try:
        count = 1 if cache.add(key, 1, timeout=window) else cache.incr(key)
        if count < _limit(kind):
            return
        lockout = settings.AUTH_LOCKOUT_SECONDS
        cache.set(lock_key(kind, address), _now() + lockout, timeout=lockout)
        cache.delete(key)
    except ValueError:  # the counter expired between add and incr: this failure starts anew
        cache.add(key, 1, timeout=window)
        return
    except Exception as exc:
        logger.warning("failure not counted: cache unavailable error=%s", type(exc).__name__)
        return
    logger.warning(
        "authentication locked out kind=%s address=%s failures=%s seconds=%s",
        kind,
        address,
        count,
        lockout,
    )


def bad_key_attempt(*, address: str | None) -> int | None:
    """A wrong API key from this address: None once counted (answer 401), else its lockout's
    remaining seconds (answer 429). Valid keys never come here, so a locked-out address (a NAT
    shared with whoever sent the bad keys) keeps working with a good key."""
    wait = lockout_remaining(kind=API_KEY, address=address)
    if wait is None:
        failure_record(kind=API_KEY, address=address)
    return wait
