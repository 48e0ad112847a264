"""What the ingest commands share: their options and how they report."""

from __future__ import annotations

from argparse import ArgumentParser

from django.core.management.base import BaseCommand

from pbx.history.ingest.runner import Report


def add_common_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--follow", action="store_true", help="Keep reading new lines until stopped."
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, help="Seconds between polls in --follow."
    )
    parser.add_argument("--batch-size", type=int, default=10000, help="Lines per transaction.")
    parser.add_argument(
        "--progress-every", type=int, default=100_000, help="Print progress every N lines (stderr)."
    )
    parser.add_argument(
        "--time-zone",
        help="Time zone of stamps without one (default CDR_TIME_ZONE, else TIME_ZONE).",
    )


def write_report(command: BaseCommand, source: str, report: Report) -> None:
    for note in report.notes:
        command.stderr.write(note)
    for number, reason, text in report.malformed:
        command.stderr.write(f"{source}: line {number}: {reason}: {text}")
    if report.malformed_count > len(report.malformed):
        command.stderr.write(
            f"… and {report.malformed_count - len(report.malformed)} more malformed lines"
        )
    summary = (
        f"{source}: {report.lines} lines read, {report.added} new, "
        f"{report.duplicates} already stored, {report.ignored} blank, "
        f"{report.malformed_count} malformed"
    )
    if report.entries:
        summary += f", {report.entries} queue entries derived"
    command.stdout.write(summary)
