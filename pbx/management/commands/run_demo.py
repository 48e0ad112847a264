"""The demo in one process: simulated PBX, listener, history ingest and daphne on :8000.

One process on purpose: with the in-memory channel layer (no REDIS_URL), pushes reach only the
websockets of the process that publishes, so the listener must live beside the web server.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from dashboard.publisher import listener_for
from pbx.history.ingest.runner import FileIngest, cdr_time_zone
from pbx.simulator import Behaviour, CallCentre, History, SimulatedPbx

logger = logging.getLogger("swan.demo")


def follow_file(path: Path, kind: str, stop: threading.Event, poll_seconds: float = 2.0) -> None:
    """Ingests `path` as it grows until `stop` (FileIngest.follow wants the main thread)."""
    ingest = FileIngest(path=path, kind=kind, time_zone=cdr_time_zone())
    try:
        while not stop.is_set():
            if path.is_file():
                try:
                    ingest.run()
                except Exception:
                    logger.exception("demo ingest failed path=%s; retrying", path)
            stop.wait(poll_seconds)
    finally:
        connection.close()


class Command(BaseCommand):
    help = "Run the demo: simulated PBX, listener, ingest in follow mode, daphne (`make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--call-rate", type=float, default=6.0, help="Calls per minute.")
        parser.add_argument(
            "--pauses-per-hour",
            type=float,
            default=Behaviour.pauses_per_agent_hour,
            help="Spontaneous pauses per agent-hour (0: agents pause only when asked).",
        )
        parser.add_argument("--seed", type=int, default=None, help="A repeatable call centre.")
        parser.add_argument(
            "--history-dir",
            type=Path,
            default=None,
            help="Where the simulator writes queue_log and cdr-csv/Master.csv (var/asterisk).",
        )
        parser.add_argument(
            "--no-simulator", action="store_true", help="Use the PBX at AMI_HOST:AMI_PORT."
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        call_rate: float,
        pauses_per_hour: float,
        seed: int | None,
        history_dir: Path | None,
        no_simulator: bool,
        **options,
    ):
        from swanproject.asgi import application

        history_dir = history_dir or Path(settings.BASE_DIR) / "var" / "asterisk"
        queue_log = history_dir / "queue_log"
        master_csv = history_dir / "cdr-csv" / "Master.csv"
        stop = threading.Event()
        simulator = None
        if not no_simulator:
            simulator = SimulatedPbx(
                CallCentre.from_directory(
                    behaviour=Behaviour(call_rate=call_rate, pauses_per_agent_hour=pauses_per_hour),
                    seed=seed,
                    history=History(queue_log, master_csv),
                ),
                host=settings.AMI_HOST,
                port=settings.AMI_PORT,
                username=settings.AMI_USERNAME,
                secret=settings.AMI_SECRET,
            )
            simulator.start()
            self.stdout.write(f"Simulated PBX on {settings.AMI_HOST}:{settings.AMI_PORT}")
        listener = listener_for()
        workers = [
            threading.Thread(target=self._listen, args=(listener, stop), name="listener"),
            threading.Thread(
                target=follow_file, args=(queue_log, "queue_log", stop), name="ingest-queue-log"
            ),
            threading.Thread(
                target=follow_file, args=(master_csv, "cdr_csv", stop), name="ingest-cdr"
            ),
        ]
        for worker in workers:
            worker.start()
        self.stdout.write(f"SWAN serving on http://{host}:{port}/ (Ctrl+C stops)")
        try:
            Server(
                application=application,
                endpoints=build_endpoint_description_strings(host=host, port=port),
                signal_handlers=True,
            ).run()
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
            if simulator is not None:
                simulator.stop()
            self.stdout.write("SWAN demo stopped.")

    @staticmethod
    def _listen(listener, stop: threading.Event) -> None:
        try:
            listener.run(stop)
        finally:
            connection.close()
