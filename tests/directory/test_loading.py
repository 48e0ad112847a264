"""Directory import: create, update, idempotence, validation, prune, and the load_directory command."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agenda.models import Agenda, AgendaPhone
from pbx.directory.loading import DirectoryError, directory_load
from pbx.models import Company, Department, PbxUser, PublicNumber, Queue, QueueMember
from terminals.models import Terminal

BASE_DIR = Path(__file__).resolve().parents[2]
MODELS = (
    Company,
    Department,
    Queue,
    PbxUser,
    QueueMember,
    Terminal,
    PublicNumber,
    Agenda,
    AgendaPhone,
)

DOCUMENT: dict[str, Any] = {
    "companies": [
        {
            "slug": "onfarma",
            "name": "ONFARMA",
            "dial_context": "from-internal",
            "departments": ["Soporte", "Ventas"],
            "queues": [
                {
                    "name": "q-soporte",
                    "service_level_seconds": 30,
                    "alarm": {
                        "waiting_calls": 3,
                        "wait_seconds": 45,
                        "service_ratio_below": 80,
                        "abandoned_ratio_below": None,
                    },
                },
                {"name": "q-ventas"},
            ],
            "users": [
                {
                    "extension": "200",
                    "name": "Ana García",
                    "mobile": "+34 600 111 222",
                    "department": "Soporte",
                    "queues": ["q-soporte", "q-ventas"],
                    "terminals": [
                        {"mac": "00:15:65:AA:BB:CC", "type": "desk", "interface": "PJSIP/200"},
                        {"mac": "0a0b0c0d0e0f", "type": "webphone", "interface": "PJSIP/200w"},
                    ],
                },
                {
                    "extension": "201",
                    "name": "Luis Pérez",
                    "department": "Ventas",
                    "queues": ["q-ventas"],
                    "terminals": [{"mac": "00-15-65-00-00-01"}],
                },
                {"extension": "202", "name": "Eva Sanz"},
            ],
            "numbers": [
                {"name": "primari", "alias": "ONFARMA", "number": "937060370", "in_use": True},
                {"name": "fax", "number": "93 706 03 71"},
            ],
            "agendas": [
                {
                    "name": "clientes",
                    "phones": [
                        {"name": "Farmacia Sol", "number": "+34 931 234 567"},
                        {"name": "Farmacia Luna", "number": "(93) 123-45-67"},
                    ],
                }
            ],
        },
        {
            "slug": "acme",
            "name": "Acme",
            "time_zone": "Atlantic/Canary",
            "users": [
                {
                    "extension": "200",
                    "name": "Otra Ana",
                    # a device belongs to one company: not onfarma's default PJSIP/200
                    "terminals": [{"mac": "001565000002", "interface": "PJSIP/acme-200"}],
                }
            ],
        },
    ]
}


def document() -> dict[str, Any]:
    return copy.deepcopy(DOCUMENT)


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every directory table, to prove that nothing changed."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


def counts(report) -> dict[str, tuple[int, int, int, int]]:
    return {
        name: (c.created, c.updated, c.unchanged, c.deleted) for name, c in report.kinds().items()
    }


@pytest.mark.django_db
def test_it_creates_the_directory_with_defaults():
    report = directory_load(document())

    assert counts(report) == {
        "pbxes": (0, 0, 0, 0),
        "companies": (2, 0, 0, 0),
        "departments": (2, 0, 0, 0),
        "queues": (2, 0, 0, 0),
        "users": (4, 0, 0, 0),
        "queue_members": (3, 0, 0, 0),
        "terminals": (4, 0, 0, 0),
        "numbers": (2, 0, 0, 0),
        "agendas": (1, 0, 0, 0),
        "agenda_phones": (2, 0, 0, 0),
    }
    onfarma = Company.objects.get(slug="onfarma")
    assert (onfarma.name, onfarma.time_zone, onfarma.dial_context) == (
        "ONFARMA",
        "Europe/Madrid",
        "from-internal",
    )
    assert Company.objects.get(slug="acme").time_zone == "Atlantic/Canary"
    soporte = Queue.objects.get(name="q-soporte")
    assert (
        soporte.company,
        soporte.service_level_seconds,
        soporte.alarm_waiting_calls,
        soporte.alarm_wait_seconds,
        soporte.alarm_service_ratio_below,
        soporte.alarm_abandoned_ratio_below,
    ) == (onfarma, 30, 3, 45, Decimal("80.00"), None)
    ventas = Queue.objects.get(name="q-ventas")
    assert (
        ventas.service_level_seconds,
        ventas.alarm_waiting_calls,
        ventas.alarm_wait_seconds,
    ) == (
        20,
        5,
        60,
    )
    ana = PbxUser.objects.get(company=onfarma, extension="200")
    assert (ana.name, ana.mobile, ana.department.name) == ("Ana García", "+34600111222", "Soporte")
    assert sorted(ana.queues.values_list("name", flat=True)) == ["q-soporte", "q-ventas"]
    assert PbxUser.objects.get(company=onfarma, extension="202").department is None
    assert {(t.mac, t.type, t.interface, t.user.extension) for t in Terminal.objects.all()} == {
        ("001565aabbcc", "desk", "PJSIP/200", "200"),
        ("0a0b0c0d0e0f", "webphone", "PJSIP/200w", "200"),
        ("001565000001", "desk", "PJSIP/201", "201"),
        ("001565000002", "desk", "PJSIP/acme-200", "200"),
    }
    assert Terminal.objects.get(mac="001565000002").user.company.slug == "acme"
    assert list(
        PublicNumber.objects.filter(company=onfarma).values_list(
            "name", "alias", "number", "in_use"
        )
    ) == [("fax", "", "937060371", False), ("primari", "ONFARMA", "937060370", True)]
    agenda = Agenda.objects.get(name="clientes")
    assert agenda.company == onfarma
    assert dict(agenda.phones.values_list("number", "name")) == {
        "+34931234567": "Farmacia Sol",
        "931234567": "Farmacia Luna",
    }


@pytest.mark.django_db
def test_a_second_run_changes_nothing():
    directory_load(document())
    before = snapshot()

    with CaptureQueriesContext(connection) as queries:
        report = directory_load(document())

    assert not report.changed
    assert all(c.created == c.updated == c.deleted == 0 for c in report.kinds().values())
    assert counts(report)["users"] == (0, 0, 4, 0)
    assert counts(report)["agenda_phones"] == (0, 0, 2, 0)
    writes = [
        q["sql"] for q in queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
    ]
    assert writes == []
    assert snapshot() == before


@pytest.mark.django_db
def test_a_second_run_with_prune_changes_nothing():
    directory_load(document())
    before = snapshot()

    report = directory_load(document(), prune=True)

    assert not report.changed
    assert snapshot() == before


@pytest.mark.django_db
def test_it_updates_only_what_changed():
    directory_load(document())
    doc = document()
    onfarma = doc["companies"][0]
    onfarma["name"] = "OnFarma S.L."
    onfarma["time_zone"] = "Europe/Lisbon"
    onfarma["queues"][0]["alarm"] = {"service_ratio_below": None, "abandoned_ratio_below": 12.5}
    ana = onfarma["users"][0]
    ana["name"] = "Ana García López"
    ana["department"] = None
    ana["terminals"][0]["type"] = "softphone"
    onfarma["users"][1]["mobile"] = "600 999 888"
    onfarma["numbers"][1]["in_use"] = True
    onfarma["agendas"][0]["phones"][0]["name"] = "Farmacia del Sol"

    report = directory_load(doc)

    assert counts(report) == {
        "pbxes": (0, 0, 0, 0),
        "companies": (0, 1, 1, 0),
        "departments": (0, 0, 2, 0),
        "queues": (0, 1, 1, 0),
        "users": (0, 2, 2, 0),
        "queue_members": (0, 0, 3, 0),
        "terminals": (0, 1, 3, 0),
        "numbers": (0, 1, 1, 0),
        "agendas": (0, 0, 1, 0),
        "agenda_phones": (0, 1, 1, 0),
    }
    company = Company.objects.get(slug="onfarma")
    assert (company.name, company.time_zone) == ("OnFarma S.L.", "Europe/Lisbon")
    queue = Queue.objects.get(name="q-soporte")
    # Rules left out of "alarm" keep their stored values; null switches one off.
    assert (
        queue.alarm_waiting_calls,
        queue.alarm_wait_seconds,
        queue.alarm_service_ratio_below,
        queue.alarm_abandoned_ratio_below,
    ) == (3, 45, None, Decimal("12.50"))
    user = PbxUser.objects.get(company=company, extension="200")
    assert (user.name, user.department) == ("Ana García López", None)
    assert PbxUser.objects.get(company=company, extension="201").mobile == "600999888"
    assert Terminal.objects.get(mac="001565aabbcc").type == "softphone"
    assert PublicNumber.objects.get(number="937060371").in_use is True
    assert AgendaPhone.objects.get(number="+34931234567").name == "Farmacia del Sol"


@pytest.mark.django_db
def test_keys_left_out_keep_what_the_admin_set():
    directory_load(document())
    Queue.objects.filter(name="q-ventas").update(alarm_waiting_calls=9, service_level_seconds=15)
    Company.objects.filter(slug="acme").update(dial_context="acme-out")
    PbxUser.objects.filter(extension="202").update(mobile="600123123")
    Terminal.objects.filter(mac="001565000001").update(type="softphone", interface="SIP/201")

    report = directory_load(document())

    assert not report.changed
    queue = Queue.objects.get(name="q-ventas")
    assert (queue.alarm_waiting_calls, queue.service_level_seconds) == (9, 15)
    assert Company.objects.get(slug="acme").dial_context == "acme-out"
    assert PbxUser.objects.get(extension="202").mobile == "600123123"
    terminal = Terminal.objects.get(mac="001565000001")
    assert (terminal.type, terminal.interface) == ("softphone", "SIP/201")


@pytest.mark.django_db
def test_it_moves_a_terminal_to_another_user_of_the_company():
    directory_load(document())
    doc = document()
    users = doc["companies"][0]["users"]
    users[2]["terminals"] = [users[1].pop("terminals")[0]]

    report = directory_load(doc)

    assert counts(report)["terminals"] == (0, 1, 3, 0)
    terminal = Terminal.objects.get(mac="001565000001")
    assert (terminal.user.extension, terminal.interface) == ("202", "PJSIP/202")


@pytest.mark.django_db
def test_it_claims_a_terminal_and_an_agenda_that_nobody_owns():
    Terminal.objects.create(mac="001565aabbcc", interface="PJSIP/999", type="desk")
    Agenda.objects.create(name="clientes")

    report = directory_load(document())

    assert counts(report)["terminals"] == (3, 1, 0, 0)
    assert counts(report)["agendas"] == (0, 1, 0, 0)
    assert Terminal.objects.get(mac="001565aabbcc").user.extension == "200"
    assert Agenda.objects.get(name="clientes").company.slug == "onfarma"


@pytest.mark.django_db
def test_without_prune_objects_absent_from_the_file_are_left_alone():
    directory_load(document())
    before = snapshot()
    doc = document()
    onfarma = doc["companies"][0]
    onfarma["departments"] = ["Soporte"]
    onfarma["users"] = [u for u in onfarma["users"] if u["extension"] == "200"]
    onfarma["users"][0]["department"] = "Soporte"
    onfarma["users"][0]["queues"] = ["q-soporte"]
    onfarma["users"][0]["terminals"] = []
    onfarma["numbers"] = []
    onfarma["agendas"][0]["phones"] = []

    report = directory_load(doc)

    assert not report.changed
    assert snapshot() == before


@pytest.mark.django_db
def test_prune_deletes_what_the_lists_leave_out():
    directory_load(document())
    doc = document()
    onfarma = doc["companies"][0]
    onfarma["departments"] = ["Soporte"]
    onfarma["users"] = [u for u in onfarma["users"] if u["extension"] in ("200", "202")]
    onfarma["users"][0]["queues"] = ["q-soporte"]
    onfarma["users"][0]["terminals"] = onfarma["users"][0]["terminals"][:1]
    onfarma["numbers"] = onfarma["numbers"][:1]
    onfarma["agendas"][0]["phones"] = onfarma["agendas"][0]["phones"][:1]
    onfarma["queues"] = onfarma["queues"][:1]

    report = directory_load(doc, prune=True)

    assert report.users.deleted == 1
    assert report.departments.deleted == 1
    assert report.queue_members.deleted == 2  # 200 from q-ventas, and 201's own membership
    assert report.terminals.deleted == 2  # 200's webphone and 201's desk phone
    assert report.numbers.deleted == 1
    assert report.agenda_phones.deleted == 1
    company = Company.objects.get(slug="onfarma")
    assert sorted(company.users.values_list("extension", flat=True)) == ["200", "202"]
    assert list(company.departments.values_list("name", flat=True)) == ["Soporte"]
    assert set(QueueMember.objects.values_list("queue__name", "user__extension")) == {
        ("q-soporte", "200")
    }
    assert set(Terminal.objects.values_list("mac", flat=True)) == {"001565aabbcc", "001565000002"}
    assert list(company.numbers.values_list("number", flat=True)) == ["937060370"]
    assert list(AgendaPhone.objects.values_list("number", flat=True)) == ["+34931234567"]
    # Queues and agendas hold statistics and API-fed phones: prune keeps them.
    assert Queue.objects.filter(name="q-ventas").exists()
    # The other company is untouched.
    assert PbxUser.objects.filter(company__slug="acme").count() == 1
    assert "1 deleted" in str(report)


@pytest.mark.django_db
def test_prune_leaves_alone_the_lists_the_file_does_not_have():
    directory_load(document())
    before = snapshot()
    doc = document()
    onfarma = doc["companies"][0]
    for key in ("departments", "numbers", "agendas"):
        del onfarma[key]
    for user in onfarma["users"]:
        user.pop("queues", None)
        user.pop("terminals", None)
        user.pop("department", None)

    report = directory_load(doc, prune=True)

    assert not report.changed
    assert snapshot() == before


def _set(path: str, value: Any):
    """A mutation of the document: sets `companies.0.users.1.name`-style paths (`-` deletes)."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key = int(last) if isinstance(node, list) else last
        if value == "-":
            del node[key]
        else:
            node[key] = value

    return mutate


