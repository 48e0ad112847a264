"""One `snapshot` per company, built once and shared by the sockets that connect together.

A snapshot costs a dozen queries and ~40 KB of JSON; 200 dashboards reconnecting after a restart
built 200 identical ones. A socket reads the company's sequence number after joining its group;
a snapshot built at that same number (its state read after the number) is exactly what a fresh
build would give it, except for figures that change without a message (today's history, fed by
ingest), hence the short `SHARE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from django.utils import timezone

from dashboard import dbpool
from dashboard.payloads import Message
from dashboard.selectors import snapshot_payload
from pbx.models import Company

SHARE_SECONDS = 2.0


@dataclass
class _Entry:
    seq: int
    started: float
    build: asyncio.Task[str]


# Per event loop: a task belongs to the loop that made it (tests run one loop each).
_entries: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Entry]] = WeakKeyDictionary()


def _snapshot_text(company: Company, seq: int) -> str:
    message: Message = {
        "type": "snapshot",
        "seq": seq,
        "company": company.pk,
        "sent_at": timezone.now().isoformat(),
        "payload": dict(snapshot_payload(company=company)),
    }
    return json.dumps(message)


async def snapshot_text(company: Company, seq: int) -> str:
    """The JSON text of a `snapshot` at `seq`: the company's sequence number, read just before."""
    loop = asyncio.get_running_loop()
    entries = _entries.setdefault(loop, {})
    entry = entries.get(company.pk)
    now = time.monotonic()
    if entry is None or entry.seq != seq or now - entry.started > SHARE_SECONDS:
        entry = _Entry(seq, now, loop.create_task(dbpool.run(_snapshot_text, company, seq)))
        entries[company.pk] = entry
        entry.build.add_done_callback(functools.partial(_forget_failed, entries, company.pk, entry))
    # One waiter going away (its client left) must not cancel the others' snapshot.
    return await asyncio.shield(entry.build)


def _forget_failed(
    entries: dict[int, _Entry], company_id: int, entry: _Entry, build: asyncio.Task
) -> None:
    if (build.cancelled() or build.exception()) and entries.get(company_id) is entry:
        del entries[company_id]
