"""Shared fixtures: factories for the directory, API keys and an authenticated API client."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from pbx.models import ApiKey, Company, Department, PbxUser, PublicNumber, Queue, QueueMember
from terminals.models import Terminal


def pytest_configure(config):
    """Passwords hashed with MD5 in the tests, here and in the servers they start (which read
    SWAN_TEST_PASSWORD_HASHER in the settings): PBKDF2 cost half a second per user and login."""
    from django.conf import global_settings, settings
    from django.contrib.auth import hashers

    os.environ["SWAN_TEST_PASSWORD_HASHER"] = "1"
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *global_settings.PASSWORD_HASHERS,
    ]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()


FIXTURES_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
_sequence = itertools.count(1)


@pytest.fixture(autouse=True)
def _close_websocket_db_connections():
    """The websockets' DB threads keep their connections: close them before the next test."""
    yield
    from dashboard import dbpool

    dbpool.close_connections()


def fixtures_path(*parts: str) -> Path:
    """A file of ../shared/fixtures; the calling test skips when the folder is absent."""
    path = FIXTURES_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real Asterisk fixture {path} is absent (a plain clone has no ../shared)")
    return path


@pytest.fixture
def make_company(db):
    def make(**fields) -> Company:
        n = next(_sequence)
        fields.setdefault("slug", f"company-{n}")
        fields.setdefault("name", f"Company {n}")
        return Company.objects.create(**fields)

    return make


@pytest.fixture
def company(make_company) -> Company:
    return make_company(slug="onfarma", name="ONFARMA")


@pytest.fixture
def make_user(db):
    def make(company: Company, extension: str, name: str | None = None, **fields) -> PbxUser:
        department = fields.pop("department", None)
        if isinstance(department, str):
            department, _ = Department.objects.get_or_create(company=company, name=department)
        terminals = fields.pop("terminals", None)
        user = PbxUser.objects.create(
            company=company,
            extension=extension,
            name=name or f"User {extension}",
            department=department,
            **fields,
        )
        for terminal in terminals if terminals is not None else [f"PJSIP/{extension}"]:
            Terminal.objects.create(
                mac=f"{next(_sequence):012x}", user=user, interface=terminal, type="desk"
            )
        return user

    return make


@pytest.fixture
def make_queue(db):
    def make(company: Company, name: str, members=(), **fields) -> Queue:
        queue = Queue.objects.create(company=company, name=name, **fields)
        for user in members:
            QueueMember.objects.create(queue=queue, user=user)
        return queue

    return make


@pytest.fixture
def make_number(db):
    def make(company: Company, name: str, number: str, **fields) -> PublicNumber:
        return PublicNumber.objects.create(company=company, name=name, number=number, **fields)

    return make


@pytest.fixture
def make_api_key(db):
    def make(*companies: Company, **fields) -> str:
        """A key of these companies; with none given, a key of all companies (explicitly)."""
        fields.setdefault("name", f"key-{next(_sequence)}")
        fields.setdefault("all_companies", not companies)
        key = ApiKey(**fields)
        raw = key.set_new_key()
        key.save()
        key.companies.set(companies)
        return raw

    return make


@pytest.fixture
def api(make_api_key) -> APIClient:
    """A client whose key sees every company."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key()}")
    return client


@pytest.fixture
def api_for(make_api_key):
    """A client whose key is limited to the given companies."""

    def make(*companies: Company, **fields) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=make_api_key(*companies, **fields))
        return client

    return make


@pytest.fixture
def gateway(settings):
    """The recording fake instead of the PBX (tests/fakes.py); reset before and after."""
    from tests.fakes import RecordingGateway

    settings.PBX_GATEWAY = "tests.fakes.RecordingGateway"
    RecordingGateway.reset()
    yield RecordingGateway
    RecordingGateway.reset()


@pytest.fixture
def make_supervisor(db):
    """A dashboard login (password `s3cret-Pass`) who supervises the given companies."""
    from django.contrib.auth import get_user_model

    from dashboard.models import Supervisor

    def make(*companies, **fields):
        fields.setdefault("username", f"supervisor-{next(_sequence)}")
        user = get_user_model().objects.create_user(password="s3cret-Pass", **fields)
        Supervisor.objects.create(user=user).companies.set(companies)
        return user

    return make


# 10 s into a minute and into an hour: far from the boundary where a fixed window starts again.
THROTTLE_MOMENT = 1_800_000_010.0


@pytest.fixture(autouse=True)
def _throttle_clock_pinned(monkeypatch):
    """The API key throttle's windows start on the minute (pbx/api/authentication.py): a test
    whose requests fell on both sides of one saw its count start again (a 200 for the 429 it
    expected). Its clock stands still in every test; a test that moves it sets its own."""
    from pbx.api.authentication import ApiKeyRateThrottle

    monkeypatch.setattr(ApiKeyRateThrottle, "timer", staticmethod(lambda: THROTTLE_MOMENT))


@pytest.fixture(autouse=True)
def _fresh_read_caches():
    """No test sees what a read cache of the process kept from another (pbx/api/read_cache.py,
    the API key cache, the throttle's leases, the listener's kept queue figures): SQLite reuses
    primary keys, and versions roll back with each test."""
    from pbx.api.authentication import throttle_leases
    from pbx.api.read_cache import live_cache
    from pbx.directory.api_keys import key_cache
    from pbx.history.kept_totals import kept_entry_totals
    from pbx.live.queue_updates import queue_updates

    live_cache.reset()
    kept_entry_totals.reset()
    key_cache.clear()
    throttle_leases.clear()
    yield
    # A stopped listener's last queue update is not left to run into the next test's database.
    queue_updates.idle(timeout=5.0)
    live_cache.reset()
    kept_entry_totals.reset()
    key_cache.clear()
    throttle_leases.clear()


@pytest.fixture(scope="session", autouse=True)
def websocket_db_threads_closed(django_db_setup, django_db_blocker):
    """The websocket consumers' database threads (dashboard/dbpool.py) keep connections; close
    them before the test database is dropped, or PostgreSQL refuses to drop it."""
    yield
    from dashboard import dbpool

    with django_db_blocker.unblock():
        dbpool.close_connections()
