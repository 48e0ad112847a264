"""Websocket routes of the supervisor dashboard."""

from __future__ import annotations

websocket_urlpatterns: list = []
