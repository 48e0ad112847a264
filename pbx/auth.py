"""API-key authentication, the permission that requires it, and per-key throttling."""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from pbx import lockout
from pbx.models import ApiKey, Company, hash_api_key
from swanproject.envelope import SwanError

logger = logging.getLogger("swan.auth")
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiClient:
    """The caller behind an API key; stands in for `request.user`."""

    key: ApiKey
    company_ids: frozenset[int] | None  # None: every company (key.all_companies); empty: none

    is_authenticated = True

    def companies(self) -> QuerySet[Company]:
        queryset = Company.objects.all()
        if self.company_ids is not None:
            queryset = queryset.filter(pk__in=self.company_ids)
        return queryset

    def sees_company(self, company_id: int | None) -> bool:
        """A key limited to companies sees none of another's objects, nor company-less ones."""
        return self.company_ids is None or company_id in self.company_ids


class TooManyFailures(SwanError):
    """429 for an address that sent too many wrong keys; `wait` becomes Retry-After."""

    status_code = 429

    def __init__(self, wait: int):
        super().__init__(
            _("Too many failed API key attempts from your address; retry in %(seconds)s seconds.")
            % {"seconds": wait}
        )
        self.wait = wait


def company_ids_of(key: ApiKey) -> frozenset[int] | None:
    """None for a key of all companies; else its companies' ids, empty when none are left."""
    if key.all_companies:
        return None
    return frozenset(key.companies.values_list("pk", flat=True))


def _raw_key(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


class KeyCache:
    """Active keys and their companies, per process, for SWAN_API_KEY_CACHE_SECONDS.

    A key deactivated, limited to other companies or given another rate in the meantime is
    read again once its entry is that old; unknown keys are never cached (each one counts
    towards the address's lockout)."""

    MAX_ENTRIES = 1000

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, ApiClient]] = {}

    def get(self, key_hash: str) -> ApiClient | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def put(self, key_hash: str, client: ApiClient) -> None:
        seconds = settings.SWAN_API_KEY_CACHE_SECONDS
        if seconds <= 0:
            return
        now = self.clock()
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {h: e for h, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
            self._entries[key_hash] = (now + seconds, client)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache = KeyCache()


def _active_key(key_hash: str) -> ApiClient | None:
    """The client of an active key, from the cache or the database (two queries)."""
    client = key_cache.get(key_hash)
    if client is not None:
        return client
    key = ApiKey.objects.filter(key_hash=key_hash, is_active=True).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    client = ApiClient(key=key, company_ids=company_ids_of(key))
    key_cache.put(key_hash, client)
    return client


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = _raw_key(request)
        if raw is None:
            return None
        client = _active_key(hash_api_key(raw))
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


# INCR, and the window's expiry with the first count: atomic, one round trip.
_COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def _count_script(backend: RedisCache):
    """The counting script on the backend's redis-py client for writes, made once: redis-py
    builds its table of response callbacks anew for every client, which Django does for every
    cache call."""
    script = getattr(backend, "_swan_count_script", None)
    if script is None:
        script = backend._cache.get_client(write=True).register_script(_COUNT_SCRIPT)
        backend._swan_count_script = script
    return script


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
        counter = f"throttle_{self.scope}_{pk}_{duration}_{window}"
        if self._increment(counter, duration + 1) <= limit:
            return True
        self._wait = (window + 1) * duration - now
        return False

    def _increment(self, counter: str, timeout: int) -> int:
        backend = caches[DEFAULT_CACHE_ALIAS] if self.cache is default_cache else self.cache
        if isinstance(backend, RedisCache):
            # One round trip instead of Django's three (SET NX, EXISTS, INCR). The value is the
            # plain integer Django's RedisCache itself stores for an int.
            key = backend.make_and_validate_key(counter)
            return int(_count_script(backend)(keys=[key], args=[timeout]))
        self.cache.add(counter, 0, timeout)
        return self.cache.incr(counter)

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)

    def get_cache_key(self, request, view):
        if not isinstance(request.user, ApiClient):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.key.pk}
