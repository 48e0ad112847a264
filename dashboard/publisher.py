"""The listener's publisher: what the PBX changed, sent to the companies' dashboard streams.

pbx_listen and run_demo hand it to the listener (pbx/live/listener.py), which knows only the
Publisher protocol: live state never imports the dashboard.
"""

from __future__ import annotations

from typing import Any

from dashboard import broadcast
from dashboard.sender import LoopThread, sending_on
from pbx.live.listener import Listener
from pbx.live.state_tables import LiveChanges
from pbx.models import Company


class DashboardPublisher:
    """Publishes to the companies' dashboard groups on the channel layer.

    Every send runs on one event loop of its own thread, kept for the life of the listener:
    `async_to_sync` would start an event loop per batch, and channels-redis a new connection
    for each. The database is still read on the listener's thread."""

    def __init__(self) -> None:
        self._sends = LoopThread("listener-publisher")

    def changes(self, changes: LiveChanges) -> None:
        with sending_on(self._sends.loop):
            broadcast.publish_users(changes.user_ids, rows=changes.rows)
            broadcast.publish_queues(changes.queue_ids)

    def resynced(self, company_ids: set[int]) -> None:
        with sending_on(self._sends.loop):
            for company_id in sorted(company_ids or Company.objects.values_list("pk", flat=True)):
                broadcast.publish_snapshot(company_id)

    def connection(self, connected: bool) -> None:
        with sending_on(self._sends.loop):
            broadcast.set_pbx_connected(connected)


def listener_for_settings(**overrides: Any) -> Listener:
    """The listener of `manage.py pbx_listen`: the AMI gateway of the settings, publishing to
    the dashboards."""
    from pbx.gateway.ami import AmiGateway

    if "publisher" not in overrides:
        overrides["publisher"] = DashboardPublisher()
    return Listener(gateway_factory=AmiGateway.from_settings, **overrides)
