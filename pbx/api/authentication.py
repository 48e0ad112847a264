"""API-key authentication, the permission that requires it, and per-key throttling (DRF)."""

from __future__ import annotations

import functools
import logging
import threading

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from pbx.directory import lockout
from pbx.directory.api_keys import ApiClient, active_key
from pbx.models import hash_api_key
from swanproject.cache_scripts import cache_script
from swanproject.envelope import SwanError

logger = logging.getLogger("swan.auth")


class TooManyFailures(SwanError):
    """429 for an address that sent too many wrong keys; `wait` becomes Retry-After."""

    status_code = 429

    def __init__(self, wait: int):
        super().__init__(
            _("Too many failed API key attempts from your address; retry in %(seconds)s seconds.")
            % {"seconds": wait}
        )
        self.wait = wait


def _raw_key(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = _raw_key(request)
        if raw is None:
            return None
        client = active_key(hash_api_key(raw))
        key = client.key if client is not None else None
        address = request.META.get("REMOTE_ADDR")
        if key is None:
            wait = lockout.bad_key_attempt(address=address)
            if wait is not None:
                raise TooManyFailures(wait)
            raise exceptions.AuthenticationFailed(_("The API key is not valid."))
        if not key.allows_address(address):
            logger.warning("api key refused key=%s address=%s", key.prefix, address)
            raise exceptions.PermissionDenied(
                _("This API key may not be used from %(address)s.") % {"address": address}
            )
        return client, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="swan"'


class HasApiKey(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiClient)


@functools.lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """'60000/min' -> (60000, 60): requests, seconds. DRF's format (the period's first letter)."""
    number, _sep, period = rate.partition("/")
    return int(number), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def default_rate() -> str:
    """SWAN_THROTTLE_RATE: the rate of a key with no `throttle_rate` of its own."""
    return ApiKeyRateThrottle.THROTTLE_RATES[ApiKeyRateThrottle.scope]


# INCRBY, and the window's expiry with the first count: atomic, one round trip.
_COUNT_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
# A process takes a key's window's requests from the shared counter this share of the rate at a
# time, and admits them without asking again (`_Leases`).
LEASE_SHARE = 1000


class _Leases:
    """The requests this process may still admit in a key's current window, already counted.

    Asking the cache for every request was one Redis round trip in each: on this box's 2 cores,
    with a process switch each way, a fifth of a worker's time (benchmarks/README.md). A process
    now counts `limit // LEASE_SHARE` requests at once (at least one) and admits them as they
    come. No more than the limit is ever admitted between the processes; what their leases hold
    unused counts all the same, so a key at its limit may be refused up to a lease per process
    early (a thousandth of the rate each), and a key whose rate was just lowered starts from that
    count. A rate under LEASE_SHARE per period takes one request at a time, as before.
    """

    def __init__(self) -> None:
        # (key, limit, period) → (window, left): a changed rate starts a lease of its own
        self._left: dict[tuple[int, int, int], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[int, int, int], window: int) -> bool:
        with self._lock:
            held = self._left.get(key)
            if held is None or held[0] != window or held[1] <= 0:
                return False
            self._left[key] = (window, held[1] - 1)
            return True

    def grant(self, key: tuple[int, int, int], window: int, left: int) -> None:
        with self._lock:
            self._left[key] = (window, left)

    def clear(self) -> None:
        with self._lock:
            self._left.clear()


throttle_leases = _Leases()


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per key: the key's own `throttle_rate`, else SWAN_THROTTLE_RATE (docs/api.md).

    A fixed-window counter: one integer per key and window in the cache (add + incr, atomic in
    Redis), where DRF's default keeps a list of every request's timestamp and reads and writes
    it whole on each request — at a helpdesk's 60000/min tens of thousands of floats, and racy
    between workers. The key is the one authentication loaded: no query. A window starts on the
    period's boundary (a minute's count starts again on the minute); Retry-After is the time
    left in it.
    """

    scope = "api_key"

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.user, ApiClient):
            return True
        key = request.user.key
        rate = key.throttle_rate or self.rate
        if not rate:
            return True
        limit, duration = parse_rate(rate)
        # The counters live in the cache (Redis in production). If it is down the API keeps
        # answering, unthrottled, rather than failing every request.
        try:
            return self._count(key.pk, limit, duration)
        except Exception as exc:
            logger.warning("throttling skipped: cache unavailable error=%s", type(exc).__name__)
            return True

    def _count(self, pk: int, limit: int, duration: int) -> bool:
        now = self.timer()
        window = int(now // duration)
        if throttle_leases.take((pk, limit, duration), window):
            return True
        lease = max(1, limit // LEASE_SHARE)
        counter = f"throttle_{self.scope}_{pk}_{duration}_{window}"
        counted = self._increment(counter, duration + 1, lease)
        admitted = min(lease, limit - (counted - lease))  # the lease's requests within the limit
        if admitted > 0:
            # This request is one of them; the others are admitted without asking.
            throttle_leases.grant((pk, limit, duration), window, admitted - 1)
            return True
        self._wait = (window + 1) * duration - now
        return False

    def _increment(self, counter: str, timeout: int, by: int) -> int:
        backend = caches[DEFAULT_CACHE_ALIAS] if self.cache is default_cache else self.cache
        if isinstance(backend, RedisCache):
            # One round trip instead of Django's three (SET NX, EXISTS, INCR). The value is the
            # plain integer Django's RedisCache itself stores for an int.
            key = backend.make_and_validate_key(counter)
            return int(cache_script(backend, _COUNT_SCRIPT)(keys=[key], args=[timeout, by]))
        self.cache.add(counter, 0, timeout)
        return self.cache.incr(counter, by)

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)

    def get_cache_key(self, request, view):
        if not isinstance(request.user, ApiClient):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.key.pk}
