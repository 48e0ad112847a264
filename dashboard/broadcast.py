"""The one publishing API: numbered, buffered messages to each company's dashboard group."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.utils import timezone

from dashboard.payloads import Message, PbxConnectionPayload
from dashboard.pbx_link import PBX_STATE_KEY
from pbx.models import Company

BUFFER_SIZE = 1000
# Messages are stored in chunks so a publish rewrites a small list and the cache holds few keys.
CHUNK_SIZE = 50
BUFFER_TIMEOUT = 24 * 3600
GROUP_MESSAGE_TYPE = "dashboard.message"

MESSAGE_TYPES: frozenset[str] = frozenset(
    {"snapshot", "user.status", "queue.update", "calls.hourly", "pbx.gateway.connection"}
)

# Numbering, buffering and sending happen under one lock, so the threads of one process (the
# listener's callbacks) send in seq order; across processes clients detect and heal any reordering.
_publish_lock = threading.Lock()


def group_name(company_id: int) -> str:
    """The channel-layer group of one company's dashboards."""
    return f"dashboard.company.{company_id}"


def _seq_key(company_id: int) -> str:
    return f"dashboard:{company_id}:seq"


def _chunk_key(company_id: int, chunk: int) -> str:
    return f"dashboard:{company_id}:chunk:{chunk}"


def current_seq(company_id: int) -> int:
    """The sequence number of the company's latest message (0 before any)."""
    return int(cache.get(_seq_key(company_id)) or 0)


def _next_seq(company_id: int) -> int:
    # Counting starts from the clock in microseconds, so a cache that lost the counter
    # (restart, eviction) never hands out a number a client has already seen.
    cache.add(_seq_key(company_id), time.time_ns() // 1000, timeout=None)
    try:
        return cache.incr(_seq_key(company_id))
    except ValueError:  # evicted between add and incr
        cache.add(_seq_key(company_id), time.time_ns() // 1000, timeout=None)
        return cache.incr(_seq_key(company_id))


def _store(company_id: int, message: Message) -> None:
    seq = message["seq"]
    chunk = seq // CHUNK_SIZE
    key = _chunk_key(company_id, chunk)
    stored = cache.get(key) or []
    stored.append(message)
    cache.set(key, stored, timeout=BUFFER_TIMEOUT)
    if seq % CHUNK_SIZE == 0:
        cache.delete(_chunk_key(company_id, chunk - BUFFER_SIZE // CHUNK_SIZE - 1))


def messages_since(company_id: int, since: int) -> list[Message] | None:
    """Every message after `since`, in order; None when any of them is no longer buffered."""
    last = current_seq(company_id)
    if since > last or since < last - BUFFER_SIZE or last == 0:
        return None
    if since == last:
        return []
    keys = [
        _chunk_key(company_id, c) for c in range((since + 1) // CHUNK_SIZE, last // CHUNK_SIZE + 1)
    ]
    found = {
        message["seq"]: message
        for chunk in cache.get_many(keys).values()
        for message in chunk
        if since < message["seq"] <= last
    }
    # A message lost between two publishers (or to eviction) must not become a silent gap.
    if len(found) != last - since:
        return None
    return [found[seq] for seq in range(since + 1, last + 1)]


def publish(company_id: int, message_type: str, payload: dict) -> int:
    """Numbers, buffers and sends one message to the company's dashboards; returns its seq.

    Synchronous: call it from sync code on any thread (the listener's callbacks, services,
    management commands). From async code, wrap it in `sync_to_async`.
    """
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown dashboard message type {message_type!r}")
    layer = get_channel_layer()
    with _publish_lock:
        seq = _next_seq(company_id)
        message: Message = {
            "type": message_type,
            "seq": seq,
            "company": company_id,
            "sent_at": timezone.now().isoformat(),
            "payload": payload,
        }
        _store(company_id, message)
        if layer is not None:
            # Encoded once here, not once per socket: every socket sends this very text.
            async_to_sync(layer.group_send)(
                group_name(company_id),
                {"type": GROUP_MESSAGE_TYPE, "seq": seq, "text": json.dumps(message)},
            )
    return seq


def set_pbx_connected(connected: bool) -> None:
    """Records the PBX connection state and tells every company's dashboards when it changes."""
    previous = cache.get(PBX_STATE_KEY)
    if previous is not None and previous["connected"] == connected:
        return
    state: PbxConnectionPayload = {"connected": connected, "since": timezone.now().isoformat()}
    cache.set(PBX_STATE_KEY, state, timeout=None)
    for company_id in Company.objects.values_list("pk", flat=True):
        publish(company_id, "pbx.gateway.connection", dict(state))


def publish_users(user_ids: Iterable[int]) -> list[int]:
    """Publishes the current `user.status` row of each of these PBX users; returns the seqs."""
    from dashboard.selectors import user_rows_for

    return [
        publish(company_id, "user.status", dict(row))
        for company_id, row in user_rows_for(user_ids=user_ids)
    ]


def publish_queues(queue_ids: Iterable[int]) -> list[int]:
    """Publishes the `queue.update` figures of the groups holding these queues; returns the seqs."""
    from dashboard.selectors import queue_groups_for

    return [
        publish(company_id, "queue.update", dict(payload))
        for company_id, payload in queue_groups_for(queue_ids=queue_ids)
    ]


def publish_snapshot(company_id: int) -> int:
    """Publishes a full `snapshot`, e.g. after the listener reconnected and resynchronised."""
    from dashboard.selectors import company_snapshot

    company = Company.objects.get(pk=company_id)
    return publish(company_id, "snapshot", dict(company_snapshot(company=company)))
