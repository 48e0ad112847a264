"""The one publishing API: numbered, buffered messages to each company's dashboard group."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping

from channels.layers import get_channel_layer
from django.core.cache import cache
from django.core.cache.backends.base import default_key_func
from django.utils import timezone

from dashboard import sender
from dashboard.payloads import Message, PbxConnectionPayload
from dashboard.pbx_link import pbx_state_key
from pbx.live.presence import PresenceRow
from pbx.models import Company, on_pbx
from swanproject.cache_scripts import cache_script, loads, raw_get_many, redis_cache

BUFFER_SIZE = 1000
# Each message is a key of its own (a publish writes one message, reads none); every
# PRUNE_EVERY messages, the ones that just fell out of the buffer are deleted in one call.
PRUNE_EVERY = 50
BUFFER_TIMEOUT = 24 * 3600
GROUP_MESSAGE_TYPE = "dashboard.message"

MESSAGE_TYPES: frozenset[str] = frozenset(
    {"snapshot", "user.status", "queue.update", "calls.hourly", "pbx.gateway.connection"}
)

# Numbering, buffering and sending happen under a lock per company, so the threads of one process
# (the listeners of several PBXes, services) send each company's messages in seq order and never
# wait for another company's; across processes clients detect and heal any reordering.
_locks: dict[int, threading.Lock] = {}
_locks_lock = threading.Lock()


def _company_lock(company_id: int) -> threading.Lock:
    lock = _locks.get(company_id)
    if lock is None:
        with _locks_lock:
            lock = _locks.setdefault(company_id, threading.Lock())
    return lock


def group_name(company_id: int) -> str:
    """The channel-layer group of one company's dashboards."""
    return f"dashboard.company.{company_id}"


def _seq_key(company_id: int) -> str:
    return f"dashboard:{company_id}:seq"


def _message_key(company_id: int, seq: int | str) -> str:
    return f"dashboard:{company_id}:message:{seq}"


def current_seq(company_id: int) -> int:
    """The sequence number of the company's latest message (0 before any)."""
    return int(cache.get(_seq_key(company_id)) or 0)


def latest_seqs(company_ids: Iterable[int]) -> dict[int, int]:
    """current_seq of each of these companies, in one cache read."""
    ids = list(company_ids)
    found = cache.get_many([_seq_key(company_id) for company_id in ids])
    return {company_id: int(found.get(_seq_key(company_id)) or 0) for company_id in ids}


# On Redis, a batch is numbered, buffered and pruned in one script: a client built per cache
# call, EXISTS before INCRBY, pickling, MSET and an EXPIRE per message were most of a publish's
# CPU in the listener (benchmarks/README.md). Each message is buffered as its JSON text, written
# by the script around the number it gets (Lua's own number-to-string would write 1.7e+15).
# The fallen keys are deleted one by one: unpack() of thousands (a resync of a large company)
# passes Lua's stack limit.
_PUBLISH_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[2]) end
local count = tonumber(ARGV[1])
local last = redis.call('INCRBY', KEYS[1], count)
local size, every = tonumber(ARGV[5]), tonumber(ARGV[6])
for i = 1, count do
  local seq = last - count + i
  local number = string.format('%d', seq)
  redis.call('SET', ARGV[3] .. number, ARGV[5 + 2 * i] .. number .. ARGV[6 + 2 * i], 'EX', ARGV[4])
  if seq % every == 0 then
    for old = seq - size - every, seq - size - 1 do
      redis.call('DEL', ARGV[3] .. string.format('%d', old))
    end
  end
end
return last
"""


def _text_around_seq(
    company_id: int, sent_at: str, message_type: str, payload: dict
) -> tuple[str, str]:
    """The message's JSON text before and after its seq: json.dumps of the Message, in parts."""
    return (
        f'{{"type": {json.dumps(message_type)}, "seq": ',
        f', "company": {company_id}, "sent_at": {json.dumps(sent_at)}, '
        f'"payload": {json.dumps(payload)}}}',
    )


