"""Security sweep, issue 10, websockets and logins (tests/api/test_security.py holds the REST cases).

- An open dashboard websocket is re-checked every DASHBOARD_REVALIDATE_SECONDS and closed with the
  code a new connection would get now: 4401 once its API key is deactivated, deleted or rotated,
  or its supervisor is deactivated, deleted or logged out; 4404 once the key or the supervisor no
  longer sees the company (or the company is gone).
- A limited key whose companies were all deleted is refused every company (4404).
- Wrong API keys on the websocket count with the REST API's: past API_KEY_FAILURE_LIMIT the
  address is refused with 4429 (a valid key still connects). Wrong passwords on the admin's and
  the dashboard's login pages: past LOGIN_FAILURE_LIMIT the address is refused, right password
  or not, with the page's own error saying how long to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import OperationalError, connection

from dashboard import access
from dashboard.consumers import (
    CLOSE_TOO_MANY_FAILURES,
    CLOSE_UNAUTHENTICATED,
    CLOSE_UNKNOWN_COMPANY,
)
from pbx.models import ApiKey, Company, hash_api_key
from swanproject.asgi import application
from tests.websockets import open_socket, websocket

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/dashboard/onfarma/"


@pytest.fixture(autouse=True)
def quick_rechecks(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.DASHBOARD_REVALIDATE_SECONDS = 0.05
    cache.clear()
    yield
    cache.clear()


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
    async with websocket(f"{PATH}?key={raw}", origin=None) as (communicator, accepted, _):
        assert accepted
        await database_sync_to_async(company.delete)()
        assert await closed_with(communicator) == CLOSE_UNKNOWN_COMPANY


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
    async with websocket(PATH, user=user) as (communicator, accepted, _):
        assert accepted
        await still_open(communicator)
        action, code = SUPERVISOR_REVOCATIONS[revoke]
        await database_sync_to_async(action)(user)
        assert await closed_with(communicator) == code


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
    async with websocket(f"{PATH}?key={raw}", origin=None) as (_communicator, accepted, code):
        assert not accepted
        assert code == CLOSE_UNKNOWN_COMPANY


async def test_a_failed_recheck_keeps_the_socket_open_and_checks_again(
    company, make_api_key, monkeypatch
):
    """The database down for a moment does not close every dashboard; the next check does."""
    answers = iter([OperationalError("down"), OperationalError("down"), CLOSE_UNAUTHENTICATED])

    def recheck(grants):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return dict.fromkeys(grants, answer)

    raw = await database_sync_to_async(make_api_key)(company)
    monkeypatch.setattr(access, "grant_refusals", recheck)
    async with websocket(f"{PATH}?key={raw}", origin=None) as (communicator, accepted, _):
        assert accepted
        assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED
        assert next(answers, None) is None  # all three checks ran


# ----------------------------------------------------------------------------- failed attempts


@pytest.fixture
def failure_limits(settings):
    settings.API_KEY_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.AUTH_FAILURE_WINDOW_SECONDS = 300
    settings.AUTH_LOCKOUT_SECONDS = 120
    settings.LANGUAGE_CODE = "en"


async def _refusal(path: str, address: str = "127.0.0.1") -> int | None:
    communicator = WebsocketCommunicator(application, path, headers=[(b"host", b"testserver")])
    communicator.scope["client"] = [address, 50000]  # read when the application starts
    accepted, code = await communicator.connect(timeout=5)
    await communicator.disconnect()
    return None if accepted else code


async def test_wrong_keys_on_the_websocket_lock_the_address_out(
    company, make_api_key, failure_limits
):
    raw = await database_sync_to_async(make_api_key)(company)
    codes = [await _refusal(f"{PATH}?key=swan_nope-{n}") for n in range(5)]
    assert codes == [CLOSE_UNAUTHENTICATED] * 3 + [CLOSE_TOO_MANY_FAILURES] * 2
    assert await _refusal(f"{PATH}?key={raw}") is None  # a valid key is never locked out
    assert await _refusal(f"{PATH}?key=swan_nope", "10.0.0.7") == CLOSE_UNAUTHENTICATED


def test_wrong_keys_on_the_websocket_and_the_api_count_together(company, failure_limits, client):
    from asgiref.sync import async_to_sync

    for _ in range(3):
        assert async_to_sync(_refusal)(f"{PATH}?key=swan_nope") == CLOSE_UNAUTHENTICATED
    response = client.get("/blf-users/onfarma", HTTP_X_API_KEY="swan_nope")
    assert response.status_code == 429


LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="boss", password="s3cret-Pass", is_staff=True
    )


def _login(client, page: str, password: str, **extra):
    return client.post(
        page, {"username": "boss", "password": password}, HTTP_ACCEPT_LANGUAGE="en", **extra
    )


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_wrong_passwords_lock_the_address_out_of_the_login_pages(
    page, staff_user, failure_limits, client
):
    for _ in range(3):
        response = _login(client, page, "wrong")
        assert response.status_code == 200
        assert "Too many failed logins" not in response.content.decode()
    for password in ("wrong", "s3cret-Pass"):  # once locked out, even the right password
        response = _login(client, page, password)
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
        content = response.content.decode()
        assert "Too many failed logins from your address; try again in 120 seconds." in content
    # Another address is not locked out.
    response = _login(client, page, "s3cret-Pass", REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff_user.pk)


def test_both_login_pages_share_one_count(staff_user, failure_limits, client):
    _login(client, "/accounts/login/", "wrong")
    _login(client, "/admin/login/", "wrong")
    _login(client, "/accounts/login/", "wrong")
    assert (
        "Too many failed logins" in _login(client, "/admin/login/", "s3cret-Pass").content.decode()
    )


def test_a_right_password_under_the_limit_logs_in(staff_user, failure_limits, client):
    _login(client, "/accounts/login/", "wrong")
    response = _login(client, "/accounts/login/", "s3cret-Pass")
    assert response.status_code == 302


@contextlib.contextmanager
def _before_first_query_on(table: str, action: Callable[[], object]):
    """Run `action` (committed) right before the check's first query that reads `table`.

    Each query of a check sees what was committed when it ran: this puts a revocation between
    the check's reads, where a concurrent admin's delete can land, every time rather than by luck.
    """
    done = False

    def wrapper(execute, sql, params, many, context):
        nonlocal done
        if not done and f'"{table}"' in sql and sql.lstrip().upper().startswith("SELECT"):
            done = True
            action()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


@pytest.mark.parametrize("revoke", ["deleted", "company taken away"])
def test_a_supervisor_revoked_between_the_checks_reads_gets_the_revocations_code(
    revoke, company, make_supervisor, client
):
    user = make_supervisor(company)
    client.force_login(user)
    grant = access.Grant(
        company_id=company.pk, user_id=user.pk, session_key=client.session.session_key
    )
    action, code = SUPERVISOR_REVOCATIONS[revoke]
    with _before_first_query_on("dashboard_supervisor_companies", lambda: action(user)):
        assert access.grant_refusals([grant]) == {grant: code}


@pytest.mark.parametrize("revoke", ["deleted", "company taken away"])
def test_a_key_revoked_between_the_checks_reads_gets_the_revocations_code(
    revoke, company, make_company, make_api_key
):
    other = make_company(slug="other", name="Other")
    raw = make_api_key(company)
    grant = access.Grant(company_id=company.pk, key_hash=hash_api_key(raw), address="127.0.0.1")
    action, code = KEY_REVOCATIONS[revoke]
    with _before_first_query_on("pbx_company", lambda: action(_key(raw), other)):
        assert access.grant_refusals([grant]) == {grant: code}