def _append(path: str, value: Any):
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        node.append(value)

    return mutate


C0 = "companies[0] (onfarma)"
U0 = f"{C0} users[0] (extension 200)"

INVALID = [
    pytest.param(_set("companies", "x"), "the document: companies must be a list", id="not-list"),
    pytest.param(_set("companys", []), "the document: unknown key 'companys'", id="doc-key"),
    pytest.param(_set("companies", "-"), "the document: companies is required", id="no-companies"),
    pytest.param(_set("companies.0", 7), "companies[0]: must be an object", id="company-type"),
    pytest.param(
        _set("companies.0.timezone", "UTC"),
        f"{C0}: unknown key 'timezone' (did you mean 'time_zone'?)",
        id="company-key",
    ),
    pytest.param(
        _set("companies.0.slug", "On Farma"),
        "companies[0] (On Farma): slug must be lower-case letters",
        id="slug",
    ),
    pytest.param(_set("companies.0.name", "-"), f"{C0}: name is required", id="company-name"),
    pytest.param(_set("companies.0.name", "  "), f"{C0}: name must not be empty", id="blank-name"),
    pytest.param(
        _set("companies.0.time_zone", "Europe/Madird"),
        f"{C0}: time_zone 'Europe/Madird' is not a known time zone",
        id="time-zone",
    ),
    pytest.param(
        _set("companies.0.dial_context", "from internal"),
        f"{C0}: dial_context must not contain blanks",
        id="dial-context",
    ),
    pytest.param(
        _set("companies.1.name", "onfarma"),
        "companies[1] (acme): name onfarma is listed twice (also companies[0] (onfarma))",
        id="duplicate-company-name",
    ),
    pytest.param(
        _set("companies.1.slug", "onfarma"),
        "companies[1] (onfarma): slug onfarma is listed twice",
        id="duplicate-slug",
    ),
    pytest.param(
        _append("companies.0.departments", "Soporte"),
        f"{C0} departments[2] (Soporte): department Soporte is listed twice "
        f"(also {C0} departments[0] (Soporte))",
        id="duplicate-department",
    ),
    pytest.param(
        _append("companies.0.departments", 3), f"{C0} departments[2] (3): must be a text", id="dept"
    ),
    pytest.param(
        _set("companies.0.queues.0.service_level_seconds", 0),
        f"{C0} queues[0] (q-soporte): service_level_seconds must be a whole number from 1 to 86400",
        id="service-level",
    ),
    pytest.param(
        _set("companies.0.queues.0.short_abandon_seconds", -1),
        f"{C0} queues[0] (q-soporte): short_abandon_seconds must be a whole number from 0 to 3600",
        id="short-abandon",
    ),
    pytest.param(
        _set("companies.0.queues.0.display_name", "Soporte\ntécnico"),
        f"{C0} queues[0] (q-soporte): display_name contains control characters",
        id="display-name",
    ),
    pytest.param(
        _set("companies.0.queues.0.alarm.wait_seconds", "60"),
        f"{C0} queues[0] (q-soporte): alarm wait_seconds must be a whole number",
        id="alarm-seconds",
    ),
    pytest.param(
        _set("companies.0.queues.0.alarm.service_ratio_below", 120),
        f"{C0} queues[0] (q-soporte): alarm service_ratio_below must be a percentage from 0 to 100",
        id="alarm-ratio",
    ),
    pytest.param(
        _set("companies.0.queues.0.alarm.calls", 1),
        f"{C0} queues[0] (q-soporte): alarm unknown key 'calls'",
        id="alarm-key",
    ),
    pytest.param(
        _set("companies.0.queues.1.name", "q\nventas"),
        f"{C0} queues[1] (q?ventas): name contains control characters",
        id="queue-control",
    ),
    pytest.param(
        _set("companies.1.queues", [{"name": "q-soporte"}]),
        "companies[1] (acme) queues[0] (q-soporte): queue q-soporte is listed twice on PBX "
        f"'default' (also {C0} queues[0] (q-soporte))",
        id="duplicate-queue",
    ),
    pytest.param(
        _set("companies.0.users.0.extension", "20x"),
        f"{C0} users[0] (extension 20x): extension must be 1 to 20 digits",
        id="extension",
    ),
    pytest.param(
        _set("companies.0.users.0.extension", "-"),
        f"{C0} users[0]: extension is required",
        id="no-extension",
    ),
    pytest.param(_set("companies.0.users.0.name", "-"), f"{U0}: name is required", id="user-name"),
    pytest.param(
        _set("companies.0.users.0.name", "Ana\x00"),
        f"{U0}: name contains control characters",
        id="user-control",
    ),
    pytest.param(
        _set("companies.0.users.0.mobil", "600"),
        f"{U0}: unknown key 'mobil' (did you mean 'mobile'?)",
        id="user-key",
    ),
    pytest.param(
        _set("companies.0.users.0.mobile", "móvil"),
        f"{U0}: mobile 'móvil' is not a valid phone number",
        id="mobile",
    ),
    pytest.param(
        _set("companies.0.users.0.department", "Marketing"),
        f"{U0}: department 'Marketing' is not one of the company's departments",
        id="unknown-department",
    ),
    pytest.param(
        _set("companies.0.users.0.queues", ["q-soporte", "q-nope"]),
        f"{U0}: queue 'q-nope' is not one of the company's queues",
        id="unknown-queue",
    ),
    pytest.param(
        _set("companies.1.users.0.queues", ["q-soporte"]),
        "companies[1] (acme) users[0] (extension 200): queue 'q-soporte' is not one of the "
        "company's queues",
        id="other-company-queue",
    ),
    pytest.param(
        _set("companies.0.users.0.queues", ["q-soporte", "q-soporte"]),
        f"{U0}: queue 'q-soporte' is listed twice",
        id="queue-twice",
    ),
    pytest.param(
        _set("companies.0.users.2.extension", "200"),
        f"{C0} users[2] (extension 200): extension 200 is listed twice (also {U0})",
        id="duplicate-extension",
    ),
    pytest.param(
        _set("companies.0.users.0.terminals.0.mac", "00:15:65:AA:BB:ZZ"),
        f"{U0} terminals[0] (00:15:65:AA:BB:ZZ): mac must be 12 hex digits",
        id="mac",
    ),
    pytest.param(
        _set("companies.0.users.0.terminals.0.type", "fax"),
        f"{U0} terminals[0] (00:15:65:AA:BB:CC): type must be one of webphone, desk, softphone",
        id="terminal-type",
    ),
    pytest.param(
        _set("companies.0.users.0.terminals.0.interface", "200"),
        f"{U0} terminals[0] (00:15:65:AA:BB:CC): interface must look like TECHNOLOGY/resource",
        id="interface",
    ),
    pytest.param(
        _set("companies.1.users.0.terminals.0.mac", "00.15.65.aa.bb.cc"),
        "companies[1] (acme) users[0] (extension 200) terminals[0] (00.15.65.aa.bb.cc): "
        f"MAC 001565aabbcc is listed twice (also {U0} terminals[0] (00:15:65:AA:BB:CC))",
        id="duplicate-mac",
    ),
    pytest.param(
        _set("companies.0.numbers.0.number", "93x"),
        f"{C0} numbers[0] (93x): number '93x' is not a valid phone number",
        id="number",
    ),
    pytest.param(
        _set("companies.0.numbers.0.in_use", "yes"),
        f"{C0} numbers[0] (937060370): in_use must be true or false",
        id="in-use",
    ),
    pytest.param(
        _set("companies.0.numbers.1.number", "93 706 03 70"),
        f"{C0} numbers[1] (93 706 03 70): number 937060370 is listed twice",
        id="duplicate-number",
    ),
    pytest.param(
        _set("companies.0.agendas.0.phones.1.number", "abc"),
        f"{C0} agendas[0] (clientes) phones[1] (abc): number 'abc' is not a valid phone number",
        id="phone",
    ),
    pytest.param(
        _set("companies.0.agendas.0.phones.1.number", "+34931234567"),
        f"{C0} agendas[0] (clientes) phones[1] (+34931234567): number +34931234567 is listed twice",
        id="duplicate-phone",
    ),
    pytest.param(
        _set("companies.1.agendas", [{"name": "clientes"}]),
        "companies[1] (acme) agendas[0] (clientes): agenda clientes is listed twice",
        id="duplicate-agenda",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("mutate", "message"), INVALID)
def test_it_rejects_bad_input_naming_the_object_and_writes_nothing(mutate, message):
    directory_load({"companies": [{"slug": "other", "name": "Other"}]})
    before = snapshot()
    doc = document()
    mutate(doc)

    with pytest.raises(DirectoryError) as caught:
        directory_load(doc, prune=True)

    assert message in str(caught.value)
    assert snapshot() == before


@pytest.mark.django_db
def test_it_rejects_a_document_that_is_not_an_object():
    with pytest.raises(DirectoryError, match="the document: must be an object"):
        directory_load([])  # type: ignore[arg-type]


@pytest.mark.django_db
def test_it_lists_every_problem_at_once():
    doc = document()
    doc["companies"][0]["users"][0]["extension"] = "20x"
    doc["companies"][0]["numbers"][0]["number"] = "93x"
    doc["companies"][1]["time_zone"] = "Mars/Olympus"

    with pytest.raises(DirectoryError) as caught:
        directory_load(doc)

    assert len(caught.value.errors) == 3
    assert str(caught.value).startswith("3 errors in the directory:")
    assert Company.objects.count() == 0


@pytest.fixture
def other(make_company, make_user, make_queue):
    """A company outside the file that already owns a queue, a MAC and an agenda of it."""
    company = make_company(slug="other", name="Other")
    user = make_user(company, "500", terminals=[])
    Terminal.objects.create(mac="0a0b0c0d0e0f", user=user, interface="PJSIP/500")
    make_queue(company, "q-ventas")
    Agenda.objects.create(name="clientes", company=company)
    return company


@pytest.mark.django_db
@pytest.mark.parametrize(
    "message",
    [
        f"{C0} queues[1] (q-ventas): queue q-ventas already belongs to company 'other' on PBX "
        "'default'",
        f"{U0} terminals[1] (0a0b0c0d0e0f): MAC 0a:0b:0c:0d:0e:0f already belongs to extension "
        "500 of company 'other'",
        f"{C0} agendas[0] (clientes): agenda clientes already belongs to company 'other'",
    ],
)
def test_it_rejects_what_another_company_owns(other, message):
    before = snapshot()

    with pytest.raises(DirectoryError) as caught:
        directory_load(document())

    assert message in caught.value.errors
    assert snapshot() == before


@pytest.mark.django_db
def test_it_rejects_a_company_name_that_another_company_uses(make_company):
    make_company(slug="onfarma-old", name="OnFarma")
    before = snapshot()

    with pytest.raises(DirectoryError) as caught:
        directory_load(document())

    assert caught.value.errors == [f"{C0}: name 'ONFARMA' is already used by company 'onfarma-old'"]
    assert snapshot() == before


@pytest.mark.django_db
def test_a_thousand_users_load_in_a_few_bulk_queries():
    users = [
        {
            "extension": str(1000 + i),
            "name": f"Usuario {i}",
            "mobile": f"+34600{i:06d}",
            "department": f"D{i % 10}",
            "queues": [f"big-{i % 20}", f"big-{(i + 1) % 20}"],
            "terminals": [
                {"mac": f"02aa{i:08x}"},
                {"mac": f"02bb{i:08x}", "type": "webphone", "interface": f"PJSIP/{1000 + i}w"},
            ],
        }
        for i in range(1000)
    ]
    doc = {
        "companies": [
            {
                "slug": "big",
                "name": "Big",
                "departments": [f"D{i}" for i in range(10)],
                "queues": [{"name": f"big-{i}"} for i in range(20)],
                "users": users,
            }
        ]
    }

    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        report = directory_load(doc)
    elapsed = time.perf_counter() - started

    assert (report.users.created, report.terminals.created, report.queue_members.created) == (
        1000,
        2000,
        2000,
    )
    assert len(queries) < 100  # SQLite splits bulk inserts by its parameter limit
    assert elapsed < 10
    with CaptureQueriesContext(connection) as queries:
        assert not directory_load(doc, prune=True).changed
    assert len(queries) < 30


@pytest.mark.django_db
def test_the_command_prints_the_report(tmp_path, capsys):
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(document()), encoding="utf-8")

    call_command("load_directory", str(path))
    call_command("load_directory", str(path), "--prune")

    out = capsys.readouterr().out
    assert "users: 4 created, 0 updated, 0 unchanged" in out
    assert "users: 0 created, 0 updated, 4 unchanged, 0 deleted" in out


