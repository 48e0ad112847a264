"""manage.py load_directory FILE.json [--prune]: provision the directory from a JSON document."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pbx.directory.loading import DirectoryError, directory_load


class Command(BaseCommand):
    help = (
        "Creates or updates PBXes, companies, departments, users, queues and their members, "
        "terminals, public numbers and agendas from a JSON file (docs/directory.md). Nothing is "
        "written when the file has an error."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The directory document (JSON, UTF-8).")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also delete, within the file's companies, what the file's lists leave out.",
        )

    def handle(self, *args, file: str, prune: bool, **options) -> None:
        try:
            document = json.loads(Path(file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror or exc}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"{file}: not valid JSON: {exc}") from exc
        try:
            report = directory_load(document, prune=prune)
        except DirectoryError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        self.stdout.write(str(report))
