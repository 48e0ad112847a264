"""Admin for daily work: agenda CSV export and import, terminal (un)registration, supervisors."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agenda.models import Agenda, AgendaPhone
from dashboard.models import Supervisor
from terminals.models import Terminal
from tests.fakes import drop, refuse

CHANGELIST = "/admin/agenda/agenda/"
IMPORT_URL = "/admin/agenda/agenda/import-csv/"


@pytest.fixture(autouse=True)
def english(settings):
    """The admin messages below are asserted in English (the default language is Spanish)."""
    settings.LANGUAGE_CODE = "en"


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def upload(text: str, name: str = "phones.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


@pytest.fixture
def agendas(company):
    clientes = Agenda.objects.create(name="clientes", company=company)
    AgendaPhone.objects.create(agenda=clientes, name="Farmacia Sol", number="+34931234567")
    AgendaPhone.objects.create(agenda=clientes, name="Ana, la de Sants", number="931000000")
    proveedores = Agenda.objects.create(name="proveedores")
    AgendaPhone.objects.create(agenda=proveedores, name="Cofares", number="912345678")
    Agenda.objects.create(name="unselected")
    return clientes, proveedores


def test_it_exports_the_selected_agendas_to_csv(admin_client, agendas):
    response = admin_client.post(
        CHANGELIST,
        {"action": "export_csv", "_selected_action": [a.pk for a in agendas]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == [
        ["agenda", "name", "number"],
        ["clientes", "Ana, la de Sants", "931000000"],
        ["clientes", "Farmacia Sol", "+34931234567"],
        ["proveedores", "Cofares", "912345678"],
    ]


def test_an_exported_file_imports_back_unchanged(admin_client, agendas):
    exported = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [a.pk for a in agendas]}
    ).content
    response = admin_client.post(
        IMPORT_URL, {"file": SimpleUploadedFile("a.csv", exported)}, follow=True
    )
    assert ("success", "Imported: 0 new agendas, 0 new phones, 0 renamed, 3 unchanged.") in (
        messages_of(response)
    )


def test_the_changelist_links_to_the_import(admin_client, agendas):
    assert IMPORT_URL in admin_client.get(CHANGELIST).content.decode()
    assert admin_client.get(IMPORT_URL).status_code == 200


def test_it_imports_a_csv_and_reports_counts(admin_client, agendas):
    text = (
        "agenda,name,number\n"
        "clientes,Farmacia Sol Nueva,+34 931 234 567\n"
        "clientes,Farmacia Luna,(93) 700-11-22\n"
        "nueva,Óptica Mar,600.111.222\n"
    )
    response = admin_client.post(IMPORT_URL, {"file": upload(text)})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:agenda_agenda_changelist")
    clientes = {p.number: p.name for p in agendas[0].phones.all()}
    assert clientes == {
        "+34931234567": "Farmacia Sol Nueva",
        "931000000": "Ana, la de Sants",
        "937001122": "Farmacia Luna",
    }
    nueva = Agenda.objects.get(name="nueva")
    assert nueva.company is None
    assert [(p.name, p.number) for p in nueva.phones.all()] == [("Óptica Mar", "600111222")]


def test_the_import_message_counts_what_changed(admin_client, agendas):
    text = "clientes,Farmacia Sol Nueva,+34931234567\nnueva,Óptica Mar,600111222\n"
    response = admin_client.post(IMPORT_URL, {"file": upload(text)}, follow=True)
    assert ("success", "Imported: 1 new agendas, 1 new phones, 1 renamed, 0 unchanged.") in (
        messages_of(response)
    )


def test_a_bad_line_imports_nothing_and_names_the_line(admin_client, agendas):
    text = (
        "agenda,name,number\n"
        "clientes,Farmacia Luna,937001122\n"
        "clientes,Bad number,abc\n"
        "nueva,Too,many,columns\n"
        "nueva,,600111222\n"
    )
    response = admin_client.post(IMPORT_URL, {"file": upload(text)})
    assert response.status_code == 200
    errors = [text for level, text in messages_of(response) if level == "error"]
    assert any(e.startswith("Line 3:") and "'abc'" in e for e in errors)
    assert any(e.startswith("Line 4:") and "3 columns" in e for e in errors)
    assert any(e.startswith("Line 5") and "'name'" in e for e in errors)
    assert errors[-1] == "Nothing was imported."
    assert not Agenda.objects.filter(name="nueva").exists()
    assert not agendas[0].phones.filter(number="937001122").exists()


def test_a_file_that_is_not_utf8_is_refused(admin_client, agendas):
    data = SimpleUploadedFile("x.csv", "clientes,Peña,931\n".encode("latin-1"))
    response = admin_client.post(IMPORT_URL, {"file": data})
    assert ("error", "The file is not UTF-8 text.") in messages_of(response)


def test_semicolon_separated_files_are_read(admin_client, agendas):
    response = admin_client.post(
        IMPORT_URL, {"file": upload("agenda;name;number\nnueva;Óptica Mar;600111222\n")}
    )
    assert response.status_code == 302
    assert Agenda.objects.get(name="nueva").phones.count() == 1


def test_the_import_needs_add_and_change_permission(client, django_user_model, agendas):
    client.force_login(django_user_model.objects.create_user("clerk", password="x", is_staff=True))
    assert client.get(IMPORT_URL).status_code == 403


# Terminals


@pytest.fixture
def pbx(gateway):
    return gateway


@pytest.fixture
def terminal(company, make_user, make_queue) -> Terminal:
    user = make_user(company, "200", "Ana")
    make_queue(company, "q-soporte", members=[user])
    make_queue(company, "q-ventas", members=[user])
    return user.terminals.get()


def run_action(admin_client, action: str, *terminals: Terminal):
    return admin_client.post(
        "/admin/terminals/terminal/",
        {"action": action, "_selected_action": [t.pk for t in terminals]},
        follow=True,
    )


def test_register_action_joins_the_queues_and_reports_it(admin_client, pbx, terminal):
    response = run_action(admin_client, "register_on_pbx", terminal)
    assert [(a, args["queue"]) for a, args in pbx.calls] == [
        ("QueueAdd", "q-soporte"),
        ("QueueAdd", "q-ventas"),
    ]
    assert ("success", f"{terminal.mac_display} registered.") in messages_of(response)
    terminal.refresh_from_db()
    assert terminal.registered
    assert pbx.closed == 1


def test_unregister_action_leaves_the_queues(admin_client, pbx, terminal):
    Terminal.objects.filter(pk=terminal.pk).update(registered=True)
    response = run_action(admin_client, "unregister_on_pbx", terminal)
    assert [a for a, _args in pbx.calls] == ["QueueRemove", "QueueRemove"]
    assert ("success", f"{terminal.mac_display} unregistered.") in messages_of(response)
    terminal.refresh_from_db()
    assert not terminal.registered


def test_a_partial_registration_is_reported_per_terminal(admin_client, pbx, terminal):
    pbx.failures["QueueAdd"] = lambda args: (
        refuse("Unable to add interface")(args) if args["queue"] == "q-ventas" else None
    )
    response = run_action(admin_client, "register_on_pbx", terminal)
    (level, text), *_ = [m for m in messages_of(response) if terminal.mac_display in m[1]]
    assert level == "warning"
    assert "did not do every step" in text
    assert "registered" in text


def test_a_terminal_without_user_is_skipped(admin_client, pbx, terminal):
    lonely = Terminal.objects.create(mac="0a0b0c0d0e0f", interface="PJSIP/999")
    response = run_action(admin_client, "register_on_pbx", lonely, terminal)
    found = messages_of(response)
    assert ("warning", "0a:0b:0c:0d:0e:0f has no user: nothing to do.") in found
    assert ("success", f"{terminal.mac_display} registered.") in found


def test_an_unreachable_pbx_is_an_error_message_not_a_crash(admin_client, pbx, terminal):
    pbx.unreachable = True
    response = run_action(admin_client, "register_on_pbx", terminal)
    assert response.status_code == 200
    ((_level, text),) = [m for m in messages_of(response) if m[0] == "error"]
    assert "PBX cannot be reached" in text
    assert terminal.mac_display in text
    terminal.refresh_from_db()
    assert not terminal.registered


def test_a_pbx_lost_half_way_stops_the_batch(admin_client, pbx, terminal, make_user, company):
    second = make_user(company, "201", "Luis").terminals.get()
    pbx.failures["QueueAdd"] = drop()
    response = run_action(admin_client, "register_on_pbx", terminal, second)
    ((_level, text),) = [m for m in messages_of(response) if m[0] == "error"]
    assert terminal.mac_display in text
    assert second.mac_display in text
    assert pbx.closed == 1


# Supervisors


def test_supervisors_are_edited_on_the_user_page(admin_client, admin_user, company):
    page = admin_client.get(reverse("admin:auth_user_change", args=[admin_user.pk]))
    assert page.status_code == 200
    assert 'name="supervisor-0-companies"' in page.content.decode()


def test_the_supervisor_admin_lists_companies(admin_client, make_supervisor, company):
    make_supervisor(company, username="marta")
    page = admin_client.get(reverse("admin:dashboard_supervisor_changelist")).content.decode()
    assert "marta" in page
    assert "ONFARMA" in page
    assert Supervisor.objects.count() == 1


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+SUM(1,2)", "-2+3", "@cmd", "=1+1"]
ROUND_TRIP_NAMES = [
    "O'Brien",
    "-5 Farmacia",
    "=1+1",
    "+SUM(1,2)",
    "@cmd",
    "'quoted",
    "''twice",
    "'=already escaped",
    "Farmacia Sol",
    "Ana, la de Sants",
    'Peña "la buena"',
]


def export(admin_client, *agendas) -> list[list[str]]:
    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [a.pk for a in agendas]}
    )
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_export_neutralises_formulas_with_a_leading_quote(admin_client):
    agenda = Agenda.objects.create(name="=agenda()")
    for n, name in enumerate(FORMULAS):
        AgendaPhone.objects.create(agenda=agenda, name=name, number=f"60000000{n}")
    rows = export(admin_client, agenda)[1:]
    assert {row[0] for row in rows} == {"'=agenda()"}
    assert sorted(row[1] for row in rows) == sorted(f"'{name}" for name in FORMULAS)
    assert all(not row[1].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows)


@pytest.mark.parametrize("name", ["\tx", "\rx"])
def test_the_export_neutralises_a_leading_tab_or_carriage_return(name):
    from pbx.csv_cells import csv_safe

    assert csv_safe(name) == f"'{name}"


def test_export_then_import_keeps_every_name_exactly(admin_client):
    agenda = Agenda.objects.create(name="'=lista")
    for n, name in enumerate(ROUND_TRIP_NAMES):
        AgendaPhone.objects.create(agenda=agenda, name=name, number=f"61000000{n}")
    exported = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [agenda.pk]}
    ).content
    agenda.delete()
    response = admin_client.post(
        IMPORT_URL, {"file": SimpleUploadedFile("a.csv", exported)}, follow=True
    )
    assert any(level == "success" for level, _text in messages_of(response)), messages_of(response)
    imported = Agenda.objects.get(name="'=lista")
    assert sorted(imported.phones.values_list("name", flat=True)) == sorted(ROUND_TRIP_NAMES)


def test_a_hand_written_quote_before_plain_text_is_kept(admin_client):
    response = admin_client.post(
        IMPORT_URL, {"file": upload("clientes,'Sol,931000009\n")}, follow=True
    )
    assert any(level == "success" for level, _text in messages_of(response))
    assert AgendaPhone.objects.get(number="931000009").name == "'Sol"
