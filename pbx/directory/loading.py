"""Directory import: PBXes, companies, people, queues, terminals, numbers and agendas from one JSON
document."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar
from zoneinfo import available_timezones

from django.db import models, transaction
from django.db.models.functions import Lower

from agenda.models import Agenda, AgendaPhone
from agenda.services import phones_merge
from pbx.directory.signals import directory_loaded
from pbx.errors import InvalidValue
from pbx.models import (
    DEFAULT_PBX,
    Company,
    Department,
    Pbx,
    PbxUser,
    PublicNumber,
    Queue,
    QueueMember,
)
from pbx.models.directory import SECRET_ENV_NAME, SECRET_ENV_PREFIX
from pbx.text import has_control_character
from pbx.values import clean_extension, clean_mac, max_length, normalize_phone_number
from terminals.models import Terminal

BATCH_SIZE = 1000
MAX_LISTED_ERRORS = 50
RATIO_STEP = Decimal("0.01")
# Queues and agendas carry statistics and API-fed phones: --prune never deletes them, nor companies
# and PBXes.
PRUNABLE = frozenset(
    {"departments", "users", "queue_members", "terminals", "numbers", "agenda_phones"}
)

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TOKEN = re.compile(r"[^\s]+")  # dialplan contexts and queue names reach the PBX: no blanks
_INTERFACE = re.compile(r"[A-Za-z0-9_]+/[^\s]+")
_DND_PREFIX = re.compile(r"(?:[A-Za-z0-9_-]*[A-Za-z_-])?")  # as dnd_prefix_validator

_DOCUMENT_KEYS = {"pbxes", "companies"}
_PBX_KEYS = {
    "name",
    "host",
    "port",
    "username",
    "secret_env",
    "queue_log",
    "cdr_csv",
    "dial_context",
}
_COMPANY_KEYS = {
    "slug",
    "name",
    "time_zone",
    "pbx",
    "dial_context",
    "dnd_prefix",
    "departments",
    "queues",
    "users",
    "numbers",
    "agendas",
}
_QUEUE_KEYS = {"name", "display_name", "service_level_seconds", "short_abandon_seconds", "alarm"}
_ALARM_KEYS = {"waiting_calls", "wait_seconds", "service_ratio_below", "abandoned_ratio_below"}
_USER_KEYS = {"extension", "name", "mobile", "department", "queues", "terminals"}
_TERMINAL_KEYS = {"mac", "type", "interface"}
_NUMBER_KEYS = {"name", "alias", "number", "in_use"}
_AGENDA_KEYS = {"name", "phones"}
_PHONE_KEYS = {"name", "number"}
_Row = TypeVar("_Row", bound=models.Model)


class DirectoryError(ValueError):
    """The document is invalid; `errors` lists every problem found, each naming its object."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        lines = errors[:MAX_LISTED_ERRORS]
        if len(errors) > MAX_LISTED_ERRORS:
            lines.append(f"… and {len(errors) - MAX_LISTED_ERRORS} more")
        header = [] if len(errors) == 1 else [f"{len(errors)} errors in the directory:"]
        super().__init__("\n".join(header + lines))


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass
class DirectoryReport:
    """What a load did, per kind of object."""

    pbxes: Counts = field(default_factory=Counts)
    companies: Counts = field(default_factory=Counts)
    departments: Counts = field(default_factory=Counts)
    queues: Counts = field(default_factory=Counts)
    users: Counts = field(default_factory=Counts)
    queue_members: Counts = field(default_factory=Counts)
    terminals: Counts = field(default_factory=Counts)
    numbers: Counts = field(default_factory=Counts)
    agendas: Counts = field(default_factory=Counts)
    agenda_phones: Counts = field(default_factory=Counts)
    pruned: bool = False

    def kinds(self) -> dict[str, Counts]:
        kinds = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in kinds.items() if isinstance(value, Counts)}

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated or c.deleted for c in self.kinds().values())

    def __str__(self) -> str:
        lines = []
        for name, c in self.kinds().items():
            line = f"{name.replace('_', ' ')}: {c.created} created, {c.updated} updated, "
            line += f"{c.unchanged} unchanged"
            if self.pruned and name in PRUNABLE:
                line += f", {c.deleted} deleted"
            lines.append(line)
        return "\n".join(lines)


class _Invalid(Exception):
    """One problem in one object; the parser adds where it is."""


# The parsed document. `given` holds the model fields the file sets: a key left out of the file
# keeps the stored value on update and takes the model's default on create.


@dataclass
class _Terminal:
    where: str
    mac: str
    given: dict[str, Any]


@dataclass
class _User:
    where: str
    extension: str
    given: dict[str, Any]
    department: str | None = None  # only meaningful when "department" is in the file
    has_department: bool = False
    queues: list[str] | None = None
    terminals: list[_Terminal] | None = None


@dataclass
class _Queue:
    where: str
    name: str
    given: dict[str, Any]


@dataclass
class _Number:
    where: str
    number: str
    given: dict[str, Any]


@dataclass
class _Agenda:
    where: str
    name: str
    phones: dict[str, str] | None


@dataclass
class _Pbx:
    where: str
    name: str
    given: dict[str, Any]


@dataclass
class _Company:
    where: str
    slug: str
    given: dict[str, Any]
    departments: list[str] | None = None
    queues: list[_Queue] | None = None
    users: list[_User] | None = None
    numbers: list[_Number] | None = None
    agendas: list[_Agenda] | None = None