def _number_and_store(company_id: int, parts: list[tuple[str, str]]) -> tuple[list[int], list[str]]:
    """Numbers the messages (given as text around their seq) in one increment, buffers their
    texts and, every PRUNE_EVERY numbers, deletes those that fell out; returns the numbers and
    the texts."""
    count = len(parts)
    backend = redis_cache()
    in_one_script = backend is not None and backend.key_func is default_key_func
    if in_one_script:
        # A counter the cache lost (restart, eviction) starts again from the clock (below).
        last = int(
            cache_script(backend, _PUBLISH_SCRIPT)(
                keys=[backend.make_and_validate_key(_seq_key(company_id))],
                args=[
                    count,
                    time.time_ns() // 1000,
                    backend.make_and_validate_key(_message_key(company_id, "")),
                    BUFFER_TIMEOUT,
                    BUFFER_SIZE,
                    PRUNE_EVERY,
                    *(text for pair in parts for text in pair),
                ],
            )
        )
    else:
        last = _increment(_seq_key(company_id), count)
    seqs = list(range(last - count + 1, last + 1))
    texts = [f"{head}{seq}{tail}" for seq, (head, tail) in zip(seqs, parts, strict=True)]
    if not in_one_script:
        _store(company_id, seqs, texts)
    return seqs, texts


def _store(company_id: int, seqs: list[int], texts: list[str]) -> None:
    """What the script does, through Django's cache: buffer, then delete what fell out."""
    cache.set_many(
        {_message_key(company_id, seq): text for seq, text in zip(seqs, texts, strict=True)},
        timeout=BUFFER_TIMEOUT,
    )
    fallen = [
        _message_key(company_id, old)
        for seq in seqs
        if seq % PRUNE_EVERY == 0
        for old in range(seq - BUFFER_SIZE - PRUNE_EVERY, seq - BUFFER_SIZE)
    ]
    if fallen:
        cache.delete_many(fallen)


