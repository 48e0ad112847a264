"""The throttle counts a key's requests in leases: one cache increment per thousandth of the rate.

- A generous rate (60000/min, the default) asks the cache once per 60 requests, not per request.
- Several processes sharing one counter never admit more than the limit between them, and refuse
  early at most a lease per process (what their leases hold unused when the limit is reached).
- A lease is of its window: the next window counts afresh.
- A rate under 1,000 per period counts one request at a time: exact, as the other throttle tests
  (tests/api/test_throttle_rate.py, test_security.py) check at 1 to 3 requests a minute.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from pbx.api import authentication
from pbx.api.authentication import LEASE_SHARE, ApiKeyRateThrottle, _Leases

MINUTE = 60
NOW = 1_700_000_040.0  # the start of a minute


@pytest.fixture(autouse=True)
def _counters():
    cache.clear()
    yield
    cache.clear()


class Counting(ApiKeyRateThrottle):
    """The throttle with its clock fixed and its cache increments counted."""

    def __init__(self, now: float = NOW):
        super().__init__()
        self.now = now
        self.increments = 0

    def timer(self):
        return self.now

    def _increment(self, counter, timeout, by):
        self.increments += 1
        return super()._increment(counter, timeout, by)


def test_a_generous_rate_asks_the_cache_once_a_lease():
    throttle = Counting()
    assert all(throttle._count(1, 60_000, MINUTE) for _ in range(200))
    assert throttle.increments == 4  # leases of 60: 60, 120, 180, 240


def test_processes_sharing_a_counter_never_admit_more_than_the_limit(monkeypatch):
    limit, processes = 3_000, [_Leases(), _Leases()]
    lease = limit // LEASE_SHARE
    throttle = Counting()
    admitted = refused = 0
    for n in range(limit + 100):
        monkeypatch.setattr(authentication, "throttle_leases", processes[n % 2])
        if throttle._count(7, limit, MINUTE):
            admitted += 1
        else:
            refused += 1
    assert admitted <= limit
    assert admitted >= limit - len(processes) * (lease - 1)
    assert refused == limit + 100 - admitted
    assert throttle.wait() == pytest.approx(MINUTE)


def test_a_lease_ends_with_its_window():
    throttle = Counting()
    assert throttle._count(1, 60_000, MINUTE)
    assert throttle.increments == 1
    throttle.now = NOW + MINUTE  # the next minute: what the lease held is not used
    assert throttle._count(1, 60_000, MINUTE)
    assert throttle.increments == 2


def test_a_rate_under_a_thousand_a_period_counts_every_request():
    throttle = Counting()
    assert [throttle._count(1, 999, MINUTE) for _ in range(1_000)] == [True] * 999 + [False]
    assert throttle.increments == 1_000


def test_two_keys_have_leases_of_their_own():
    throttle = Counting()
    assert throttle._count(1, 60_000, MINUTE)
    assert throttle._count(2, 60_000, MINUTE)
    assert throttle.increments == 2
