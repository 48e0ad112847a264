"""The client's address behind the TLS proxy: REMOTE_ADDR from X-Forwarded-For, for trusted peers only.

API-key networks, login and API-key lockouts and /metrics read REMOTE_ADDR. gunicorn leaves it
as the proxy's address; daphne's --proxy-headers already rewrites it (then the peer is the
client, not a trusted proxy, and nothing changes here). Only a peer in SWAN_TRUSTED_PROXIES may
say who the client is: anyone else could claim any address.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger("swan.serving")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()
    )


def client_address(peer: str, forwarded_for: str, trusted: tuple[Network, ...]) -> str:
    """The rightmost address of the chain that no trusted proxy vouches for beyond."""
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    address = peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            logger.debug("x-forwarded-for entry unreadable entry=%r peer=%s", hop, peer)
            return address
        address = hop
        if not _is_trusted(hop, trusted):
            return hop
    return address


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


class ForwardedForMiddleware:
    """Sets REMOTE_ADDR to the client's address when the request came through a trusted proxy."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = trusted_networks(settings.SWAN_TRUSTED_PROXIES)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        self._rewrite(request)
        if iscoroutinefunction(self):
            return self._acall(request)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest):
        return await self.get_response(request)

    def _rewrite(self, request: HttpRequest) -> None:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded and self.trusted:
            peer = request.META.get("REMOTE_ADDR", "")
            request.META["REMOTE_ADDR"] = client_address(peer, forwarded, self.trusted)