@dataclass
class _Named:
    where: str
    name: str


def directory_load(document: dict[str, Any], *, prune: bool = False) -> DirectoryReport:
    """Validates the whole document, then creates or updates its objects in one transaction.

    Raises DirectoryError, having written nothing, when the document or the database disagree.
    With `prune`, deletes what the lists in the file leave out (see docs/directory.md).
    """
    pbxes, companies = _parse_document(document)
    report = DirectoryReport(pruned=prune)
    with transaction.atomic():
        _Loader(pbxes, companies, prune=prune, report=report).run()
        if report.changed:  # bulk writes send no signals (pbx/live/directory_changes.py)
            directory_loaded.send(sender=DirectoryReport, report=report)
    return report


# Reading the document: every problem is collected, so that one run lists them all.


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _show(value: Any) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in str(value)[:40])


def _where(parent: str, key: str, index: int, ident: Any, prefix: str = "") -> str:
    where = f"{parent} {key}[{index}]" if parent else f"{key}[{index}]"
    if isinstance(ident, str | int) and not isinstance(ident, bool) and str(ident) != "":
        where += f" ({prefix}{_show(ident)})"
    return where


def _object(value: Any, allowed: set[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid("must be an object")
    for key in value:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _Invalid(f"unknown key '{_show(key)}'{hint}")
    for key in required:
        if value.get(key) is None:
            raise _Invalid(f"{key} is required")
    return value


def _text(raw: dict[str, Any], key: str, *, max_length: int, blank: bool = False) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise _Invalid(f"{key} must be a text")
    if has_control_character(value):
        raise _Invalid(f"{key} contains control characters")
    value = value.strip()
    if not value and not blank:
        raise _Invalid(f"{key} must not be empty")
    if len(value) > max_length:
        raise _Invalid(f"{key} is longer than {max_length} characters")
    return value


def _token(raw: dict[str, Any], key: str, *, max_length: int) -> str:
    value = _text(raw, key, max_length=max_length)
    if not _TOKEN.fullmatch(value):
        raise _Invalid(f"{key} must not contain blanks")
    return value


def _whole(raw: dict[str, Any], key: str, *, minimum: int, maximum: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _Invalid(f"{key} must be a whole number from {minimum} to {maximum}")
    return value


def _ratio(raw: dict[str, Any], key: str) -> Decimal | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise _Invalid(f"{key} must be a percentage from 0 to 100")
    return Decimal(str(value)).quantize(RATIO_STEP)


def _list(raw: dict[str, Any], key: str) -> list[Any] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _Invalid(f"{key} must be a list")
    return value


def _phone(raw: dict[str, Any], key: str, *, max_length: int) -> str:
    number = normalize_phone_number(raw[key])
    if number is None or len(number) > max_length:
        raise _Invalid(f"{key} '{_show(raw[key])}' is not a valid phone number")
    return number


def _items(
    raw: dict[str, Any], key: str, where: str, problems: list[str], parse, ident_key: str, **kw
) -> list[Any] | None:
    """Parses each item of a list; a bad item is reported and skipped, the others still checked."""
    try:
        items = _list(raw, key)
    except _Invalid as exc:
        problems.append(f"{where or 'the document'}: {exc}")
        return []
    if items is None:
        return None
    prefix = "extension " if ident_key == "extension" else ""
    parsed = []
    for index, item in enumerate(items):
        ident = item.get(ident_key) if isinstance(item, dict) else (None if ident_key else item)
        item_where = _where(where, key, index, ident, prefix)
        try:
            parsed.append(parse(item, item_where, **kw))
        except _Invalid as exc:
            problems.append(f"{item_where}: {exc}")
    return parsed


def _unique(items: Iterable[Any], key: str, what: str, errors: list[str]) -> None:
    first_seen: dict[Any, str] = {}
    for item in items:
        value = getattr(item, key)
        if value in first_seen:
            errors.append(
                f"{item.where}: {what} {value} is listed twice (also {first_seen[value]})"
            )
        else:
            first_seen[value] = item.where


def _parse_department(raw: Any, where: str) -> _Named:
    if not isinstance(raw, str):
        raise _Invalid("must be a text")
    return _Named(where, _text({"name": raw}, "name", max_length=max_length(Department, "name")))


def _parse_queue(raw: Any, where: str) -> _Queue:
    raw = _object(raw, _QUEUE_KEYS, ["name"])
    queue = _Queue(where, _token(raw, "name", max_length=max_length(Queue, "name")), {})
    if "service_level_seconds" in raw:
        level = _whole(raw, "service_level_seconds", minimum=1, maximum=86400)
        if level is None:
            raise _Invalid("service_level_seconds must be a whole number from 1 to 86400")
        queue.given["service_level_seconds"] = level
    if "display_name" in raw:
        queue.given["display_name"] = (
            ""
            if raw["display_name"] is None
            else _text(
                raw, "display_name", max_length=max_length(Queue, "display_name"), blank=True
            )
        )
    if "short_abandon_seconds" in raw:
        short = _whole(raw, "short_abandon_seconds", minimum=0, maximum=3600)
        if short is None:
            raise _Invalid("short_abandon_seconds must be a whole number from 0 to 3600")
        queue.given["short_abandon_seconds"] = short
    if "alarm" not in raw:
        return queue
    # null switches every rule off; a rule left out keeps its stored value (or default).
    alarm = dict.fromkeys(_ALARM_KEYS) if raw["alarm"] is None else raw["alarm"]
    try:
        alarm = _object(alarm, _ALARM_KEYS)
        if "waiting_calls" in alarm:
            queue.given["alarm_waiting_calls"] = _whole(
                alarm, "waiting_calls", minimum=1, maximum=100_000
            )
        if "wait_seconds" in alarm:
            queue.given["alarm_wait_seconds"] = _whole(
                alarm, "wait_seconds", minimum=1, maximum=86400
            )
        if "service_ratio_below" in alarm:
            queue.given["alarm_service_ratio_below"] = _ratio(alarm, "service_ratio_below")
        if "abandoned_ratio_below" in alarm:
            queue.given["alarm_abandoned_ratio_below"] = _ratio(alarm, "abandoned_ratio_below")
    except _Invalid as exc:
        raise _Invalid(f"alarm {exc}") from None
    return queue


def _parse_terminal(raw: Any, where: str) -> _Terminal:
    raw = _object(raw, _TERMINAL_KEYS, ["mac"])
    try:
        if not isinstance(raw["mac"], str):
            raise InvalidValue("")
        terminal = _Terminal(where, clean_mac(raw["mac"]), {})
    except InvalidValue:
        raise _Invalid("mac must be 12 hex digits, optionally separated by : - or .") from None
    if raw.get("type") is not None:
        if raw["type"] not in Terminal.Type.values:
            raise _Invalid(f"type must be one of {', '.join(Terminal.Type.values)}")
        terminal.given["type"] = raw["type"]
    if raw.get("interface") is not None:
        interface = _text(raw, "interface", max_length=max_length(Terminal, "interface"))
        if not _INTERFACE.fullmatch(interface):
            raise _Invalid("interface must look like TECHNOLOGY/resource, e.g. PJSIP/200")
        terminal.given["interface"] = interface
    return terminal


def _parse_user(
    raw: Any, where: str, *, departments: set[str], queues: set[str], errors: list[str]
) -> _User:
    raw = _object(raw, _USER_KEYS, ["extension", "name"])
    try:
        extension = clean_extension(raw["extension"])
    except InvalidValue:
        raise _Invalid("extension must be 1 to 20 digits") from None
    user = _User(
        where, extension, {"name": _text(raw, "name", max_length=max_length(PbxUser, "name"))}
    )
    if "mobile" in raw:
        empty = raw["mobile"] is None or raw["mobile"] == ""
        user.given["mobile"] = (
            "" if empty else _phone(raw, "mobile", max_length=max_length(PbxUser, "mobile"))
        )
    if "department" in raw:
        user.has_department = True
        if raw["department"] is not None:
            name = _text(raw, "department", max_length=max_length(Department, "name"))
            if name not in departments:
                raise _Invalid(
                    f"department '{_show(name)}' is not one of the company's departments"
                )
            user.department = name
    names = _list(raw, "queues")
    if names is not None:
        user.queues = []
        for name in names:
            if not isinstance(name, str) or name not in queues:
                raise _Invalid(f"queue '{_show(name)}' is not one of the company's queues")
            if name in user.queues:
                raise _Invalid(f"queue '{name}' is listed twice")
            user.queues.append(name)
    user.terminals = _items(raw, "terminals", where, errors, _parse_terminal, "mac")
    return user


def _parse_number(raw: Any, where: str) -> _Number:
    raw = _object(raw, _NUMBER_KEYS, ["number"])
    number = _Number(
        where, _phone(raw, "number", max_length=max_length(PublicNumber, "number")), {}
    )
    if raw.get("name") is not None:
        number.given["name"] = _text(raw, "name", max_length=max_length(PublicNumber, "name"))
    if "alias" in raw:
        number.given["alias"] = (
            ""
            if raw["alias"] is None
            else _text(raw, "alias", max_length=max_length(PublicNumber, "alias"), blank=True)
        )
    if raw.get("in_use") is not None:
        if not isinstance(raw["in_use"], bool):
            raise _Invalid("in_use must be true or false")
        number.given["in_use"] = raw["in_use"]
    return number


def _parse_phone(raw: Any, where: str) -> _Number:
    raw = _object(raw, _PHONE_KEYS, ["number"])
    number = _phone(raw, "number", max_length=max_length(AgendaPhone, "number"))
    name = (
        number
        if raw.get("name") is None
        else _text(raw, "name", max_length=max_length(AgendaPhone, "name"))
    )
    return _Number(where, number, {"name": name})


def _parse_agenda(raw: Any, where: str, *, errors: list[str]) -> _Agenda:
    raw = _object(raw, _AGENDA_KEYS, ["name"])
    agenda = _Agenda(where, _text(raw, "name", max_length=max_length(Agenda, "name")), None)
    phones = _items(raw, "phones", where, errors, _parse_phone, "number")
    if phones is not None:
        _unique(phones, "number", "number", errors)
        agenda.phones = {phone.number: phone.given["name"] for phone in phones}
    return agenda


def _names(raw: dict[str, Any], key: str, ident_key: str | None = None) -> set[str]:
    """The names written in a list, valid or not."""
    items = raw.get(key)
    if not isinstance(items, list):
        return set()
    if ident_key:
        items = [item.get(ident_key) for item in items if isinstance(item, dict)]
    return {item.strip() for item in items if isinstance(item, str)}


def _dnd_prefix(raw: dict[str, Any]) -> str:
    if raw["dnd_prefix"] is None:
        return ""
    prefix = _text(raw, "dnd_prefix", max_length=max_length(Company, "dnd_prefix"), blank=True)
    if not _DND_PREFIX.fullmatch(prefix):
        raise _Invalid(
            "dnd_prefix must be letters, digits, - and _, not ending in a digit (e.g. acme-)"
        )
    return prefix


def _parse_pbx(raw: Any, where: str) -> _Pbx:
    if isinstance(raw, dict) and "secret" in raw:
        raise _Invalid(
            "secret: the AMI secret is never written in the file; put it in an environment "
            "variable and name that variable in secret_env"
        )
    raw = _object(raw, _PBX_KEYS, ["name", "host", "username", "secret_env"])
    name = _text(raw, "name", max_length=max_length(Pbx, "name"))
    if not _SLUG.fullmatch(name):
        raise _Invalid(
            "name must be lower-case letters, digits, - and _, starting with a letter or digit"
        )
    if name == DEFAULT_PBX:
        raise _Invalid(
            f"name '{DEFAULT_PBX}' is the PBX of the settings (AMI_HOST…): choose another name"
        )
    secret_env = _text(raw, "secret_env", max_length=max_length(Pbx, "secret_env"))
    if not SECRET_ENV_NAME.fullmatch(secret_env):
        raise _Invalid(
            f"secret_env must be an environment variable name that starts with {SECRET_ENV_PREFIX}"
            " (then A-Z, 0-9 and _, e.g. SWAN_PBX_A_SECRET): a PBX's secret is read from no "
            "other variable"
        )
    pbx = _Pbx(
        where,
        name,
        {
            "host": _token(raw, "host", max_length=max_length(Pbx, "host")),
            "username": _token(raw, "username", max_length=max_length(Pbx, "username")),
            "secret_env": secret_env,
        },
    )
    if raw.get("port") is not None:
        pbx.given["port"] = _whole(raw, "port", minimum=1, maximum=65535)
    for key in ("queue_log", "cdr_csv"):
        if key in raw:
            pbx.given[key] = (
                ""
                if raw[key] is None
                else _text(raw, key, max_length=max_length(Pbx, key), blank=True)
            )
    if raw.get("dial_context") is not None:
        pbx.given["dial_context"] = _token(
            raw, "dial_context", max_length=max_length(Pbx, "dial_context")
        )
    return pbx


def _pbx_of_company(raw: dict[str, Any]) -> str | None:
    """The PBX a company names: None for the settings' one (null or "default")."""
    if raw["pbx"] is None:
        return None
    name = _text(raw, "pbx", max_length=max_length(Pbx, "name"))
    if name == DEFAULT_PBX:
        return None
    if not _SLUG.fullmatch(name):
        raise _Invalid(f"pbx '{_show(name)}' is not a PBX name")
    return name


def _parse_company(raw: Any, where: str, *, errors: list[str]) -> _Company:
    raw = _object(raw, _COMPANY_KEYS, ["slug", "name"])
    slug = _text(raw, "slug", max_length=max_length(Company, "slug"))
    if not _SLUG.fullmatch(slug):
        raise _Invalid(
            "slug must be lower-case letters, digits, - and _, starting with a letter or digit"
        )
    company = _Company(
        where, slug, {"name": _text(raw, "name", max_length=max_length(Company, "name"))}
    )
    if raw.get("time_zone") is not None:
        time_zone = _text(raw, "time_zone", max_length=max_length(Company, "time_zone"))
        if time_zone not in _time_zones():
            raise _Invalid(f"time_zone '{_show(time_zone)}' is not a known time zone")
        company.given["time_zone"] = time_zone
    if "pbx" in raw:
        company.given["pbx_id"] = _pbx_of_company(raw)
    if "dial_context" in raw:
        # Empty: the PBX's default context (pbx/directory/pbxes.py: dial_context_of).
        company.given["dial_context"] = (
            ""
            if raw["dial_context"] in (None, "")
            else _token(raw, "dial_context", max_length=max_length(Company, "dial_context"))
        )
    if "dnd_prefix" in raw:
        company.given["dnd_prefix"] = _dnd_prefix(raw)
    departments = _items(raw, "departments", where, errors, _parse_department, "")
    if departments is not None:
        _unique(departments, "name", "department", errors)
        company.departments = [department.name for department in departments]
    company.queues = _items(raw, "queues", where, errors, _parse_queue, "name")
    # Across companies, a queue name is unique per PBX: checked once the PBXes are known (_Loader).
    _unique(company.queues or (), "name", "queue", errors)
    # References are checked against every name written, so a bad entry is reported once, not
    # again by each user that refers to it.
    company.users = _items(
        raw,
        "users",
        where,
        errors,
        _parse_user,
        "extension",
        departments=_names(raw, "departments"),
        queues=_names(raw, "queues", "name"),
        errors=errors,
    )
    company.numbers = _items(raw, "numbers", where, errors, _parse_number, "number")
    company.agendas = _items(raw, "agendas", where, errors, _parse_agenda, "name", errors=errors)
    _unique(company.users or (), "extension", "extension", errors)
    _unique(company.numbers or (), "number", "number", errors)
    return company


def _parse_document(document: Any) -> tuple[list[_Pbx], list[_Company]]:
    try:
        document = _object(document, _DOCUMENT_KEYS, ["companies"])
    except _Invalid as exc:
        raise DirectoryError([f"the document: {exc}"]) from None
    errors: list[str] = []
    pbxes: list[_Pbx] = _items(document, "pbxes", "", errors, _parse_pbx, "name") or []
    _unique(pbxes, "name", "PBX", errors)
    companies: list[_Company] = (
        _items(document, "companies", "", errors, _parse_company, "slug", errors=errors) or []
    )
    _unique(companies, "slug", "slug", errors)
    # The API names a company by slug or name, case-insensitively: two spellings would be ambiguous.
    _unique((_Named(c.where, c.given["name"].lower()) for c in companies), "name", "name", errors)
    _unique(
        (t for c in companies for u in c.users or () for t in u.terminals or ()),
        "mac",
        "MAC",
        errors,
    )
    _unique((a for c in companies for a in c.agendas or ()), "name", "agenda", errors)
    if errors:
        raise DirectoryError(errors)
    return pbxes, companies


# Writing: one query per kind to read what exists, bulk writes for what differs.


def _save(
    model: type[_Row],
    counts: Counts,
    existing: Mapping[Any, _Row],
    wanted: Mapping[Any, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Creates the missing rows and updates, field by field, those that differ; `wanted` maps
    each key to (fields for a new row, fields to keep in step on an existing one)."""
    to_create: list[_Row] = []
    to_update: list[_Row] = []
    changed_fields: set[str] = set()
    for key, (create, update) in wanted.items():
        obj = existing.get(key)
        if obj is None:
            to_create.append(model(**create))
            continue
        changed = [name for name, value in update.items() if getattr(obj, name) != value]
        if not changed:
            counts.unchanged += 1
            continue
        for name in changed:
            setattr(obj, name, update[name])
        to_update.append(obj)
        changed_fields.update(changed)
    model._default_manager.bulk_create(to_create, batch_size=BATCH_SIZE)
    if to_update:
        model._default_manager.bulk_update(to_update, sorted(changed_fields), batch_size=BATCH_SIZE)
    counts.created += len(to_create)
    counts.updated += len(to_update)


def _delete(model: type[models.Model], counts: Counts, pks: list[int]) -> None:
    for start in range(0, len(pks), BATCH_SIZE):
        model._default_manager.filter(pk__in=pks[start : start + BATCH_SIZE]).delete()
    counts.deleted += len(pks)


class _Loader:
    def __init__(
        self,
        pbxes: list[_Pbx],
        companies: list[_Company],
        *,
        prune: bool,
        report: DirectoryReport,
    ) -> None:
        self.pbxes = pbxes
        self.companies = companies
        self.prune = prune
        self.report = report
        self.queues = [(c, q) for c in companies for q in c.queues or ()]
        self.users = [(c, u) for c in companies for u in c.users or ()]
        self.terminals = [(u, t) for _c, u in self.users for t in u.terminals or ()]
        self.agendas = [(c, a) for c in companies for a in c.agendas or ()]

    def run(self) -> None:
        self._check_owners()
        self._save_pbxes()
        self._save_companies()
        self._save_departments()
        self._save_queues()
        self._save_users()
        self._save_memberships()
        self._save_terminals()
        self._save_numbers()
        self._save_agendas()
        if self.prune:
            self._prune_users()  # memberships and terminals of pruned users go first, counted
            self._prune_departments()
            self._prune_numbers()
            self._prune_phones()

    def _check_owners(self) -> None:
        slugs = [c.slug for c in self.companies]
        names = {c.given["name"].lower(): c for c in self.companies}
        errors = [
            f"{names[lname].where}: name '{names[lname].given['name']}' is already used by "
            f"company '{slug}'"
            for lname, slug in Company.objects.annotate(lname=Lower("name"))
            .filter(lname__in=list(names))
            .exclude(slug__in=slugs)
            .values_list("lname", "slug")
        ]
        errors += self._unknown_pbxes()
        stored = {
            c.slug: c.pbx_key for c in Company.objects.filter(slug__in=slugs).only("slug", "pbx")
        }
        # The PBX each company of the file is on once loaded: a key left out keeps the stored one.
        self.pbx_of: dict[str, str] = {
            c.slug: (
                (c.given["pbx_id"] or DEFAULT_PBX)
                if "pbx_id" in c.given
                else stored.get(c.slug, DEFAULT_PBX)
            )
            for c in self.companies
        }
        errors += self._dnd_prefix_clashes(slugs)
        self.existing_queues = {
            (q.company.slug, q.name): q
            for q in Queue.objects.filter(company__slug__in=slugs).select_related("company")
        }
        errors += self._queue_clashes(slugs)
        self.existing_terminals = {
            t.mac: t
            for t in Terminal.objects.filter(
                mac__in=[t.mac for _u, t in self.terminals]
            ).select_related("user__company")
        }
        company_of = {id(u): c for c, u in self.users}
        for user, terminal in self.terminals:
            terminal_owner = self.existing_terminals.get(terminal.mac)
            if (
                terminal_owner is not None
                and terminal_owner.user
                and terminal_owner.user.company.slug != company_of[id(user)].slug
            ):
                errors.append(
                    f"{terminal.where}: MAC {terminal_owner.mac_display} already belongs to "
                    f"extension {terminal_owner.user.extension} of company "
                    f"'{terminal_owner.user.company.slug}'"
                )
        errors += self._interface_clashes(company_of)
        self.existing_agendas = {
            a.name: a
            for a in Agenda.objects.filter(
                name__in=[a.name for _c, a in self.agendas]
            ).select_related("company")
        }
        for company, agenda in self.agendas:
            agenda_owner = self.existing_agendas.get(agenda.name)
            if (
                agenda_owner is not None
                and agenda_owner.company
                and agenda_owner.company.slug != company.slug
            ):
                errors.append(
                    f"{agenda.where}: agenda {agenda.name} already belongs to company "
                    f"'{agenda_owner.company.slug}'"
                )
        if errors:
            raise DirectoryError(errors)

    def _dnd_prefix_clashes(self, slugs: list[str]) -> list[str]:
        """A DND prefix separates one company's DND keys from the others' on its PBX (the keys
        live in that PBX's AstDB and hints): never shared there, ignoring case."""
        errors = []
        wanted: dict[tuple[str, str], _Company] = {}
        for company in self.companies:
            if not company.given.get("dnd_prefix"):
                continue
            key = (self.pbx_of[company.slug], company.given["dnd_prefix"].lower())
            if key in wanted:
                errors.append(
                    f"{company.where}: dnd_prefix {key[1]} is listed twice for PBX '{key[0]}' "
                    f"(also {wanted[key].where})"
                )
            else:
                wanted[key] = company
        prefixes = sorted({lprefix for _pbx, lprefix in wanted})
        for stored in (
            Company.objects.annotate(lprefix=Lower("dnd_prefix"))
            .filter(lprefix__in=prefixes)
            .exclude(slug__in=slugs)
            .only("slug", "dnd_prefix", "pbx")
        ):
            found = wanted.get((stored.pbx_key, stored.dnd_prefix.lower()))
            if found is not None:
                errors.append(
                    f"{found.where}: dnd_prefix '{stored.dnd_prefix}' is already used by "
                    f"company '{stored.slug}' on PBX '{stored.pbx_key}'"
                )
        return errors

    def _unknown_pbxes(self) -> list[str]:
        """A company names a PBX of the file or of the database."""
        named = {c.given["pbx_id"] for c in self.companies if c.given.get("pbx_id")}
        known = {p.name for p in self.pbxes}
        known.update(Pbx.objects.filter(name__in=named - known).values_list("name", flat=True))
        return [
            f"{c.where}: pbx '{c.given['pbx_id']}' is neither in the file's pbxes nor in the "
            "database"
            for c in self.companies
            if c.given.get("pbx_id") and c.given["pbx_id"] not in known
        ]

    def _queue_clashes(self, slugs: list[str]) -> list[str]:
        """A queue name is one queue on a PBX (live state and history are keyed by it), on the
        PBX each company will be on: a company that moves takes all its queues along."""
        listed = {(c.slug, q.name) for c, q in self.queues}
        names = {name for _slug, name in listed} | {name for _slug, name in self.existing_queues}
        # (PBX, queue name) → (company slug, where in the file; None for a stored queue).
        holder: dict[tuple[str, str], tuple[str, str | None]] = {
            (pbx, name): (slug, None)
            for pbx, name, slug in Queue.objects.filter(name__in=names)
            .exclude(company__slug__in=slugs)
            .values_list("pbx", "name", "company__slug")
        }
        moving = []
        for (slug, name), stored in self.existing_queues.items():
            if (slug, name) in listed:
                continue
            if stored.pbx == self.pbx_of[slug]:
                holder[stored.pbx, name] = (slug, None)
            else:
                moving.append((slug, name))
        errors = []
        for company, queue in self.queues:
            pbx = self.pbx_of[company.slug]
            slug, where = holder.setdefault((pbx, queue.name), (company.slug, queue.where))
            if slug == company.slug:
                continue
            if where is None:
                errors.append(
                    f"{queue.where}: queue {queue.name} already belongs to company '{slug}' "
                    f"on PBX '{pbx}'"
                )
            else:
                errors.append(
                    f"{queue.where}: queue {queue.name} is listed twice on PBX '{pbx}' "
                    f"(also {where})"
                )
        where_of = {c.slug: c.where for c in self.companies}
        for company_slug, name in moving:
            pbx = self.pbx_of[company_slug]
            slug, where = holder.setdefault((pbx, name), (company_slug, where_of[company_slug]))
            if slug != company_slug:
                errors.append(
                    f"{where_of[company_slug]}: moving to PBX '{pbx}', its queue {name} clashes "
                    f"with queue {name} of company '{slug}' there"
                    + (f" ({where})" if where else "")
                    + "; a queue name is one queue on a PBX"
                )
        return errors

    def _interface_clashes(self, company_of: dict[int, Any]) -> list[str]:
        """A PBX device belongs to one company: live state and call history are matched by it,
        so a device shared across companies would show one company's calls to the other.
        Another PBX's device of the same name is another device."""
        # (PBX, interface) → (company slug, where in the file) for the file's terminals.
        claimed: dict[tuple[str, str], tuple[str, str]] = {}
        errors = []
        for user, terminal in self.terminals:
            slug = company_of[id(user)].slug
            old = self.existing_terminals.get(terminal.mac)
            interface = terminal.given.get("interface") or (
                old.interface if old is not None else f"PJSIP/{user.extension}"
            )
            key = (self.pbx_of[slug], interface.lower())
            seen = claimed.setdefault(key, (slug, terminal.where))
            if seen[0] != slug:
                errors.append(
                    f"{terminal.where}: interface {interface} is also used by company "
                    f"'{seen[0]}' ({seen[1]}); a device belongs to one company"
                )
        file_macs = {terminal.mac for _u, terminal in self.terminals}
        taken = (
            Terminal.objects.filter(user__isnull=False)
            .exclude(mac__in=file_macs)
            .values_list("interface", "user__company__slug", "user__company__pbx_id")
        )
        staying: dict[tuple[str, str], str] = {}  # stored terminals that keep their PBX
        moving = []  # stored terminals of a company that moves
        for interface, slug, pbx_id in taken:
            # Company.pbx points at Pbx.name: a text, though the stubs type a foreign key an int.
            stored_pbx = str(pbx_id) if pbx_id else DEFAULT_PBX
            pbx = self.pbx_of.get(slug, stored_pbx)
            key = (pbx, interface.lower())
            holder = claimed.get(key)
            if holder is not None and holder[0] != slug:
                errors.append(
                    f"{holder[1]}: interface {interface} already belongs to a terminal of company "
                    f"'{slug}'; a device belongs to one company"
                )
            elif pbx == stored_pbx:
                staying.setdefault(key, slug)
            else:
                moving.append((key, interface, slug))
        where_of = {c.slug: c.where for c in self.companies}
        for key, interface, slug in moving:
            other = staying.setdefault(key, slug)
            if other != slug:
                errors.append(
                    f"{where_of[slug]}: moving to PBX '{key[0]}', its interface {interface} "
                    f"clashes with a terminal of company '{other}' there; a device belongs to "
                    "one company"
                )
        return errors

    def _save_pbxes(self) -> None:
        existing = {p.name: p for p in Pbx.objects.filter(name__in=[p.name for p in self.pbxes])}
        wanted = {p.name: ({"name": p.name, **p.given}, p.given) for p in self.pbxes}
        _save(Pbx, self.report.pbxes, existing, wanted)

    def _save_companies(self) -> None:
        slugs = [c.slug for c in self.companies]
        existing = {c.slug: c for c in Company.objects.filter(slug__in=slugs)}
        wanted = {c.slug: ({"slug": c.slug, **c.given}, c.given) for c in self.companies}
        _save(Company, self.report.companies, existing, wanted)
        self.company_ids = dict(Company.objects.filter(slug__in=slugs).values_list("slug", "pk"))

    def _save_departments(self) -> None:
        ids = list(self.company_ids.values())
        self.existing_departments = {
            (d.company_id, d.name): d for d in Department.objects.filter(company_id__in=ids)
        }
        wanted: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
        for company in self.companies:
            cid = self.company_ids[company.slug]
            for name in company.departments or ():
                wanted[cid, name] = ({"company_id": cid, "name": name}, {})
        self.wanted_departments = wanted
        _save(Department, self.report.departments, self.existing_departments, wanted)
        self.department_ids = {
            (cid, name): pk
            for cid, name, pk in Department.objects.filter(company_id__in=ids).values_list(
                "company_id", "name", "pk"
            )
        }

    def _save_queues(self) -> None:
        self._move_queues()
        wanted = {}
        for company, queue in self.queues:
            # Bulk writes skip Queue.save, which keeps `pbx` in step with the company's.
            update = {**queue.given, "pbx": self.pbx_of[company.slug]}
            wanted[company.slug, queue.name] = (
                {"company_id": self.company_ids[company.slug], "name": queue.name, **update},
                update,
            )
        _save(Queue, self.report.queues, self.existing_queues, wanted)
        self.queue_ids = {
            (cid, name): pk
            for cid, name, pk in Queue.objects.filter(
                company_id__in=list(self.company_ids.values())
            ).values_list("company_id", "name", "pk")
        }

    def _move_queues(self) -> None:
        """The queues of a company that changes PBX go along, those the file leaves out too."""
        moving = [
            queue
            for (slug, _name), queue in self.existing_queues.items()
            if queue.pbx != self.pbx_of[slug]
        ]
        if not moving:
            return
        # Through a placeholder first ('#' is in no PBX name): two companies swapping PBXes would
        # otherwise pass through a duplicate (pbx, name) half-way, and the unique constraint is
        # checked row by row.
        placeholders = [Queue(pk=q.pk, pbx=f"#{q.pk}") for q in moving]
        moved = [Queue(pk=q.pk, pbx=self.pbx_of[q.company.slug]) for q in moving]
        for rows in (placeholders, moved):
            Queue.objects.bulk_update(rows, ["pbx"], batch_size=BATCH_SIZE)
        # The file's own queues are counted (and written again, unchanged) by _save.
        listed = {(c.slug, q.name) for c, q in self.queues}
        self.report.queues.updated += sum((q.company.slug, q.name) not in listed for q in moving)

    def _save_users(self) -> None:
        ids = list(self.company_ids.values())
        self.existing_users = {
            (u.company_id, u.extension): u for u in PbxUser.objects.filter(company_id__in=ids)
        }
        wanted = {}
        for company, user in self.users:
            cid = self.company_ids[company.slug]
            update = dict(user.given)
            if user.has_department:
                update["department_id"] = (
                    self.department_ids[cid, user.department] if user.department else None
                )
            wanted[cid, user.extension] = (
                {"company_id": cid, "extension": user.extension, **update},
                update,
            )
        self.wanted_users = wanted
        _save(PbxUser, self.report.users, self.existing_users, wanted)
        self.user_ids = {
            (cid, extension): pk
            for cid, extension, pk in PbxUser.objects.filter(company_id__in=ids).values_list(
                "company_id", "extension", "pk"
            )
        }

    def _user_id(self, company: _Company, user: _User) -> int:
        return self.user_ids[self.company_ids[company.slug], user.extension]

    def _save_memberships(self) -> None:
        existing = {
            (queue_id, user_id): pk
            for pk, queue_id, user_id in QueueMember.objects.filter(
                user__company_id__in=list(self.company_ids.values())
            ).values_list("pk", "queue_id", "user_id")
        }
        counts = self.report.queue_members
        listed_users: set[int] = set()
        wanted: set[tuple[int, int]] = set()
        for company, user in self.users:
            if user.queues is None:
                continue
            user_id = self._user_id(company, user)
            listed_users.add(user_id)
            cid = self.company_ids[company.slug]
            wanted.update((self.queue_ids[cid, name], user_id) for name in user.queues)
        to_create = [
            QueueMember(queue_id=q, user_id=u) for q, u in wanted if (q, u) not in existing
        ]
        QueueMember.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
        counts.created += len(to_create)
        counts.unchanged += len(wanted) - len(to_create)
        self.existing_memberships = existing
        self.stale_memberships = {
            pk for key, pk in existing.items() if key[1] in listed_users and key not in wanted
        }

    def _save_terminals(self) -> None:
        wanted = {}
        for company, user in self.users:
            user_id = self._user_id(company, user)
            default_interface = f"PJSIP/{user.extension}"
            for terminal in user.terminals or ():
                update = {"user_id": user_id, **terminal.given}
                old = self.existing_terminals.get(terminal.mac)
                if old is not None and old.user_id != user_id and "interface" not in update:
                    update["interface"] = default_interface  # moved: the old user's device is wrong
                create = {"mac": terminal.mac, "interface": default_interface, **update}
                wanted[terminal.mac] = (create, update)
        self.file_macs = set(wanted)
        _save(Terminal, self.report.terminals, self.existing_terminals, wanted)

    def _save_numbers(self) -> None:
        ids = list(self.company_ids.values())
        self.existing_numbers = {
            (n.company_id, n.number): n for n in PublicNumber.objects.filter(company_id__in=ids)
        }
        wanted = {}
        for company in self.companies:
            cid = self.company_ids[company.slug]
            for number in company.numbers or ():
                create = {"company_id": cid, "number": number.number, "name": number.number}
                wanted[cid, number.number] = ({**create, **number.given}, number.given)
        self.wanted_numbers = wanted
        _save(PublicNumber, self.report.numbers, self.existing_numbers, wanted)

    def _save_agendas(self) -> None:
        wanted = {}
        for company, agenda in self.agendas:
            update = {"company_id": self.company_ids[company.slug]}
            wanted[agenda.name] = ({"name": agenda.name, **update}, update)
        _save(Agenda, self.report.agendas, self.existing_agendas, wanted)
        agenda_ids = dict(Agenda.objects.filter(name__in=list(wanted)).values_list("name", "pk"))
        self.listed_phones = {
            agenda_ids[a.name]: a.phones for _c, a in self.agendas if a.phones is not None
        }
        merged = phones_merge(self.listed_phones)
        self.report.agenda_phones.created += merged.created
        self.report.agenda_phones.updated += merged.renamed
        self.report.agenda_phones.unchanged += merged.unchanged

    def _company_ids_listing(self, attribute: str) -> set[int]:
        return {
            self.company_ids[c.slug] for c in self.companies if getattr(c, attribute) is not None
        }

    def _prune_users(self) -> None:
        listed = self._company_ids_listing("users")
        pruned = [
            user.pk
            for key, user in self.existing_users.items()
            if key[0] in listed and key not in self.wanted_users
        ]
        gone = set(pruned)
        memberships = [
            pk
            for (_queue_id, user_id), pk in self.existing_memberships.items()
            if user_id in gone or pk in self.stale_memberships
        ]
        _delete(QueueMember, self.report.queue_members, memberships)
        listing_terminals = gone | {
            self._user_id(c, u) for c, u in self.users if u.terminals is not None
        }
        terminals = [
            pk
            for pk, mac, user_id in Terminal.objects.filter(
                user__company_id__in=list(self.company_ids.values())
            ).values_list("pk", "mac", "user_id")
            if user_id in listing_terminals and mac not in self.file_macs
        ]
        _delete(Terminal, self.report.terminals, terminals)
        _delete(PbxUser, self.report.users, pruned)

    def _prune_departments(self) -> None:
        listed = self._company_ids_listing("departments")
        stale = [
            department.pk
            for key, department in self.existing_departments.items()
            if key[0] in listed and key not in self.wanted_departments
        ]
        _delete(Department, self.report.departments, stale)

    def _prune_numbers(self) -> None:
        listed = self._company_ids_listing("numbers")
        stale = [
            number.pk
            for key, number in self.existing_numbers.items()
            if key[0] in listed and key not in self.wanted_numbers
        ]
        _delete(PublicNumber, self.report.numbers, stale)

    def _prune_phones(self) -> None:
        """An agenda listing its phones keeps only those: the others are deleted."""
        stored = AgendaPhone.objects.filter(agenda_id__in=list(self.listed_phones))
        stale = [
            pk
            for pk, agenda_id, number in stored.values_list("pk", "agenda_id", "number")
            if number not in self.listed_phones[agenda_id]
        ]
        _delete(AgendaPhone, self.report.agenda_phones, stale)
