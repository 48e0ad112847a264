"""`refresh_read_caches`: every web worker reads the directory and live state again."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from pbx.live.version import live_changed


class Command(BaseCommand):
    help = (
        "Makes every web worker's read cache (userStatus, blf-users, queues-status, "
        "user-resume) start again from the database on its next request. Needed only after "
        "writing SWAN's tables by SQL or with QuerySet.update(): SWAN's own writers, the admin "
        "and model saves in a shell are seen at once."
    )

    def handle(self, *args, **options):
        version = live_changed(everything=True)
        self.stdout.write(f"Read caches start again from change {version}.")
