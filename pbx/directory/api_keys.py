"""API keys: the caller behind a key (its companies), found by the key's hash and cached briefly."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from pbx.models import ApiKey, Company

LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CompanyScope:
    """Which companies a reader sees: every one (None), or these (empty: none at all).

    Selectors take a scope; an API key's caller is one, and SWAN reading for one company itself
    (the wallboard, checked by its own rules) is a plain scope with no key.
    """

    company_ids: frozenset[int] | None

    def companies(self) -> QuerySet[Company]:
        queryset = Company.objects.all()
        if self.company_ids is not None:
            queryset = queryset.filter(pk__in=self.company_ids)
        return queryset

    def sees_company(self, company_id: int | None) -> bool:
        """A key limited to companies sees none of another's objects, nor company-less ones."""
        return self.company_ids is None or company_id in self.company_ids


@dataclass(frozen=True, kw_only=True)
class ApiClient(CompanyScope):
    """The caller behind an API key; stands in for `request.user`. `company_ids` is None for a
    key of every company (key.all_companies)."""

    key: ApiKey

    is_authenticated = True


def company_ids_of(key: ApiKey) -> frozenset[int] | None:
    """None for a key of all companies; else its companies' ids, empty when none are left."""
    if key.all_companies:
        return None
    return frozenset(key.companies.values_list("pk", flat=True))


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


def active_key(key_hash: str) -> ApiClient | None:
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
