"""manage.py ingest_queue_log PATH: queue_log lines and the queue entries derived from them."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pbx.history.ingest.command import add_common_arguments, write_report
from pbx.history.ingest.runner import FileIngest, cdr_time_zone


class Command(BaseCommand):
    help = (
        "Load Asterisk's queue_log incrementally (it remembers how far it read, survives "
        "rotation, never duplicates) and derive one row per queue entry."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        add_common_arguments(parser)

    def handle(self, *args, **options):
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        ingest = FileIngest(
            path=path,
            kind="queue_log",
            time_zone=cdr_time_zone(options["time_zone"]),
            batch_size=options["batch_size"],
            progress_every=options["progress_every"],
            progress=self.stderr.write,
        )
        try:
            report = (
                ingest.follow(poll_seconds=options["poll"]) if options["follow"] else ingest.run()
            )
        except KeyboardInterrupt:
            report = ingest.report
            self.stderr.write("Interrupted; progress up to the last batch is saved.")
        write_report(self, str(path), report)