def _increment(key: str, count: int) -> int:
    for _attempt in range(2):
        try:
            return cache.incr(key, count)
        except ValueError:  # the first message, or the cache lost the counter (or evicted it)
            # Counting starts from the clock in microseconds, so a cache that lost the counter
            # (restart, eviction) never hands out a number a client has already seen.
            cache.add(key, time.time_ns() // 1000, timeout=None)
    return cache.incr(key, count)


def buffered(company_id: int, seqs: Iterable[int]) -> dict[int, Message]:
    """The messages of these numbers still in the buffer, by seq."""
    wanted = list(seqs)
    keys = [_message_key(company_id, seq) for seq in wanted]
    backend = redis_cache()
    if backend is not None:
        values = raw_get_many(backend, keys)  # texts the script wrote are not Django's pickles
    else:
        values = list(map(cache.get_many(keys).get, keys))
    return {
        seq: _message(backend, value)
        for seq, value in zip(wanted, values, strict=True)
        if value is not None
    }


def _message(backend, value) -> Message:
    if isinstance(value, bytes) and not value.startswith(b"{"):
        value = loads(backend, value)  # buffered by an earlier release, pickled
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def messages_since(company_id: int, since: int) -> list[Message] | None:
    """Every message after `since`, in order; None when any of them is no longer buffered."""
    last = current_seq(company_id)
    if since > last or since < last - BUFFER_SIZE or last == 0:
        return None
    if since == last:
        return []
    found = buffered(company_id, range(since + 1, last + 1))
    # A message lost (to eviction, or never stored) must not become a silent gap.
    if len(found) != last - since:
        return None
    return [found[seq] for seq in range(since + 1, last + 1)]


def group_event(seqs: list[int], texts: list[str]) -> dict:
    """The channel-layer event that carries these messages (their seqs and JSON texts) to every
    socket of the group.

    Each text is encoded once, not once per socket: every socket sends this very text.
    Several messages go as one event (`texts`, in order): the channel layer's work is per
    event, and it was a fifth of the listener's time."""
    if len(texts) == 1:
        return {"type": GROUP_MESSAGE_TYPE, "seq": seqs[0], "text": texts[0]}
    return {
        "type": GROUP_MESSAGE_TYPE,
        "seq": seqs[-1],
        "texts": [[seq, text] for seq, text in zip(seqs, texts, strict=True)],
    }


def publish(company_id: int, message_type: str, payload: dict) -> int:
    """Numbers, buffers and sends one message to the company's dashboards; returns its seq.

    Synchronous: call it from sync code on any thread (the listener's callbacks, services,
    management commands). From async code, wrap it in `sync_to_async`.
    """
    return publish_many(company_id, [(message_type, payload)])[0]


def publish_many(company_id: int, items: list[tuple[str, dict]]) -> list[int]:
    """`publish` for several messages of one company, in order: numbered in one increment,
    buffered in one write and sent as one channel-layer event (the listener's batches)."""
    for message_type, _payload in items:
        if message_type not in MESSAGE_TYPES:
            raise ValueError(f"unknown dashboard message type {message_type!r}")
    if not items:
        return []
    layer = get_channel_layer()
    with _company_lock(company_id):
        sent_at = timezone.now().isoformat()
        seqs, texts = _number_and_store(
            company_id,
            [_text_around_seq(company_id, sent_at, kind, payload) for kind, payload in items],
        )
        if layer is not None:
            sender.group_send(layer, group_name(company_id), group_event(seqs, texts))
    return seqs


def set_pbx_connected(pbx: str, connected: bool) -> None:
    """Records a PBX's connection state and tells its companies' dashboards when it changes."""
    key = pbx_state_key(pbx)
    previous = cache.get(key)
    if previous is not None and previous["connected"] == connected:
        return
    state: PbxConnectionPayload = {"connected": connected, "since": timezone.now().isoformat()}
    cache.set(key, state, timeout=None)
    for company_id in Company.objects.filter(on_pbx(pbx)).values_list("pk", flat=True):
        publish(company_id, "pbx.gateway.connection", dict(state))


def publish_users(
    user_ids: Iterable[int], *, rows: dict[int, PresenceRow] | None = None
) -> list[int]:
    """Publishes the current `user.status` row of each of these PBX users; returns the seqs.

    `rows`: their status as the writer read it after its writes (the listener, in its
    transaction); read from the database when it does not hold every one of them."""
    from dashboard.selectors import user_rows_for, user_rows_of

    wanted = set(user_ids)
    if rows is not None and wanted <= rows.keys():
        found = user_rows_of(rows[pk] for pk in wanted)
    else:
        found = user_rows_for(user_ids=wanted)
    return _publish_by_company("user.status", found)


def publish_queues(queue_ids: Iterable[int]) -> list[int]:
    """Publishes the `queue.update` figures of the groups holding these queues; returns the seqs."""
    from dashboard.selectors import queue_groups_for

    return _publish_by_company("queue.update", queue_groups_for(queue_ids=queue_ids))


def _publish_by_company(message_type: str, found: Iterable[tuple[int, Mapping]]) -> list[int]:
    """One message per (company, payload), sent company by company with `publish_many`."""
    by_company: dict[int, list[tuple[str, dict]]] = {}
    for company_id, payload in found:
        by_company.setdefault(company_id, []).append((message_type, dict(payload)))
    return [
        seq for company_id, items in by_company.items() for seq in publish_many(company_id, items)
    ]


def publish_snapshot(company_id: int) -> int:
    """Publishes a full `snapshot`, e.g. after the listener reconnected and resynchronised."""
    from dashboard.selectors import snapshot_payload

    company = Company.objects.get(pk=company_id)
    return publish(company_id, "snapshot", dict(snapshot_payload(company=company)))
