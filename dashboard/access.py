"""Who may open a dashboard websocket, and keep it open: origins, API keys, sessions, companies."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.http.request import split_domain_port, validate_host
from django.utils.crypto import constant_time_compare

from pbx.directory import lockout
from pbx.directory.supervision import companies_for
from pbx.models import ApiKey, Company, hash_api_key

logger = logging.getLogger("swan.dashboard")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# Close codes; before the handshake is accepted a browser only sees a refused connection.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_UNKNOWN_COMPANY = 4404
CLOSE_TOO_MANY_FAILURES = 4429

Origin = tuple[str, str, int]


def scope_header(scope: dict, name: str) -> str | None:
    """The first value of a request header of an ASGI scope, decoded as latin-1."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def query_param(scope: dict, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


def parse_origin(value: str) -> Origin | None:
    """`https://Host:443` → ("https", "host", 443); None for `null` or anything unparsable."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _matches_host(origin: Origin, host_header: str) -> bool:
    domain, port = split_domain_port(host_header)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme, origin_host, origin_port = origin
    if origin_host != domain.strip("[]"):
        return False
    # Behind a TLS proxy the socket's scheme says nothing; without a port in Host the browser
    # was on its scheme's default port.
    if port:
        return int(port) == origin_port
    return origin_port == _DEFAULT_PORTS[scheme]


def origin_allowed(scope: dict, *, allow_missing: bool) -> bool:
    """An Origin header naming this very host, or one of settings.DASHBOARD_ALLOWED_ORIGINS.

    Stricter than channels' AllowedHostsOriginValidator, which lets a missing Origin and any
    origin through when ALLOWED_HOSTS is "*". Browsers always send Origin on websockets, so
    only programmatic (API-key) clients may go without one.
    """
    raw = scope_header(scope, "origin")
    if raw is None:
        return allow_missing
    origin = parse_origin(raw)
    if origin is None:
        return False
    allowed = {parse_origin(item) for item in getattr(settings, "DASHBOARD_ALLOWED_ORIGINS", [])}
    if origin in allowed:
        return True
    host = scope_header(scope, "host")
    return host is not None and _matches_host(origin, host)


def raw_api_key(scope: dict) -> str | None:
    """The key of `?key=`, `Authorization: Bearer` or `X-Api-Key`, as the REST API takes it."""
    header = scope_header(scope, "authorization") or ""
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (scope_header(scope, "x-api-key") or "").strip() or query_param(scope, "key") or None


class StreamRefused(Exception):
    """A websocket refused (or closed) with this close code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def api_key_for(raw_key: str, *, address: str | None) -> ApiKey:
    """The active key with this secret, if it may be used from this address; else StreamRefused.

    A wrong key counts against the address as on the REST API (4429 once it is locked out).
    """
    key = ApiKey.objects.filter(key_hash=hash_api_key(raw_key), is_active=True).first()
    if key is None:
        wait = lockout.bad_key_attempt(address=address)
        raise StreamRefused(CLOSE_UNAUTHENTICATED if wait is None else CLOSE_TOO_MANY_FAILURES)
    if not key.allows_address(address):
        logger.warning("dashboard api key refused key=%s address=%s", key.prefix, address)
        raise StreamRefused(CLOSE_UNAUTHENTICATED)
    return key


def company_for_key(key: ApiKey, *, slug: str) -> Company | None:
    """The company with this slug if the key may see it (a limited key with none left sees none)."""
    companies = Company.objects.filter(slug=slug)
    if not key.all_companies:
        companies = companies.filter(api_keys=key)
    return companies.first()


@dataclass(frozen=True)
class Grant:
    """What let a websocket in: checked again, every few seconds, while it stays open."""

    company_id: int
    key_hash: str | None = None  # an API key's connection
    address: str | None = None
    user_id: int | None = None  # a supervisor's connection
    session_key: str | None = None


def _key_grant_refusals(grants: list[Grant]) -> dict[Grant, int]:
    """The close codes of API-key grants that lapsed, in three queries however many there are."""
    if not grants:
        return {}
    keys = {
        key.key_hash: key
        for key in ApiKey.objects.filter(
            key_hash__in={grant.key_hash for grant in grants}, is_active=True
        )
    }
    company_ids = {grant.company_id for grant in grants}
    existing = set(Company.objects.filter(pk__in=company_ids).values_list("pk", flat=True))
    listed = set(
        ApiKey.companies.through.objects.filter(
            apikey_id__in=[key.pk for key in keys.values()], company_id__in=company_ids
        ).values_list("apikey_id", "company_id")
    )
    refusals: dict[Grant, int] = {}
    for grant in grants:
        key = keys.get(grant.key_hash)
        if key is None or not key.allows_address(grant.address):
            refusals[grant] = CLOSE_UNAUTHENTICATED
        elif grant.company_id not in existing or not (
            key.all_companies or (key.pk, grant.company_id) in listed
        ):
            refusals[grant] = CLOSE_UNKNOWN_COMPANY
    return _recheck_authentication(refusals)


def _recheck_authentication(refusals: dict[Grant, int]) -> dict[Grant, int]:
    """A key deleted while it was being checked reads as found, then as listing no company.

    Each query sees what was committed when it ran, so the key's deletion can land between the
    key query and the companies query. Read the keys refused for their company once more: a key
    gone by now is a revoked key (4401), not a company taken away (4404).
    """
    by_company = [grant for grant, code in refusals.items() if code == CLOSE_UNKNOWN_COMPANY]
    if not by_company:
        return refusals
    still_active = set(
        ApiKey.objects.filter(
            key_hash__in={grant.key_hash for grant in by_company}, is_active=True
        ).values_list("key_hash", flat=True)
    )
    for grant in by_company:
        if grant.key_hash not in still_active:
            refusals[grant] = CLOSE_UNAUTHENTICATED
    return refusals


def _session_user(grant: Grant):
    """The session's user if the session still exists and still logs that user in."""
    data = import_module(settings.SESSION_ENGINE).SessionStore(grant.session_key).load()
    if str(data.get(SESSION_KEY)) != str(grant.user_id) or BACKEND_SESSION_KEY not in data:
        return None
    user = get_user_model().objects.filter(pk=grant.user_id, is_active=True).first()
    if user is None:
        return None
    # As django.contrib.auth.get_user: a password change logs the other sessions out.
    if not constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return None
    return user


def session_grant_refusal(grant: Grant) -> int | None:
    """The close code a new connection of this supervisor would get now; None: fine."""
    user = _session_user(grant)
    if user is None:
        return CLOSE_UNAUTHENTICATED
    if not companies_for(user).filter(pk=grant.company_id).exists():
        # Deleting the user can commit between the two reads: gone by now is 4401, not 4404.
        return CLOSE_UNAUTHENTICATED if _session_user(grant) is None else CLOSE_UNKNOWN_COMPANY
    return None


def grant_refusals(grants: Iterable[Grant]) -> dict[Grant, int]:
    """Which open connections may not go on: {grant: the code to close them with}.

    One check for every socket of a process: sockets sharing a key (a wallboard's hundreds) share
    one grant, and all API-key grants take three queries together; sessions are checked one by one.
    """
    unique = set(grants)
    refusals = _key_grant_refusals([grant for grant in unique if grant.key_hash is not None])
    for grant in unique:
        if grant.key_hash is None and (code := session_grant_refusal(grant)) is not None:
            refusals[grant] = code
    return refusals
