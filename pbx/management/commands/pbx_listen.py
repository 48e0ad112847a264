"""Runs the PBX listeners, one per PBX, until SIGTERM or Ctrl+C."""

from __future__ import annotations

import signal
import threading
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError

from dashboard.publisher import DashboardPublisher, listener_for
from pbx.directory.pbxes import known_pbx_keys
from pbx.live.listener import ListenerSettings
from pbx.live.pool import ListenerPool


class Command(BaseCommand):
    help = (
        "Listen to the PBXes over AMI and keep live state: one listener per PBX in this "
        "process, one active listener per PBX across processes (a standby takes over)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--pbx",
            action="append",
            dest="pbx_names",
            metavar="NAME",
            help="Serve this PBX only (repeat for several; 'default' is the settings' AMI_*). "
            "Default: every PBX defined, and the settings' one while a company is on it.",
        )
        parser.add_argument("--name", dest="legacy_name", help="Same as --pbx (older name).")
        parser.add_argument("--reconcile-seconds", type=float, default=300.0)
        parser.add_argument("--ping-seconds", type=float, default=10.0)
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=ListenerSettings.lease_seconds,
            help="Lease length; renewed every quarter of it, a standby takes over once it expires.",
        )
        parser.add_argument(
            "--batch-wait",
            type=float,
            default=ListenerSettings.batch_wait,
            help="Seconds to wait for more events after one arrives, to write them as one batch "
            "(delays a lone event by as much; a busy listener batches by itself).",
        )
        parser.add_argument(
            "--refresh-seconds",
            type=float,
            default=30.0,
            help="How often the PBXes are read again, to serve one added or drop one deleted.",
        )

    def handle(
        self,
        *args,
        pbx_names: list[str] | None,
        legacy_name: str | None,
        reconcile_seconds: float,
        ping_seconds: float,
        lease_seconds: float,
        refresh_seconds: float,
        batch_wait: float,
        **options,
    ):
        if not 0 <= batch_wait <= 1:
            raise CommandError("--batch-wait: 0 to 1 second.")
        names = list(dict.fromkeys([*(pbx_names or ()), *([legacy_name] if legacy_name else [])]))
        unknown = sorted(set(names) - known_pbx_keys())
        if unknown:
            raise CommandError(f"No PBX named {', '.join(unknown)} (see the admin's PBXes).")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        base = ListenerSettings(
            reconcile_seconds=reconcile_seconds,
            ping_seconds=ping_seconds,
            lease_seconds=lease_seconds,
            batch_wait=batch_wait,
        )
        publisher = DashboardPublisher()  # one event loop for every PBX's sends
        pool = ListenerPool(
            make_listener=lambda pbx: listener_for(
                pbx, publisher=publisher, settings=replace(base, name=pbx)
            ),
            pbx_names=names or None,
            refresh_seconds=refresh_seconds,
        )
        pool.run(stop)
