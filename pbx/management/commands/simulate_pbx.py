"""Runs the simulated Asterisk: AMI on TCP, a call centre from the directory, history files."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pbx.directory.pbxes import known_pbx_keys
from pbx.simulator import QUIET, Behaviour, CallCentre, History, SimulatedPbx


class Command(BaseCommand):
    help = "Simulate an Asterisk PBX: AMI on a TCP port, calls into the configured queues."

    def add_arguments(self, parser: CommandParser) -> None:
        var = Path(settings.BASE_DIR) / "var" / "asterisk"
        parser.add_argument("--host", default=settings.AMI_HOST)
        parser.add_argument("--port", type=int, default=settings.AMI_PORT)
        parser.add_argument("--username", default=settings.AMI_USERNAME)
        parser.add_argument("--secret", default=settings.AMI_SECRET)
        parser.add_argument(
            "--call-rate", type=float, default=Behaviour.call_rate, help="New calls per minute."
        )
        parser.add_argument(
            "--speed", type=float, default=1.0, help="Simulated seconds per wall-clock second."
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--queue-log", type=Path, default=var / "queue_log")
        parser.add_argument("--cdr", type=Path, default=var / "cdr-csv" / "Master.csv")
        parser.add_argument(
            "--no-calls", action="store_true", help="No calls or pauses; only answer actions."
        )
        parser.add_argument(
            "--pbx",
            default=None,
            metavar="NAME",
            help="Simulate only this PBX's companies ('default': those on the settings' PBX). "
            "Default: every company. Give its --port and --secret too.",
        )

    def handle(self, *args: object, **options: object) -> None:
        behaviour = (
            QUIET if options["no_calls"] else Behaviour(call_rate=float(options["call_rate"]))
        )
        if float(options["speed"]) <= 0:
            self.stderr.write("--speed must be positive.")
            return
        pbx_name = options["pbx"]
        if pbx_name is not None and pbx_name not in known_pbx_keys():
            raise CommandError(f"No PBX named {pbx_name}.")
        centre = CallCentre.from_directory(
            behaviour=behaviour,
            seed=options["seed"],
            history=History(options["queue_log"], options["cdr"]),
            pbx=None if pbx_name is None else str(pbx_name),
        )
        pbx = SimulatedPbx(
            centre,
            host=str(options["host"]),
            port=int(options["port"]),
            username=str(options["username"]),
            secret=str(options["secret"]),
            speed=float(options["speed"]),
        )
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        pbx.start()
        self.stdout.write(
            f"Simulated PBX on {pbx.host}:{pbx.port}: {len(centre.queues)} queues, "
            f"{len(centre.devices) - 1} devices. Ctrl-C or SIGTERM stops it."
        )
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            pbx.stop()
