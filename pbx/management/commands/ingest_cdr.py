"""manage.py ingest_cdr [PATH | --database [ALIAS]] [--pbx NAME | --all]: a PBX's CDR rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from pbx.history.ingest.cdr_db import TableIngest
from pbx.history.ingest.command import (
    Source,
    add_common_arguments,
    chosen_pbx,
    existing,
    file_sources,
    run_sources,
)
from pbx.history.ingest.runner import FileIngest, cdr_time_zone
from pbx.models import DEFAULT_PBX


class Command(BaseCommand):
    help = (
        "Load a PBX's CDR incrementally from Master.csv (cdr_csv 16 to 21 columns or cdr_custom) "
        "or, with --database, from the cdr table of the database configured by "
        "CDR_DATABASE_URL. --pbx names the PBX (default: the settings' PBX); without PATH the "
        "PBX's configured file is read."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, nargs="?")
        parser.add_argument(
            "--database",
            nargs="?",
            const="cdr",
            help="Read the cdr table of this database alias (default: cdr).",
        )
        parser.add_argument(
            "--table", default=getattr(settings, "CDR_DATABASE_TABLE", "cdr"), help="Table name."
        )
        parser.add_argument(
            "--lookback-hours",
            type=float,
            default=6.0,
            help="Tables without an id column: hours re-read before the last calldate.",
        )
        add_common_arguments(parser)

    def handle(self, *args, **options):
        time_zone = cdr_time_zone(options["time_zone"])
        if options["database"]:
            sources = [self._table(options, time_zone)]
        else:
            files = file_sources(options, field="cdr_csv", what="CDR file", path=options["path"])
            existing(files)
            sources = [
                Source(
                    pbx,
                    str(path),
                    FileIngest(
                        path=path,
                        kind="cdr_csv",
                        pbx=pbx,
                        time_zone=time_zone,
                        batch_size=options["batch_size"],
                        progress_every=options["progress_every"],
                        progress=self.stderr.write,
                    ),
                )
                for pbx, path in files
            ]
        run_sources(self, sources, follow=options["follow"], poll=options["poll"])

    def _table(self, options, time_zone) -> Source:
        if options["path"] or options["all"]:
            raise CommandError("Give a PATH, --all or --database, not two of them.")
        alias = options["database"]
        if alias not in connections:
            raise CommandError(
                f"No database '{alias}': set CDR_DATABASE_URL (see docs/history.md)."
            )
        pbx = chosen_pbx(options["pbx"])
        key = pbx.name if pbx is not None else DEFAULT_PBX
        ingest = TableIngest(
            connection=connections[alias],
            table=options["table"],
            time_zone=time_zone,
            batch_size=options["batch_size"],
            lookback=timedelta(hours=options["lookback_hours"]),
            pbx=key,
        )
        return Source(key, f"{alias}:{options['table']}", ingest)
