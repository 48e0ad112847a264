"""manage.py ingest_cdr PATH | --database [ALIAS]: CDR rows from Master.csv or the `cdr` table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from pbx.history.ingest.cdr_db import TableIngest
from pbx.history.ingest.command import add_common_arguments, write_report
from pbx.history.ingest.runner import FileIngest, cdr_time_zone


class Command(BaseCommand):
    help = (
        "Load CDR incrementally from Master.csv (cdr_csv 18/21 columns or cdr_custom) or, with "
        "--database, from the cdr table of the database configured by CDR_DATABASE_URL."
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
            if options["path"]:
                raise CommandError("Give a PATH or --database, not both.")
            alias = options["database"]
            if alias not in connections:
                raise CommandError(
                    f"No database '{alias}': set CDR_DATABASE_URL (see docs/history.md)."
                )
            ingest = TableIngest(
                connection=connections[alias],
                table=options["table"],
                time_zone=time_zone,
                batch_size=options["batch_size"],
                lookback=timedelta(hours=options["lookback_hours"]),
            )
            source = f"{alias}:{options['table']}"
        else:
            path: Path | None = options["path"]
            if path is None or not path.is_file():
                raise CommandError(f"{path or 'PATH'} is not a file (or use --database).")
            ingest = FileIngest(
                path=path,
                kind="cdr_csv",
                time_zone=time_zone,
                batch_size=options["batch_size"],
                progress_every=options["progress_every"],
                progress=self.stderr.write,
            )
            source = str(path)
        try:
            report = (
                ingest.follow(poll_seconds=options["poll"]) if options["follow"] else ingest.run()
            )
        except KeyboardInterrupt:
            report = ingest.report
            self.stderr.write("Interrupted; progress up to the last batch is saved.")
        write_report(self, source, report)
