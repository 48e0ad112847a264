"""Writes to agendas: upsert phones, delete phones, import them. Each call is one transaction.

`phones_merge` is the one rule for writing phones into agendas, used by update-agenda, the
admin's CSV import and the directory file: a new number is added, a known one takes the given
name, none is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework.exceptions import PermissionDenied

from agenda.models import Agenda, AgendaPhone
from pbx.directory.api_keys import CompanyScope
from pbx.directory.lookups import company_get
from pbx.errors import Conflict, InvalidValue, NotFound
from pbx.models import Company
from pbx.text import has_control_character
from pbx.values import max_length, normalize_phone_number

BATCH_SIZE = 1000
NAME_MAX_LENGTH = max_length(AgendaPhone, "name")


@dataclass
class PhonesMerged:
    created: int = 0
    renamed: int = 0
    unchanged: int = 0


def phones_merge(phones_by_agenda: Mapping[int, Mapping[str, str]]) -> PhonesMerged:
    """Writes {agenda id: {normalised number: name}}: new numbers added, known ones renamed.

    Two writers of one agenda queue up on the agenda's row (locked in id order, so that two
    writers of several agendas cannot deadlock), and the second reads what the first committed.
    Locking the phones alone left out the numbers neither had stored yet: both inserted the same
    new number and the second failed on the unique key. Call inside a transaction.
    """
    merged = PhonesMerged()
    ids = sorted(phones_by_agenda)
    list(Agenda.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
    stored = AgendaPhone.objects.select_for_update().filter(agenda_id__in=ids)
    existing = {(phone.agenda_id, phone.number): phone for phone in stored}
    to_create, to_rename = [], []
    for agenda_id, phones in phones_by_agenda.items():
        for number, name in phones.items():
            phone = existing.get((agenda_id, number))
            if phone is None:
                to_create.append(AgendaPhone(agenda_id=agenda_id, name=name, number=number))
            elif phone.name != name:
                phone.name = name
                to_rename.append(phone)
            else:
                merged.unchanged += 1
    AgendaPhone.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    AgendaPhone.objects.bulk_update(to_rename, ["name"], batch_size=BATCH_SIZE)
    merged.created, merged.renamed = len(to_create), len(to_rename)
    return merged


def clean_phone_entries(entries: Sequence[Any]) -> dict[str, str]:
    """`[{name, number}, …]` → {normalised number: name}; the first invalid entry is a 400."""
    phones: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"phones[{index}]"
        if not isinstance(entry, dict):
            raise InvalidValue(
                _("%(where)s must be an object with 'name' and 'number'.") % {"where": where}
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidValue(_("%(where)s has no 'name'.") % {"where": where})
        name = name.strip()
        if len(name) > NAME_MAX_LENGTH or has_control_character(name):
            raise InvalidValue(
                _(
                    "%(where)s: the name is longer than %(max)s characters or has control characters."
                )
                % {"where": where, "max": NAME_MAX_LENGTH}
            )
        number = normalize_phone_number(entry.get("number"))
        if number is None:
            raise InvalidValue(
                _("%(where)s: '%(number)s' is not a valid phone number.")
                % {"where": where, "number": str(entry.get("number"))[:40]}
            )
        phones[number] = name
    return phones


def clean_phone_numbers(entries: Sequence[Any]) -> list[str]:
    numbers = []
    for index, entry in enumerate(entries):
        number = normalize_phone_number(entry)
        if number is None:
            raise InvalidValue(
                _("phones[%(index)s]: '%(number)s' is not a valid phone number.")
                % {"index": index, "number": str(entry)[:40]}
            )
        numbers.append(number)
    return numbers


def agenda_visible(*, client: CompanyScope, name: str) -> Agenda | None:
    agenda = Agenda.objects.filter(name=name).first()
    if agenda is None:
        return None
    if not client.sees_company(agenda.company_id):
        return None  # another company's agenda is answered as if it did not exist
    return agenda


def _company_for_new_agenda(*, client: CompanyScope, company: str | None) -> Company | None:
    if company is not None:
        return company_get(client=client, ident=company)
    if client.company_ids is None:
        return None
    if len(client.company_ids) == 1:
        return client.companies().get()
    if not client.company_ids:
        raise PermissionDenied(
            _("This API key is limited to companies that no longer exist: it sees nothing.")
        )
    raise InvalidValue(
        _("The parameter 'company' is required: this API key serves several companies.")
    )


def _agenda_create(*, client: CompanyScope, name: str, company: str | None) -> Agenda:
    """A new agenda; a name taken where the key cannot see answers as any taken name (409).

    Names are unique across companies, so that a name is taken cannot be hidden; whose it is
    can. The company is settled first, so that its errors do not depend on the name.
    """
    owner = _company_for_new_agenda(client=client, company=company)
    taken = Conflict(_("The agenda name '%(name)s' is taken: choose another.") % {"name": name})
    if Agenda.objects.filter(name=name).exists():
        raise taken
    try:
        with transaction.atomic():
            return Agenda.objects.create(name=name, company=owner)
    except IntegrityError:
        # Another request created it meanwhile (and committed): as if it had been there.
        agenda = agenda_visible(client=client, name=name)
        if agenda is None:
            raise taken from None
        if company is not None and agenda.company_id != getattr(owner, "pk", None):
            raise Conflict(
                _("Agenda '%(name)s' belongs to another company.") % {"name": name}
            ) from None
        return agenda


@transaction.atomic
def agenda_upsert(
    *, client: CompanyScope, name: str, phones: dict[str, str], company: str | None = None
) -> Agenda:
    """Creates the agenda if needed; new numbers are added, existing ones renamed."""
    agenda = agenda_visible(client=client, name=name)
    if agenda is None:
        agenda = _agenda_create(client=client, name=name, company=company)
    elif company is not None and agenda.company_id != company_get(client=client, ident=company).pk:
        raise Conflict(_("Agenda '%(name)s' belongs to another company.") % {"name": name})

    phones_merge({agenda.pk: phones})
    return agenda


@transaction.atomic
def agenda_phones_delete(*, client: CompanyScope, name: str, numbers: list[str] | None) -> int:
    """Deletes the listed numbers, or every phone when `numbers` is None; returns how many."""
    agenda = agenda_visible(client=client, name=name)
    if agenda is None:
        raise NotFound(_("Agenda '%(name)s' not found.") % {"name": name})
    phones = agenda.phones.all()
    if numbers is not None:
        phones = phones.filter(number__in=numbers)
    deleted, _per_model = phones.delete()
    return deleted


@dataclass
class AgendasImported:
    agendas_created: int = 0
    phones: PhonesMerged = field(default_factory=PhonesMerged)


@transaction.atomic
def agendas_import(agendas: Mapping[str, Mapping[str, str]]) -> AgendasImported:
    """The admin's CSV import: missing agendas created (without a company), then their phones."""
    imported = AgendasImported()
    ids = {}
    for name in agendas:
        agenda, created = Agenda.objects.get_or_create(name=name)
        imported.agendas_created += created
        ids[name] = agenda.pk
    imported.phones = phones_merge({ids[name]: phones for name, phones in agendas.items()})
    return imported
