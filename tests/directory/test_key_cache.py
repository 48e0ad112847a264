"""API keys kept per process for SWAN_API_KEY_CACHE_SECONDS: what changes, and within when."""

from __future__ import annotations

import pytest
from django.conf import settings

from pbx.directory.api_keys import key_cache
from pbx.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(key_cache, "clock", lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += seconds

    return advance


def status(client, path="/company-numbers/onfarma") -> int:
    return client.get(path).status_code


def test_a_deactivated_key_stops_working_within_the_cache_time(company, api_for, clock):
    client = api_for(company, name="fedesk")
    assert status(client) == 200
    ApiKey.objects.filter(name="fedesk").update(is_active=False)
    clock(settings.SWAN_API_KEY_CACHE_SECONDS - 0.1)
    assert status(client) == 200  # still kept
    clock(0.1)
    assert status(client) == 401


def test_a_keys_companies_apply_within_the_cache_time(company, make_company, api_for, clock):
    other = make_company(slug="other", name="Other")
    client = api_for(company, name="fedesk")
    assert status(client) == 200
    assert status(client, "/company-numbers/other") == 404
    ApiKey.objects.get(name="fedesk").companies.set([other])
    clock(settings.SWAN_API_KEY_CACHE_SECONDS)
    assert status(client) == 404
    assert status(client, "/company-numbers/other") == 200


def test_with_no_cache_time_every_request_reads_the_key(company, api_for, settings):
    settings.SWAN_API_KEY_CACHE_SECONDS = 0
    client = api_for(company, name="fedesk")
    assert status(client) == 200
    ApiKey.objects.filter(name="fedesk").update(is_active=False)
    assert status(client) == 401


def test_a_wrong_key_is_never_kept(company, client):
    key = ApiKey(name="late")
    raw = key.set_new_key()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    assert status(client) == 401  # not created yet
    key.save()
    key.companies.set([company])
    assert status(client) == 200


def test_a_kept_key_costs_no_query(company, api_for, django_assert_num_queries):
    client = api_for(company)
    assert status(client) == 200
    with django_assert_num_queries(2):  # the company and its numbers
        assert status(client) == 200


def test_the_cache_stays_bounded(company, api_for, monkeypatch):
    monkeypatch.setattr(key_cache, "MAX_ENTRIES", 3)
    clients = [api_for(company) for _ in range(5)]
    assert [status(c) for c in clients] == [200] * 5
    assert len(key_cache._entries) <= 3
