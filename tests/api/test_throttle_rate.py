"""Issue 12, item 7: each API key may have its own rate limit; empty, it has SWAN_THROTTLE_RATE.

- A key's own rate applies (2/min: the 3rd request is a 429 envelope with Retry-After), while
  another key, on the default, is unaffected; an empty rate is the default.
- The default serves one helpdesk for 1,000 agents (~300 requests/s) with headroom.
- The throttle costs no query: the key is the one authentication loaded (or kept, pbx/directory/api_keys.py).
- A bad rate is refused in the admin and by `create_api_key --rate`, in Spanish and English.
- Migration 0010 leaves the keys it finds on the default.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from pbx.api.authentication import ApiKeyRateThrottle, default_rate, parse_rate
from pbx.directory.api_keys import key_cache
from pbx.models import ApiKey, hash_api_key
from pbx.models.directory import throttle_rate_validator

PATH = "/blf-users/onfarma"
BAD_RATE_EN = "A rate is a number of requests per second, minute, hour or day"
BAD_RATE_ES = "Una tasa es un número de peticiones por segundo, minuto, hora o día"


@pytest.fixture(autouse=True)
def _counters():
    cache.clear()  # throttle counters are per key pk, which a rolled-back test may hand out again
    yield
    cache.clear()


def status_of(client: APIClient) -> int:
    return client.get(PATH).status_code


def test_a_keys_own_rate_applies_and_another_key_keeps_the_default(company, api_for):
    slow = api_for(throttle_rate="2/min")
    other = api_for()  # empty rate: the default, 60000/min

    assert [status_of(slow), status_of(slow)] == [200, 200]
    refused = slow.get(PATH)
    assert refused.status_code == 429
    retry = int(refused["Retry-After"])
    assert 0 < retry <= 60
    body = json.loads(refused.content)
    assert set(body) == {"error", "error-msg", "result"}
    assert body["error"] is True
    assert body["result"] is None
    assert str(retry) in body["error-msg"]

    assert [status_of(other) for _ in range(20)] == [200] * 20
    assert status_of(slow) == 429


def test_an_empty_rate_is_the_settings_default(company, api_for, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    default = api_for(throttle_rate="")
    generous = api_for(throttle_rate="100/min")

    assert [status_of(default) for _ in range(4)] == [200, 200, 200, 429]
    assert [status_of(generous) for _ in range(4)] == [200] * 4


def test_a_keys_rate_may_be_higher_than_the_default(company, api_for, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
    big_centre = api_for(throttle_rate="5/s")

    assert [status_of(big_centre) for _ in range(3)] == [200] * 3


def test_a_changed_rate_applies_once_the_key_is_read_again(company, api_for, monkeypatch):
    """The rate is read with the key, which each process keeps SWAN_API_KEY_CACHE_SECONDS
    (pbx/directory/api_keys.py): no restart, and within that time."""
    now = [1000.0]
    monkeypatch.setattr(key_cache, "clock", lambda: now[0])
    client = api_for(name="fedesk")
    assert status_of(client) == 200
    ApiKey.objects.filter(name="fedesk").update(throttle_rate="1/min")
    now[0] += settings.SWAN_API_KEY_CACHE_SECONDS
    assert status_of(client) == 429  # the minute's count goes on: 2 > 1
    ApiKey.objects.filter(name="fedesk").update(throttle_rate="2/h")
    now[0] += settings.SWAN_API_KEY_CACHE_SECONDS
    assert [status_of(client), status_of(client), status_of(client)] == [200, 200, 429]


def test_the_default_serves_a_1000_agent_helpdesk_with_headroom():
    limit, seconds = parse_rate(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"])
    per_second = limit / seconds
    agents = 1000
    polling = agents / 5 + agents / 10  # userStatus every 5 s, blf-users every 10 s
    assert per_second >= 3 * polling
    assert default_rate() == "60000/min"


def test_throttling_costs_no_query(company, api_for, monkeypatch):
    """The rate is read from the key authentication loaded: the throttle itself queries nothing."""
    queries: list[int] = []
    allow = ApiKeyRateThrottle.allow_request

    def counted(self, request, view):
        with CaptureQueriesContext(connection) as during:
            allowed = allow(self, request, view)
        queries.append(len(during))
        return allowed

    monkeypatch.setattr(ApiKeyRateThrottle, "allow_request", counted)
    limited, unlimited = api_for(throttle_rate="1/min"), api_for()
    assert [status_of(limited), status_of(limited), status_of(unlimited)] == [200, 429, 200]
    assert queries == [0, 0, 0]


def test_the_counter_is_one_integer_per_key(company, api_for):
    """Not DRF's list of timestamps, which at 60000/min is read and written whole per request."""
    client = api_for(throttle_rate="10/min")
    for _ in range(3):
        status_of(client)
    key = ApiKey.objects.get(throttle_rate="10/min")
    window = int(ApiKeyRateThrottle.timer() // 60)
    assert cache.get(f"throttle_api_key_{key.pk}_60_{window}") == 3


def test_an_unreachable_cache_leaves_the_api_answering(company, api_for, monkeypatch):
    client = api_for(throttle_rate="1/min")

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(ApiKeyRateThrottle, "cache", type("Down", (), {"add": down})())
    assert [status_of(client) for _ in range(3)] == [200] * 3


# ----------------------------------------------------------------------------- the rate's format


@pytest.mark.parametrize(
    "rate", ["1/s", "1000/s", "60000/min", "5000/h", "100000/d", "10/second", "3/minute", "9/day"]
)
def test_good_rates(rate):
    throttle_rate_validator(rate)
    assert parse_rate(rate)[0] == int(rate.split("/")[0])


@pytest.mark.parametrize(
    "rate", ["60000", "0/min", "-5/min", "10/week", "10 / min", "ten/min", "/min", "10/", "1e3/s"]
)
def test_bad_rates_are_refused_in_both_languages(rate):
    for language, message in (("en", BAD_RATE_EN), ("es", BAD_RATE_ES)):
        with translation.override(language):
            with pytest.raises(ValidationError) as refused:
                throttle_rate_validator(rate)
            assert message in " ".join(refused.value.messages)


def test_the_model_refuses_a_bad_rate(db):
    key = ApiKey(name="fedesk", all_companies=True, throttle_rate="lots")
    key.set_new_key()
    with translation.override("en"):
        with pytest.raises(ValidationError) as refused:
            key.full_clean()
        assert BAD_RATE_EN in " ".join(refused.value.message_dict["throttle_rate"])


# ----------------------------------------------------------------------------- admin


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def admin_url(view: str, *args) -> str:
    return reverse(f"admin:pbx_apikey_{view}", args=args)


@pytest.mark.parametrize(("language", "message"), [("en", BAD_RATE_EN), ("es", BAD_RATE_ES)])
def test_the_admin_refuses_a_bad_rate(staff, language, message):
    response = staff.post(
        admin_url("add"),
        {"name": "fedesk", "all_companies": "on", "throttle_rate": "fast", "is_active": "on"},
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors["throttle_rate"])
    assert not ApiKey.objects.exists()


def test_the_admin_sets_changes_and_lists_the_rate(staff, make_api_key, settings):
    settings.LANGUAGE_CODE = "en"
    response = staff.post(
        admin_url("add"),
        {"name": "fedesk", "all_companies": "on", "throttle_rate": "90000/min", "is_active": "on"},
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="fedesk")
    assert key.throttle_rate == "90000/min"

    assert "throttle_rate" in staff.get(admin_url("change", key.pk)).content.decode()
    response = staff.post(
        admin_url("change", key.pk),
        {"name": "fedesk", "all_companies": "on", "throttle_rate": "", "is_active": "on"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    key.refresh_from_db()
    assert key.throttle_rate == ""

    make_api_key(name="wallboard", throttle_rate="600/min")
    content = staff.get(admin_url("changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "600/min" in content
    assert f"default ({default_rate()})" in content


# ----------------------------------------------------------------------------- create_api_key


def create_api_key(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_create_api_key_sets_the_rate(company):
    lines = create_api_key("fedesk", "--rate", "2/min")

    key = ApiKey.objects.get(name="fedesk")
    assert key.key_hash == hash_api_key(lines[-1])
    assert key.throttle_rate == "2/min"
    assert "2/min" in lines[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {lines[-1]}")
    assert [status_of(client) for _ in range(3)] == [200, 200, 429]


def test_create_api_key_without_rate_has_the_default(db):
    lines = create_api_key("fedesk")

    assert ApiKey.objects.get(name="fedesk").throttle_rate == ""
    assert f"default rate limit ({default_rate()})" in lines[0]


@pytest.mark.parametrize("rate", ["fast", "10/week", "0/min"])
def test_create_api_key_refuses_a_bad_rate(db, rate):
    with pytest.raises(CommandError) as refused:
        create_api_key("fedesk", "--rate", rate)

    assert str(refused.value) == (
        f"--rate '{rate}' is not a rate: give requests per second, minute, hour or day, "
        "such as 60000/min, 1000/s or 5000/h."
    )
    assert not ApiKey.objects.exists()


# ----------------------------------------------------------------------------- migration


@pytest.mark.django_db(transaction=True)
def test_migration_0010_leaves_existing_keys_on_the_default():
    before, after = [("pbx", "0009_company_dnd_scope")], [("pbx", "0010_apikey_throttle_rate")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldKey = old_apps.get_model("pbx", "ApiKey")
    OldKey.objects.create(name="fedesk", prefix="swan_abcde", key_hash="a" * 64, all_companies=True)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    NewKey = executor.loader.project_state(after).apps.get_model("pbx", "ApiKey")
    assert NewKey.objects.get(name="fedesk").throttle_rate == ""

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert ApiKey.objects.get(name="fedesk").throttle_rate == ""


def test_a_malformed_default_rate_stops_the_server_at_start(settings):
    from pbx.checks import throttle_rate_check

    assert throttle_rate_check() == []
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "lots"},
    }
    (error,) = throttle_rate_check()
    assert error.id == "swan.E001"
    assert "'lots'" in error.msg
