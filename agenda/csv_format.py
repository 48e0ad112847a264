"""The agendas' CSV file (agenda,name,number): read for the admin's import, written by its export."""

from __future__ import annotations

import csv
import io

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from agenda.models import Agenda
from agenda.services import clean_phone_entries
from pbx.csv_cells import csv_unsafe
from pbx.errors import InvalidValue

CSV_HEADER = ["agenda", "name", "number"]
CSV_MAX_BYTES = 10 * 1024 * 1024
CSV_MAX_ERRORS_SHOWN = 20


def parse_agenda_csv(data: bytes) -> dict[str, dict[str, str]]:
    """{agenda: {normalised number: name}}; raises ValidationError listing the bad lines."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(_("The file is not UTF-8 text.")) from exc
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    agendas: dict[str, dict[str, str]] = {}
    errors: list[str] = []
    for line, row in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
        if not any(cell.strip() for cell in row):
            continue
        if line == 1 and [cell.strip().lower() for cell in row] == CSV_HEADER:
            continue
        if len(row) != len(CSV_HEADER):
            errors.append(
                gettext("Line %(line)d: expected 3 columns (agenda, name, number), got %(n)d.")
                % {"line": line, "n": len(row)}
            )
            continue
        agenda, name, number = (csv_unsafe(cell.strip()) for cell in row)
        if not agenda or len(agenda) > Agenda._meta.get_field("name").max_length:
            errors.append(
                gettext("Line %(line)d: the agenda name is empty or too long.") % {"line": line}
            )
            continue
        try:
            phones = clean_phone_entries([{"name": name, "number": number}])
        except InvalidValue as exc:
            message = exc.message.replace("phones[0]", gettext("line %(line)d") % {"line": line})
            errors.append(message[0].upper() + message[1:])
            continue
        agendas.setdefault(agenda, {}).update(phones)
    if errors:
        shown = errors[:CSV_MAX_ERRORS_SHOWN]
        if len(errors) > len(shown):
            shown.append(gettext("… and %(n)d more errors.") % {"n": len(errors) - len(shown)})
        raise ValidationError(shown)
    if not agendas:
        raise ValidationError(_("The file has no phones."))
    return agendas
