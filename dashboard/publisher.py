"""The listener's publisher: what the PBX changed, sent to the companies' dashboard streams.

pbx_listen and run_demo hand it to the listener (pbx/live/listener.py), which knows only the
Publisher protocol: live state never imports the dashboard.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dashboard import broadcast
from dashboard.sender import LoopThread, sending_on
from pbx.directory.pbxes import pbx_address
from pbx.live.listener import Listener, ListenerSettings
from pbx.live.state_tables import LiveChanges
from pbx.models import DEFAULT_PBX, Company, on_pbx


class DashboardPublisher:
    """Publishes to the companies' dashboard groups on the channel layer.

    Every send runs on one event loop of its own thread, kept for the life of the listener:
    `async_to_sync` would start an event loop per batch, and channels-redis a new connection
    for each. The database is read on the thread that publishes: a listener's for its users,
    the queue updates' for queue figures (pbx/live/queue_updates.py)."""

    def __init__(self) -> None:
        self._sends = LoopThread("listener-publisher")

    def changes(self, changes: LiveChanges) -> None:
        with sending_on(self._sends.loop):
            broadcast.publish_users(changes.user_ids, rows=changes.rows)
            broadcast.publish_queues(changes.queue_ids)

    def resynced(self, pbx: str, company_ids: set[int]) -> None:
        everyone = Company.objects.filter(on_pbx(pbx)).values_list("pk", flat=True)
        with sending_on(self._sends.loop):
            for company_id in sorted(company_ids or everyone):
                broadcast.publish_snapshot(company_id)

    def connection(self, pbx: str, connected: bool) -> None:
        with sending_on(self._sends.loop):
            broadcast.set_pbx_connected(pbx, connected)


def listener_for(pbx: str = DEFAULT_PBX, **overrides: Any) -> Listener:
    """The listener of one PBX for `manage.py pbx_listen`: AMI to that PBX (its address read
    again at each connect, so a secret set later is picked up), publishing to the dashboards.
    `settings` (ListenerSettings) may be given; its name is replaced by `pbx`."""
    from pbx.gateway.ami import AmiGateway

    if "publisher" not in overrides:
        overrides["publisher"] = DashboardPublisher()
    overrides["settings"] = replace(overrides.get("settings") or ListenerSettings(), name=pbx)
    return Listener(gateway_factory=lambda: AmiGateway.for_address(pbx_address(pbx)), **overrides)
