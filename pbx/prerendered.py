"""JSON rendered once and kept: the read caches' answers, wrapped in the envelope as they are."""

from __future__ import annotations

import json
from typing import Any


def json_bytes(data: Any) -> bytes:
    """JSON as the envelope writes it: compact, UTF-8, non-ASCII left unescaped."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Prerendered:
    """A successful result already rendered as JSON (json_bytes): the renderer wraps it in the
    envelope without encoding it again. Read caches keep their answers so (pbx/api/read_cache.py)."""

    __slots__ = ("json",)

    def __init__(self, json: bytes):
        self.json = json
