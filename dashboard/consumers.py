"""The dashboard websocket: a snapshot, then every published message of one company, resumable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import Http404
from django.utils import timezone

from dashboard.access import (
    CLOSE_FORBIDDEN_ORIGIN,
    CLOSE_TOO_MANY_FAILURES,
    CLOSE_UNAUTHENTICATED,
    CLOSE_UNKNOWN_COMPANY,
    Grant,
    Refused,
    api_key_for,
    company_for_key,
    grant_refusal,
    origin_allowed,
    query_param,
    raw_api_key,
    scope_header,
)
from dashboard.broadcast import Message, current_seq, group_name, messages_since
from dashboard.selectors import company_for, company_snapshot
from pbx.models import Company
from swanproject.channel_layer import REDIS_ERRORS

__all__ = [
    "CLOSE_FORBIDDEN_ORIGIN",
    "CLOSE_TOO_MANY_FAILURES",
    "CLOSE_UNAUTHENTICATED",
    "CLOSE_UNKNOWN_COMPANY",
    "DashboardConsumer",
]

logger = logging.getLogger("swan.dashboard")

# A sequence number as we hand them out (microseconds, 16 digits today); ASCII digits only,
# since str.isdigit() takes "٣" and int() refuses 5,000 digits. Anything else counts as absent.
_SEQ = re.compile(r"[0-9]{1,18}")
# After the handshake: Redis stayed away; reconnect with `?since=<last seq>`. (daphne's autobahn
# sends only 1000 or 3000-4999, so RFC 6455's 1013 "try again later" cannot be used.)
CLOSE_UNAVAILABLE = 4503


def _session_company(user, slug: str) -> Company:
    try:
        return company_for(user, slug=slug)
    except Http404 as exc:
        raise Refused(CLOSE_UNKNOWN_COMPANY) from exc


def _key_company(raw_key: str, slug: str, address: str | None) -> tuple[Company, Grant]:
    key = api_key_for(raw_key, address=address)
    company = company_for_key(key, slug=slug)
    if company is None:
        raise Refused(CLOSE_UNKNOWN_COMPANY)
    return company, Grant(company_id=company.pk, key_hash=key.key_hash, address=address)


def _snapshot_message(company: Company) -> Message:
    # The number is read before the state: a change racing with it arrives again afterwards.
    seq = current_seq(company.pk)
    payload = company_snapshot(company=company)
    return {
        "type": "snapshot",
        "seq": seq,
        "company": company.pk,
        "sent_at": timezone.now().isoformat(),
        "payload": dict(payload),
    }


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/dashboard/<slug>/`: supervisors by session, programs by API key."""

    group: str | None = None
    company: Company | None = None
    last_seq: int = 0
    grant: Grant | None = None
    revalidation: asyncio.Task | None = None

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        raw_key = raw_api_key(self.scope)
        if not origin_allowed(self.scope, allow_missing=raw_key is not None):
            logger.warning("dashboard origin refused origin=%s", scope_header(self.scope, "origin"))
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        try:
            company, self.grant = await self._authorised_company(slug, raw_key)
        except Refused as refused:
            await self.close(code=refused.code)
            return

        self.company = company
        self.group = group_name(company.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.revalidation = asyncio.create_task(self._revalidate())
        await self._start_stream(company)

    async def _authorised_company(self, slug: str, raw_key: str | None) -> tuple[Company, Grant]:
        if raw_key is not None:
            client = self.scope.get("client") or (None, None)
            return await database_sync_to_async(_key_company)(raw_key, slug, client[0])
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            raise Refused(CLOSE_UNAUTHENTICATED)
        company = await database_sync_to_async(_session_company)(user, slug)
        session = self.scope.get("session")
        return company, Grant(
            company_id=company.pk,
            user_id=user.pk,
            session_key=session.session_key if session is not None else None,
        )

    async def _revalidate(self) -> None:
        """Closes the socket, with the code a new connection would get, once its grant lapses."""
        interval = settings.DASHBOARD_REVALIDATE_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                code = await database_sync_to_async(grant_refusal)(self.grant)
            except Exception as exc:  # the database is down: keep streaming, check again later
                logger.warning("dashboard recheck failed error=%s", type(exc).__name__)
                continue
            if code is not None:
                logger.info(
                    "dashboard connection revoked company=%s code=%s", self.grant.company_id, code
                )
                await self.close(code=code)
                return

    async def _start_stream(self, company: Company) -> None:
        since = self._since()
        missed = None
        if since is not None:
            missed = await sync_to_async(messages_since)(company.pk, since)
        if missed is None:
            snapshot = await database_sync_to_async(_snapshot_message)(company)
            self.last_seq = snapshot["seq"]
            await self.send_json(snapshot)
            return
        self.last_seq = since
        for message in missed:
            await self._forward(message)
        await self.send_json({"type": "resumed", "since": since, "last": self.last_seq})

    def _since(self) -> int | None:
        """`?since=`, or None (a fresh snapshot) when it is absent or no sequence number."""
        value = query_param(self.scope, "since")
        if value is None or not _SEQ.fullmatch(value):
            return None
        return int(value)

    async def _forward(self, message: Message) -> None:
        # The stream may repeat what the snapshot or the resumed backlog already carried.
        if message["seq"] <= self.last_seq:
            return
        self.last_seq = message["seq"]
        await self.send_json(message)

    async def dispatch(self, message: dict) -> None:
        # channels closes stale DB connections (a thread hop) before every message; the pushes
        # touch no database, and with 200 clients that hop was most of the p99 latency.
        if message.get("type") == "dashboard.message":
            await self.dashboard_message(message)
            return
        await super().dispatch(message)

    async def dashboard_message(self, event: dict) -> None:
        await self._forward(event["message"])

    async def channel_layer_recovered(self, event: dict) -> None:
        """Redis was away: rejoin the group (Redis may have lost it) and send what was missed."""
        snapshot = None
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            missed = await sync_to_async(messages_since)(self.company.pk, self.last_seq)
            if missed is None:
                snapshot = await database_sync_to_async(_snapshot_message)(self.company)
        except REDIS_ERRORS as exc:
            await self._give_up(exc)
            return
        if snapshot is not None:  # something published meanwhile is lost: start afresh
            self.last_seq = max(self.last_seq, snapshot["seq"])
            await self.send_json(snapshot)
        for message in missed or ():
            await self._forward(message)
        logger.info("dashboard stream recovered company=%s seq=%s", self.company.pk, self.last_seq)

    async def channel_layer_unavailable(self, event: dict) -> None:
        await self._give_up(None)

    async def _give_up(self, exc: Exception | None) -> None:
        logger.warning(
            "dashboard stream closed, Redis unavailable company=%s seq=%s error=%s",
            self.company.pk,
            self.last_seq,
            type(exc).__name__ if exc else "timeout",
        )
        await self.close(code=CLOSE_UNAVAILABLE)

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "seq": self.last_seq})

    async def disconnect(self, code: int) -> None:
        if self.revalidation is not None:
            self.revalidation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.revalidation
        if self.group is None:
            return
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        except REDIS_ERRORS as exc:  # the membership expires by itself (group_expiry)
            logger.warning("dashboard group discard failed group=%s error=%s", self.group, exc)
