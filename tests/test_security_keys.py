"""Security sweep, issue 10, websockets and logins (tests/test_security.py holds the REST cases).

- An open dashboard websocket is re-checked every DASHBOARD_REVALIDATE_SECONDS and closed with the
  code a new connection would get now: 4401 once its API key is deactivated, deleted or rotated,
  or its supervisor is deactivated, deleted or logged out; 4404 once the key or the supervisor no
  longer sees the company (or the company is gone).
- A limited key whose companies were all deleted is refused every company (4404).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import OperationalError

from dashboard import consumers
from dashboard.consumers import CLOSE_UNAUTHENTICATED, CLOSE_UNKNOWN_COMPANY
from dashboard.models import Supervisor
from pbx.models import ApiKey, Company, hash_api_key
from tests.dashboard.conftest import open_socket

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/dashboard/onfarma/"
_names = itertools.count(1)


@pytest.fixture(autouse=True)
def quick_rechecks(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.DASHBOARD_REVALIDATE_SECONDS = 0.05
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_supervisor(db):
    def make(*companies, **fields):
        fields.setdefault("username", f"watcher-{next(_names)}")
        user = get_user_model().objects.create_user(password="s3cret-Pass", **fields)
        Supervisor.objects.create(user=user).companies.set(companies)
        return user

    return make


async def closed_with(communicator, timeout: float = 5) -> int:
    """The close code the server sends, skipping other messages; fails after `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            output = await communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return output.get("code")


async def still_open(communicator) -> None:
    await communicator.send_json_to({"type": "ping"})
    async with asyncio.timeout(5):
        while (await communicator.receive_json_from(timeout=5))["type"] != "pong":
            pass


def _key(raw: str) -> ApiKey:
    return ApiKey.objects.get(key_hash=hash_api_key(raw))


KEY_REVOCATIONS: dict[str, tuple[Callable, int]] = {
    "deactivated": (
        lambda key, other: ApiKey.objects.filter(pk=key.pk).update(is_active=False),
        4401,
    ),
    "deleted": (lambda key, other: key.delete(), 4401),
    "rotated": (lambda key, other: (key.set_new_key(), key.save()), 4401),
    "network no longer allowed": (
        lambda key, other: ApiKey.objects.filter(pk=key.pk).update(allowed_networks="10.9.9.0/24"),
        4401,
    ),
    "company taken away": (lambda key, other: key.companies.set([other]), 4404),
    "company deleted": (lambda key, other: Company.objects.filter(slug="onfarma").delete(), 4404),
}


@pytest.mark.parametrize("revoke", KEY_REVOCATIONS, ids=str)
async def test_an_open_api_key_socket_is_closed_when_the_key_is_revoked(
    revoke, company, make_company, make_api_key
):
    other = await database_sync_to_async(make_company)(slug="other", name="Other")
    raw = await database_sync_to_async(make_api_key)(company)
    kept = await database_sync_to_async(make_api_key)(company)
    revoked, accepted, _ = await open_socket(f"{PATH}?key={raw}", origin=None)
    control, control_accepted, _ = await open_socket(f"{PATH}?key={kept}", origin=None)
    try:
        assert accepted
        assert control_accepted
        await still_open(revoked)
        action, code = KEY_REVOCATIONS[revoke]
        key = await database_sync_to_async(_key)(raw)
        await database_sync_to_async(action)(key, other)
        assert await closed_with(revoked) == code
        if revoke != "company deleted":
            await still_open(control)
    finally:
        await revoked.disconnect()
        await control.disconnect()


async def test_an_open_socket_of_an_all_companies_key_is_closed_when_the_company_goes(
    company, make_api_key
):
    raw = await database_sync_to_async(make_api_key)()
    communicator, accepted, _ = await open_socket(f"{PATH}?key={raw}", origin=None)
    try:
        assert accepted
        await database_sync_to_async(company.delete)()
        assert await closed_with(communicator) == CLOSE_UNKNOWN_COMPANY
    finally:
        await communicator.disconnect()


def _log_out(user) -> None:
    Session.objects.all().delete()


def _deactivate(user) -> None:
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


def _take_company(user) -> None:
    user.supervisor.companies.clear()


def _change_password(user) -> None:
    user.set_password("another-s3cret-Pass")
    user.save()


SUPERVISOR_REVOCATIONS: dict[str, tuple[Callable, int]] = {
    "logged out": (_log_out, CLOSE_UNAUTHENTICATED),
    "deactivated": (_deactivate, CLOSE_UNAUTHENTICATED),
    "deleted": (lambda user: user.delete(), CLOSE_UNAUTHENTICATED),
    "password changed": (_change_password, CLOSE_UNAUTHENTICATED),
    "company taken away": (_take_company, CLOSE_UNKNOWN_COMPANY),
}


@pytest.mark.parametrize("revoke", SUPERVISOR_REVOCATIONS, ids=str)
async def test_an_open_supervisor_socket_is_closed_when_the_supervisor_is_revoked(
    revoke, company, make_supervisor
):
    user = await database_sync_to_async(make_supervisor)(company)
    communicator, accepted, _ = await open_socket(PATH, user=user)
    try:
        assert accepted
        await still_open(communicator)
        action, code = SUPERVISOR_REVOCATIONS[revoke]
        await database_sync_to_async(action)(user)
        assert await closed_with(communicator) == code
    finally:
        await communicator.disconnect()


async def test_a_supervisor_socket_stays_open_while_nothing_changes(company, make_supervisor):
    user = await database_sync_to_async(make_supervisor)(company)
    other = await database_sync_to_async(make_supervisor)(company)
    watched, accepted, _ = await open_socket(PATH, user=user)
    revoked, _accepted, _ = await open_socket(PATH, user=other)
    try:
        assert accepted
        await database_sync_to_async(_deactivate)(other)
        assert await closed_with(revoked) == CLOSE_UNAUTHENTICATED
        await still_open(watched)
    finally:
        await watched.disconnect()
        await revoked.disconnect()


async def test_a_key_whose_companies_are_all_deleted_is_refused_every_company(
    company, make_company, make_api_key
):
    gone = await database_sync_to_async(make_company)(slug="compc", name="Comp C")
    raw = await database_sync_to_async(make_api_key)(gone)
    await database_sync_to_async(gone.delete)()
    communicator, accepted, code = await open_socket(f"{PATH}?key={raw}", origin=None)
    try:
        assert not accepted
        assert code == CLOSE_UNKNOWN_COMPANY
    finally:
        await communicator.disconnect()


async def test_a_failed_recheck_keeps_the_socket_open_and_checks_again(
    company, make_api_key, monkeypatch
):
    """The database down for a moment does not close every dashboard; the next check does."""
    answers = iter([OperationalError("down"), OperationalError("down"), CLOSE_UNAUTHENTICATED])

    def recheck(grant):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    raw = await database_sync_to_async(make_api_key)(company)
    monkeypatch.setattr(consumers, "grant_refusal", recheck)
    communicator, accepted, _ = await open_socket(f"{PATH}?key={raw}", origin=None)
    try:
        assert accepted
        assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED
        assert next(answers, None) is None  # all three checks ran
    finally:
        await communicator.disconnect()
