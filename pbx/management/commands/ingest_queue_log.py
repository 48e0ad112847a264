"""manage.py ingest_queue_log [PATH] [--pbx NAME | --all]: queue_log lines and the entries derived."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from pbx.history.ingest.command import (
    Source,
    add_common_arguments,
    existing,
    file_sources,
    run_sources,
)
from pbx.history.ingest.runner import FileIngest, cdr_time_zone


class Command(BaseCommand):
    help = (
        "Load a PBX's queue_log incrementally (it remembers how far it read, survives "
        "rotation, never duplicates) and derive one row per queue entry. --pbx names the PBX "
        "(default: the settings' PBX); without PATH the PBX's configured file is read."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, nargs="?")
        add_common_arguments(parser)

    def handle(self, *args, **options):
        files = file_sources(
            options, field="queue_log", what="queue_log file", path=options["path"]
        )
        existing(files)
        sources = [
            Source(
                pbx,
                str(path),
                FileIngest(
                    path=path,
                    kind="queue_log",
                    pbx=pbx,
                    time_zone=cdr_time_zone(options["time_zone"]),
                    batch_size=options["batch_size"],
                    progress_every=options["progress_every"],
                    progress=self.stderr.write,
                ),
            )
            for pbx, path in files
        ]
        run_sources(self, sources, follow=options["follow"], poll=options["poll"])
