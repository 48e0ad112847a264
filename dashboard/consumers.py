"""The dashboard websocket: a snapshot, then every published message of one company, resumable."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.http import Http404

from dashboard import dbpool
from dashboard.access import (
    CLOSE_FORBIDDEN_ORIGIN,
    CLOSE_TOO_MANY_FAILURES,
    CLOSE_UNAUTHENTICATED,
    CLOSE_UNKNOWN_COMPANY,
    Grant,
    StreamRefused,
    api_key_for,
    company_for_key,
    origin_allowed,
    query_param,
    raw_api_key,
    scope_header,
)
from dashboard.broadcast import current_seq, group_name, messages_since
from dashboard.catchup import catchup
from dashboard.payloads import Message
from dashboard.revalidation import revalidator
from dashboard.snapshots import snapshot_text
from dashboard.supervision import company_for
from pbx.models import Company, hash_api_key
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
# Waits between tries of a buffer read (or a snapshot) that Redis failed, the last one repeated
# until the channel layer's `recovery_limit` (60 s unless configured) has passed.
REDIS_RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)


class _RedisAway(Exception):
    """Redis failed a read for longer than the recovery limit: the stream closes with 4503."""


def _session_company(user, slug: str) -> Company:
    try:
        return company_for(user, slug=slug)
    except Http404 as exc:
        raise StreamRefused(CLOSE_UNKNOWN_COMPANY) from exc


def _key_company(raw_key: str, slug: str, address: str | None) -> tuple[Company, Grant]:
    key = api_key_for(raw_key, address=address)
    company = company_for_key(key, slug=slug)
    if company is None:
        raise StreamRefused(CLOSE_UNKNOWN_COMPANY)
    return company, Grant(company_id=company.pk, key_hash=key.key_hash, address=address)


class _Failed:
    """A source of messages raised: the consumer raises it too, as channels would."""

    def __init__(self, error: Exception):
        self.error = error


async def _pump(source: Callable[[], Awaitable[dict]], inbox: asyncio.Queue) -> None:
    try:
        while True:
            await inbox.put(await source())
    except Exception as exc:
        await inbox.put(_Failed(exc))


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/dashboard/<slug>/`: supervisors by session, programs by API key."""

    group: str | None = None
    company: Company | None = None
    last_seq: int = 0
    grant: Grant | None = None
    _inbox: asyncio.Queue | None = None

    async def __call__(self, scope, receive, send) -> None:
        """channels' `AsyncConsumer.__call__`, with a leaner wait for the next message.

        channels makes a task and an `asyncio.wait` per message to watch the client and the
        channel layer at once: ~15% of daphne's time per message with 500 sockets. Here one
        long-lived task per source feeds a small queue, and messages are handled in order.
        """
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        inbox: asyncio.Queue = asyncio.Queue(maxsize=16)
        self._inbox = inbox
        pumps = [asyncio.create_task(_pump(source, inbox)) for source in sources]
        try:
            while True:
                message = await inbox.get()
                if isinstance(message, _Failed):
                    raise message.error
                await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        raw_key = raw_api_key(self.scope)
        if not origin_allowed(self.scope, allow_missing=raw_key is not None):
            logger.warning("dashboard origin refused origin=%s", scope_header(self.scope, "origin"))
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        try:
            company, self.grant = await self._authorised_company(slug, raw_key)
        except StreamRefused as refused:
            await self.close(code=refused.code)
            return

        self.company = company
        try:
            await self.channel_layer.group_add(group_name(company.pk), self.channel_name)
        except REDIS_ERRORS as exc:
            await self._give_up(exc)
            return
        self.group = group_name(company.pk)
        await self.accept()
        revalidator().add(self, self.grant, self._revoked)
        try:
            await self._start_stream(company)
        except _RedisAway as away:
            await self._give_up(away.__cause__)
            return
        catchup().add(self)

    async def _authorised_company(self, slug: str, raw_key: str | None) -> tuple[Company, Grant]:
        if raw_key is not None:
            client = self.scope.get("client") or (None, None)
            return await dbpool.run_shared(
                ("key", hash_api_key(raw_key), slug, client[0]),
                _key_company,
                raw_key,
                slug,
                client[0],
            )
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            raise StreamRefused(CLOSE_UNAUTHENTICATED)
        company = await dbpool.run(_session_company, user, slug)
        session = self.scope.get("session")
        return company, Grant(
            company_id=company.pk,
            user_id=user.pk,
            session_key=session.session_key if session is not None else None,
        )

    async def _revoked(self, code: int) -> None:
        await self.close(code=code)

    async def _start_stream(self, company: Company) -> None:
        since = self._since()
        missed = None
        if since is not None:
            missed = await self._retrying(messages_since, company.pk, since)
        if missed is None:
            await self._send_snapshot()
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

    async def _send_snapshot(self) -> None:
        """A fresh `snapshot`, shared with the sockets of the company connecting meanwhile."""
        # The number is read after joining the group and before the state: a change racing
        # with it arrives again afterwards.
        seq = await self._retrying(current_seq, self.company.pk)
        text = await self._retrying_async(snapshot_text, self.company, seq)
        self.last_seq = max(self.last_seq, seq)
        await self.send(text_data=text)

    async def _forward(self, message: Message) -> None:
        await self._forward_text(message["seq"], json.dumps(message))

    async def _forward_text(self, seq: int, text: str) -> None:
        # The stream may repeat what the snapshot or the resumed backlog already carried.
        if seq <= self.last_seq:
            return
        # (0: nothing had been published; the first number comes from the clock.)
        if self.last_seq and seq > self.last_seq + 1 and await self._fill_gap(seq):
            return
        self.last_seq = seq
        await self.send(text_data=text)

    async def _fill_gap(self, seq: int) -> bool:
        """Messages before `seq` never came (the channel layer dropped them): send them first.

        True when what was sent already covers `seq` (from the buffer, or a fresh snapshot).
        """
        missed = await self._retrying(messages_since, self.company.pk, self.last_seq)
        if missed is None:
            logger.warning(
                "dashboard stream gap, snapshot sent company=%s after=%s got=%s",
                self.company.pk,
                self.last_seq,
                seq,
            )
            await self._send_snapshot()
        for message in missed or ():
            if message["seq"] > self.last_seq:
                self.last_seq = message["seq"]
                await self.send(text_data=json.dumps(message))
        return self.last_seq >= seq

    async def dispatch(self, message: dict) -> None:
        # channels closes stale DB connections (a thread hop to asgiref's one sync thread)
        # before every message. This consumer's database work runs on dbpool's threads, which
        # look after their own connections, so no message here needs that hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except _RedisAway as away:
            await self._give_up(away.__cause__)

    async def dashboard_message(self, event: dict) -> None:
        texts = event.get("texts")
        if texts is not None:  # several messages of one batch, in order (broadcast.group_event)
            for seq, text in texts:
                await self._forward_text(seq, text)
            return
        text = event.get("text")
        if text is None:  # a publisher of the previous release (a rolling upgrade)
            await self._forward(event["message"])
            return
        await self._forward_text(event["seq"], text)

    @property
    def company_id(self) -> int:
        return self.company.pk

    def nudge(self, seq: int) -> None:
        """The company is at `seq` and this socket got nothing for a while: catch up, in turn."""
        # A full inbox means messages are flowing: the next one shows any gap.
        with contextlib.suppress(asyncio.QueueFull):
            self._inbox.put_nowait({"type": "dashboard.catch_up", "seq": seq})

    async def dashboard_catch_up(self, event: dict) -> None:
        if event["seq"] > self.last_seq:
            await self._fill_gap(event["seq"])

    async def channel_layer_recovered(self, event: dict) -> None:
        """Redis was away: rejoin the group (Redis may have lost it) and send what was missed."""
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            missed = await dbpool.run(messages_since, self.company.pk, self.last_seq)
            if missed is None:  # something published meanwhile is lost: start afresh
                await self._send_snapshot()
        except REDIS_ERRORS as exc:
            await self._give_up(exc)
            return
        for message in missed or ():
            await self._forward(message)
        logger.info("dashboard stream recovered company=%s seq=%s", self.company.pk, self.last_seq)

    async def _retrying(self, func: Callable, *args):
        """`func(*args)` on dbpool's threads; tried again while Redis fails it (a timeout, a
        dropped connection), so that a hiccup never ends the stream with an error (1011)."""
        return await self._retrying_async(dbpool.run, func, *args)

    async def _retrying_async(self, func: Callable[..., Awaitable], *args):
        limit = getattr(self.channel_layer, "recovery_limit", 60.0)
        started = time.monotonic()
        delays = itertools.chain(REDIS_RETRY_DELAYS, itertools.repeat(REDIS_RETRY_DELAYS[-1]))
        for attempt, delay in enumerate(delays, start=1):
            try:
                return await func(*args)
            except REDIS_ERRORS as exc:
                if time.monotonic() - started + delay > limit:
                    raise _RedisAway() from exc
                logger.warning(
                    "dashboard read failed, retrying company=%s attempt=%d error=%s",
                    self.company.pk if self.company else None,
                    attempt,
                    type(exc).__name__,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

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

    async def websocket_disconnect(self, message: dict) -> None:
        # As channels', without its closing of DB connections on asgiref's sync thread (above).
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        revalidator().discard(self)
        catchup().discard(self)
        if self.group is None:
            return
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        except REDIS_ERRORS as exc:  # the membership expires by itself (group_expiry)
            logger.warning("dashboard group discard failed group=%s error=%s", self.group, exc)
