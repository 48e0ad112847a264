"""What the ingest commands share: their options, which PBX's sources they read, how they report."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.core.management.base import BaseCommand, CommandError

from pbx.history.ingest.runner import Report, StopFlag
from pbx.models import DEFAULT_PBX, Pbx


class Ingest(Protocol):
    stop: StopFlag
    report: Report

    def run(self) -> Report: ...


@dataclass
class Source:
    """One PBX's source, as the commands read it."""

    pbx: str
    name: str  # the path, or alias:table
    ingest: Ingest


def add_common_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--pbx",
        help=f"The PBX whose file this is (default: {DEFAULT_PBX}, the settings' PBX). Without "
        "PATH, the file configured on that PBX is read.",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="Every PBX's configured file, in turn (no PATH, no --pbx).",
    )
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


def chosen_pbx(name: str | None) -> Pbx | None:
    """The PBX --pbx names: None for the settings' PBX; an unknown name is a CommandError."""
    if name is None or name == DEFAULT_PBX:
        return None
    pbx = Pbx.objects.filter(name=name).first()
    if pbx is None:
        known = ", ".join([DEFAULT_PBX, *Pbx.objects.values_list("name", flat=True)])
        raise CommandError(f"Unknown PBX '{name}' (known: {known}).")
    return pbx


def file_sources(
    options: dict, *, field: str, what: str, path: Path | None
) -> list[tuple[str, Path]]:
    """(PBX, path) of every file to read: PATH, else the file configured on --pbx's PBX, else
    with --all every PBX's configured file. `field` is the Pbx field (queue_log, cdr_csv)."""
    if options["all"]:
        if path is not None or options["pbx"] is not None:
            raise CommandError("--all reads every PBX's configured file: give no PATH or --pbx.")
        configured = [
            (pbx.name, Path(getattr(pbx, field)))
            for pbx in Pbx.objects.order_by("name")
            if getattr(pbx, field)
        ]
        if not configured:
            raise CommandError(f"No PBX has a {what} configured (the PBX's '{field}' field).")
        return configured
    pbx = chosen_pbx(options["pbx"])
    key = pbx.name if pbx is not None else DEFAULT_PBX
    if path is None:
        if pbx is None:
            raise CommandError(
                f"Give the PATH of the {what} (or --pbx NAME of a PBX that has one)."
            )
        if not getattr(pbx, field):
            raise CommandError(f"PBX '{pbx.name}' has no {what} configured: give its PATH.")
        path = Path(getattr(pbx, field))
    return [(key, path)]


def existing(sources: Sequence[tuple[str, Path]]) -> None:
    for pbx, path in sources:
        if not path.is_file():
            raise CommandError(f"{path} (PBX {pbx}) is not a file.")


def run_sources(
    command: BaseCommand, sources: Sequence[Source], *, follow: bool, poll: float
) -> None:
    """Reads every source once, or with `follow` in turn until stopped; then reports each."""
    stop = StopFlag()
    for source in sources:
        source.ingest.stop = stop
    try:
        if follow:
            with stop.on_signals():
                while not stop.requested:
                    _run_each(sources, stop)
                    deadline = time.monotonic() + poll
                    while not stop.requested and time.monotonic() < deadline:
                        time.sleep(min(0.2, poll))
        else:
            _run_each(sources, stop)
    except KeyboardInterrupt:
        command.stderr.write("Interrupted; progress up to the last batch is saved.")
    for source in sources:
        write_report(command, source, source.ingest.report)


def _run_each(sources: Sequence[Source], stop: StopFlag) -> None:
    for source in sources:
        source.ingest.run()
        if stop.requested:
            return


def write_report(command: BaseCommand, source: Source, report: Report) -> None:
    name = f"pbx={source.pbx} {source.name}"
    for note in report.notes:
        command.stderr.write(f"pbx={source.pbx} {note}")
    for number, reason, text in report.malformed:
        command.stderr.write(f"{name}: line {number}: {reason}: {text}")
    if report.malformed_count > len(report.malformed):
        command.stderr.write(
            f"{name}: … and {report.malformed_count - len(report.malformed)} more malformed lines"
        )
    summary = (
        f"{name}: {report.lines} lines read, {report.added} new, "
        f"{report.duplicates} already stored, {report.ignored} blank, "
        f"{report.malformed_count} malformed"
    )
    if report.entries:
        summary += f", {report.entries} queue entries derived"
    command.stdout.write(summary)
