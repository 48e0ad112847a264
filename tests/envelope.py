"""Assertions on SWAN's envelope, shared by every test of an HTTP answer."""

from __future__ import annotations

import json
from typing import Any

KEYS = {"error", "error-msg", "result"}


def _body(response, status: int) -> dict[str, Any] | None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    if response.request["REQUEST_METHOD"] == "HEAD":
        return None
    body = json.loads(response.content)
    assert set(body) == KEYS, body
    return body


def result(response, status: int = 200) -> Any:
    """The `result` of a successful answer with this status (error false, error-msg null)."""
    body = _body(response, status)
    if body is None:
        return None
    assert body["error"] is False, body
    assert body["error-msg"] is None, body
    return body["result"]


def error(response, status: int, *, result: Any = None) -> str:
    """The `error-msg` of an error answer with this status; `result` is what it must carry."""
    body = _body(response, status)
    if body is None:
        return ""
    assert body["error"] is True, body
    assert isinstance(body["error-msg"], str), body
    assert body["error-msg"], body
    assert body["result"] == result, body
    return body["error-msg"]
