"""Runs the PBX listener until SIGTERM or Ctrl+C."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from dashboard.publisher import listener_for_settings
from pbx.live.listener import ListenerSettings


class Command(BaseCommand):
    help = "Listen to the PBX over AMI and keep live state (one active listener per PBX)."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="default", help="PBX name: one active listener each.")
        parser.add_argument("--reconcile-seconds", type=float, default=300.0)
        parser.add_argument("--ping-seconds", type=float, default=10.0)
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=ListenerSettings.lease_seconds,
            help="Lease length; renewed every quarter of it, a standby takes over once it expires.",
        )

    def handle(
        self,
        *args,
        name: str,
        reconcile_seconds: float,
        ping_seconds: float,
        lease_seconds: float,
        **options,
    ):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        listener = listener_for_settings(
            settings=ListenerSettings(
                name=name,
                reconcile_seconds=reconcile_seconds,
                ping_seconds=ping_seconds,
                lease_seconds=lease_seconds,
            )
        )
        listener.run(stop)