@pytest.mark.django_db
def test_the_command_raises_command_error_on_a_bad_directory(tmp_path):
    doc = document()
    doc["companies"][0]["users"][0]["extension"] = "20x"
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(doc), encoding="utf-8")

    with pytest.raises(CommandError, match=r"users\[0\] \(extension 20x\): extension must be"):
        call_command("load_directory", str(path))
    assert Company.objects.count() == 0


def _run_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A database of its own: these failures must happen before any query.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}
    return subprocess.run(
        [sys.executable, "manage.py", "load_directory", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"companies": [', "not valid JSON"),
        (
            json.dumps({"companies": [{"slug": "onfarma", "name": "ONFARMA", "user": []}]}),
            "companies[0] (onfarma): unknown key 'user' (did you mean 'users'?)",
        ),
    ],
    ids=["bad-json", "bad-directory"],
)
def test_the_command_exits_non_zero_with_the_message_on_stderr(tmp_path, content, message):
    path = tmp_path / "directory.json"
    path.write_text(content, encoding="utf-8")

    result = _run_command(tmp_path, str(path))

    assert result.returncode != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_the_command_exits_non_zero_for_a_missing_file(tmp_path):
    result = _run_command(tmp_path, str(tmp_path / "absent.json"))

    assert result.returncode != 0
    assert "absent.json: No such file or directory" in result.stderr


@pytest.mark.django_db
def test_it_rejects_a_device_shared_by_two_companies():
    doc = document()
    doc["companies"][1]["users"][0]["terminals"][0].pop("interface")  # → PJSIP/200 too
    with pytest.raises(DirectoryError) as error:
        directory_load(doc)
    assert error.value.errors == [
        "companies[1] (acme) users[0] (extension 200) terminals[0] (001565000002): interface "
        "PJSIP/200 is also used by company 'onfarma' (companies[0] (onfarma) users[0] (extension "
        "200) terminals[0] (00:15:65:AA:BB:CC)); a device belongs to one company"
    ]
    assert not Company.objects.exists()


def test_it_rejects_a_device_another_company_already_has(make_company, make_user):
    other = make_company(slug="other")
    make_user(other, "900", terminals=["PJSIP/acme-200"])
    with pytest.raises(DirectoryError) as error:
        directory_load(document())
    assert "interface PJSIP/acme-200 already belongs to a terminal of company 'other'" in str(
        error.value
    )


@pytest.mark.django_db
def test_a_queue_display_name_and_short_abandon_threshold():
    doc = document()
    doc["companies"][0]["queues"][0].update(display_name="Soporte técnico", short_abandon_seconds=8)
    directory_load(doc)
    soporte, ventas = Queue.objects.get(name="q-soporte"), Queue.objects.get(name="q-ventas")
    assert (soporte.shown_name, soporte.short_abandon_seconds) == ("Soporte técnico", 8)
    assert (ventas.display_name, ventas.shown_name, ventas.short_abandon_seconds) == (
        "",
        "q-ventas",
        5,
    )

    doc["companies"][0]["queues"][0]["display_name"] = None  # back to the Asterisk name
    directory_load(doc)
    assert Queue.objects.get(name="q-soporte").shown_name == "q-soporte"
    assert not directory_load(doc).changed
