"""The admin: every page renders, searches find, keys are shown once, MACs are normalised."""

from __future__ import annotations

import itertools
import re
import uuid

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agenda.models import Agenda, AgendaPhone
from pbx.models import (
    ApiKey,
    DeviceState,
    Pbx,
    PbxUser,
    Queue,
    QueueMember,
    UserPresence,
    hash_api_key,
)
from pbx.models.history import CdrRecord, QueueEntry
from terminals.models import Terminal

RAW_KEY = re.compile(r"swan_[A-Za-z0-9_-]{40,}")
MODELS = [
    model
    for model in admin.site._registry
    if model._meta.app_label in {"pbx", "agenda", "terminals"}
]
_rows = itertools.count(1)
# Written by the listener or by ingest: shown, never edited.
READ_ONLY = [DeviceState, UserPresence, QueueEntry, CdrRecord]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def add_rows(make_company, make_user, make_queue, make_number, make_api_key):
    """Adds one of everything per call: a company with people, a queue, numbers, agenda, key."""

    def add() -> None:
        n = next(_rows)
        # A PBX per call; every other company is on it, the others on the settings' one.
        pbx = Pbx.objects.create(
            name=f"pbx-{n}", host="10.0.0.5", username="swan", secret_env=f"SWAN_PBX_{n}"
        )
        company = make_company(pbx=pbx if n % 2 else None)
        users = [
            make_user(company, f"{n}0{i}", department=f"Dept {i}", mobile=f"+3460000{n}{i}")
            for i in range(2)
        ]
        make_queue(company, f"q-{n}", members=users)
        make_number(company, f"line {n}", f"93700{n:04d}", in_use=True)
        agenda = Agenda.objects.create(name=f"agenda {n}", company=company)
        AgendaPhone.objects.create(agenda=agenda, name=f"Pharmacy {n}", number=f"+3493{n:07d}")
        make_api_key(company, allowed_networks="10.0.0.0/8")
        now = timezone.now()
        DeviceState.objects.create(
            interface=f"PJSIP/{n}00", state="INUSE", changed_at=now, confirmed_at=now
        )
        UserPresence.objects.create(user=users[0], paused=True, changed_at=now, confirmed_at=now)
        queue = Queue.objects.get(name=f"q-{n}")
        QueueEntry.objects.create(
            callid=f"{n}.1",
            queue_name=queue.name,
            queue=queue,
            company=company,
            entered_at=now,
            outcome="answered",
            agent=f"PJSIP/{n}00",
            agent_user=users[0],
        )
        CdrRecord.objects.create(
            calldate=now,
            src=f"6000{n}",
            dst=f"{n}00",
            channel_device=f"PJSIP/{n}00",
            disposition="ANSWERED",
            uniqueid=f"{n}.1",
            linkedid=f"{n}.1",
            company=company,
            digest=uuid.uuid4(),
        )

    return add


def test_every_model_of_the_project_is_registered():
    names = {model.__name__ for model in MODELS}
    assert names == {
        "Pbx",
        "Company",
        "Department",
        "PbxUser",
        "Queue",
        "PublicNumber",
        "ApiKey",
        "DeviceState",
        "UserPresence",
        "QueueEntry",
        "CdrRecord",
        "Agenda",
        "AgendaPhone",
        "Terminal",
    }


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_render(staff, add_rows, model):
    add_rows()
    assert staff.get(url(model, "changelist")).status_code == 200
    obj = model.objects.first()
    assert staff.get(url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize(
    "model",
    [m for m in MODELS if m not in READ_ONLY],
    ids=lambda m: m.__name__,
)
def test_add_page_renders(staff, model):
    assert staff.get(url(model, "add")).status_code == 200


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_live_state_and_history_cannot_be_edited(staff, add_rows, model):
    add_rows()
    obj = model.objects.first()
    assert staff.get(url(model, "add")).status_code == 403
    assert staff.get(url(model, "delete", obj.pk)).status_code == 403
    page = staff.get(url(model, "change", obj.pk)).content.decode()
    assert 'name="_save"' not in page
    assert staff.post(url(model, "change", obj.pk), {}).status_code == 403
    assert 'value="delete_selected"' not in staff.get(url(model, "changelist")).content.decode()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(
    staff, add_rows, model, django_assert_max_num_queries
):
    add_rows()
    with CaptureQueriesContext(connection) as few:
        staff.get(url(model, "changelist"))
    for _ in range(5):
        add_rows()
    with django_assert_max_num_queries(len(few)):
        response = staff.get(url(model, "changelist"))
    assert response.status_code == 200


def test_company_list_counts_users_and_queues(staff, company, make_user, make_queue):
    users = [make_user(company, ext) for ext in ("200", "201", "202")]
    make_queue(company, "q1", members=users)
    make_queue(company, "q2", members=users)

    response = staff.get(url(company, "changelist"))

    row = response.context["cl"].result_list.get(pk=company.pk)
    assert (row.user_count, row.queue_count) == (3, 2)


@pytest.mark.parametrize("term", ["201", "Ana", "600111"])
def test_pbx_user_search_by_extension_name_or_mobile(staff, company, make_user, term):
    make_user(company, "201", "Ana García", mobile="+34600111222")
    make_user(company, "305", "Luis Pérez", mobile="+34699000000")

    response = staff.get(url(PbxUser, "changelist"), {"q": term})

    assert [u.extension for u in response.context["cl"].result_list] == ["201"]


def test_pbx_user_page_shows_its_terminals(staff, company, make_user):
    user = make_user(company, "200", terminals=["PJSIP/200"])
    mac = user.terminals.get().mac

    page = staff.get(url(PbxUser, "change", user.pk)).content.decode()

    assert mac in page


def test_terminal_added_on_the_user_page_gets_a_normalised_mac(staff, company, make_user):
    user = make_user(company, "200", terminals=[])
    form = {
        "company": company.pk,
        "extension": "200",
        "name": user.name,
        "mobile": "",
        "terminals-TOTAL_FORMS": 1,
        "terminals-INITIAL_FORMS": 0,
        "terminals-0-mac": "00-15-65-AA-BB-CC",
        "terminals-0-type": "webphone",
        "terminals-0-interface": "PJSIP/200w",
    }

    response = staff.post(url(PbxUser, "change", user.pk), form)

    assert response.status_code == 302
    assert list(user.terminals.values_list("mac", "type")) == [("001565aabbcc", "webphone")]


@pytest.mark.parametrize("term", ["+34 931 23 45 67", "931234567", "Sol"])
def test_agenda_search_finds_it_by_phone(staff, term):
    agenda = Agenda.objects.create(name="clientes")
    AgendaPhone.objects.create(agenda=agenda, name="Farmacia Sol", number="+34931234567")
    Agenda.objects.create(name="proveedores")

    response = staff.get(url(Agenda, "changelist"), {"q": term})

    assert [a.name for a in response.context["cl"].result_list] == ["clientes"]
    assert response.context["cl"].result_list[0].phone_count == 1


def test_agenda_phone_number_is_normalised(staff):
    agenda = Agenda.objects.create(name="clientes")

    response = staff.post(
        url(AgendaPhone, "add"),
        {"agenda": agenda.pk, "name": "Farmacia Sol", "number": "+34 (931) 23-45-67"},
    )

    assert response.status_code == 302
    assert AgendaPhone.objects.get().number == "+34931234567"


def test_large_agenda_links_to_its_phones_instead_of_an_inline(staff, monkeypatch):
    monkeypatch.setattr("agenda.admin.MAX_INLINE_PHONES", 2)
    agenda = Agenda.objects.create(name="clientes")
    other = Agenda.objects.create(name="otros")
    AgendaPhone.objects.bulk_create(
        [AgendaPhone(agenda=agenda, name=f"p{i}", number=f"93{i:07d}") for i in range(3)]
        + [AgendaPhone(agenda=other, name="x", number="911111111")]
    )

    response = staff.get(url(Agenda, "change", agenda.pk))

    assert response.context["inline_admin_formsets"] == []
    link = f"{url(AgendaPhone, 'changelist')}?agenda__id__exact={agenda.pk}"
    assert link in response.content.decode()
    phones = staff.get(link).context["cl"].result_list
    assert {p.agenda_id for p in phones} == {agenda.pk}


def test_api_key_is_shown_once_and_only_its_hash_is_stored(staff, company):
    response = staff.post(
        url(ApiKey, "add"),
        {
            "name": "fedesk",
            "companies": [company.pk],
            "allowed_networks": "10.0.0.0/8, 192.168.1.20",
            "is_active": "on",
        },
    )

    assert response.status_code == 200
    (raw,) = set(RAW_KEY.findall(response.content.decode()))
    key = ApiKey.objects.get(name="fedesk")
    assert key.key_hash == hash_api_key(raw)
    assert key.prefix == raw[:10]
    assert key.key_hash not in response.content.decode()
    assert list(key.companies.all()) == [company]
    assert key.allowed_networks == "10.0.0.0/8\n192.168.1.20/32"
    for page in (url(ApiKey, "change", key.pk), url(ApiKey, "changelist")):
        content = staff.get(page).content.decode()
        assert raw not in content
        assert key.key_hash not in content
        assert key.prefix in content


def test_api_key_with_a_bad_network_is_rejected(staff):
    response = staff.post(
        url(ApiKey, "add"), {"name": "fedesk", "allowed_networks": "10.0.0.0/8 intranet"}
    )

    assert response.status_code == 200
    assert "intranet" in str(response.context["adminform"].form.errors["allowed_networks"])
    assert not ApiKey.objects.exists()


def test_rotate_action_shows_new_keys_once(staff, make_api_key):
    old_raw = make_api_key(name="fedesk")
    key = ApiKey.objects.get(name="fedesk")
    untouched = ApiKey.objects.get(key_hash=hash_api_key(make_api_key(name="other")))

    response = staff.post(
        url(ApiKey, "changelist"), {"action": "rotate_key", "_selected_action": [key.pk]}
    )

    assert response.status_code == 200
    (new_raw,) = set(RAW_KEY.findall(response.content.decode()))
    key.refresh_from_db()
    assert new_raw != old_raw
    assert key.key_hash == hash_api_key(new_raw)
    assert key.prefix == new_raw[:10]
    assert not ApiKey.objects.filter(key_hash=hash_api_key(old_raw)).exists()
    assert ApiKey.objects.get(pk=untouched.pk).key_hash == untouched.key_hash
    assert new_raw not in staff.get(url(ApiKey, "changelist")).content.decode()


@pytest.mark.parametrize(
    "typed", ["AA:BB:CC:DD:EE:FF", "aa-bb-cc-dd-ee-ff", "aabb.ccdd.eeff", "AABBCCDDEEFF"]
)
def test_terminal_mac_is_normalised(staff, company, make_user, typed):
    user = make_user(company, "200", terminals=[])

    response = staff.post(
        url(Terminal, "add"),
        {"mac": typed, "type": "desk", "user": user.pk, "interface": "PJSIP/200"},
    )

    assert response.status_code == 302
    assert Terminal.objects.get().mac == "aabbccddeeff"


@pytest.mark.parametrize("typed", ["AA:BB:CC:DD:EE", "zz:bb:cc:dd:ee:ff", "aabbccddeeff00"])
def test_terminal_with_a_bad_mac_is_rejected(staff, typed):
    response = staff.post(
        url(Terminal, "add"), {"mac": typed, "type": "desk", "interface": "PJSIP/200"}
    )

    assert response.status_code == 200
    assert "mac" in response.context["adminform"].form.errors
    assert not Terminal.objects.exists()


def test_terminal_mac_in_another_spelling_is_a_duplicate(staff):
    Terminal.objects.create(mac="aabbccddeeff", interface="PJSIP/200")

    response = staff.post(
        url(Terminal, "add"), {"mac": "AA:BB:CC:DD:EE:FF", "type": "desk", "interface": "PJSIP/201"}
    )

    assert response.status_code == 200
    assert "mac" in response.context["adminform"].form.errors
    assert Terminal.objects.count() == 1


def test_terminal_list_shows_and_finds_mac_with_colons(staff):
    Terminal.objects.create(mac="aabbccddeeff", interface="PJSIP/200")
    Terminal.objects.create(mac="001122334455", interface="PJSIP/201")

    response = staff.get(url(Terminal, "changelist"), {"q": "AA:BB:CC"})

    assert [t.mac for t in response.context["cl"].result_list] == ["aabbccddeeff"]
    assert "aa:bb:cc:dd:ee:ff" in response.content.decode()


def _queue_form(company, name: str, *users) -> dict:
    data = {
        "company": company.pk,
        "name": name,
        "service_level_seconds": 20,
        "short_abandon_seconds": 5,
        "alarm_waiting_calls": 5,
        "alarm_wait_seconds": 60,
        "memberships-TOTAL_FORMS": len(users),
        "memberships-INITIAL_FORMS": 0,
    }
    for i, user in enumerate(users):
        data |= {f"memberships-{i}-user": user.pk, f"memberships-{i}-penalty": 0}
    return data


def test_queue_is_created_with_members(staff, company, make_user):
    user = make_user(company, "200")

    response = staff.post(url(Queue, "add"), _queue_form(company, "q-ventas", user))

    assert response.status_code == 302
    assert list(Queue.objects.get(name="q-ventas").members.all()) == [user]


def test_queue_rejects_a_member_of_another_company(staff, company, make_company, make_user):
    stranger = make_user(make_company(), "300")

    response = staff.post(url(Queue, "add"), _queue_form(company, "q-ventas", stranger))

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert [e.code for e in errors.as_data()] == ["foreign_member"]
    assert not Queue.objects.exists()
    assert not QueueMember.objects.exists()


def test_public_number_in_use_is_edited_from_the_list(staff, company, make_number):
    number = make_number(company, "primari", "937060370", in_use=False)

    response = staff.post(
        url(number, "changelist"),
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": number.pk,
            "form-0-in_use": "on",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    number.refresh_from_db()
    assert number.in_use is True


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"all_companies": "on", "companies": "COMPANY"}, "A key of all companies takes no"),
        ({}, "Choose the companies this key sees"),
    ],
    ids=["all and a list", "neither"],
)
def test_api_key_must_say_which_companies_it_sees(staff, company, fields, message, settings):
    settings.LANGUAGE_CODE = "en"
    data = {"name": "fedesk", "is_active": "on", **fields}
    if data.get("companies") == "COMPANY":
        data["companies"] = [company.pk]
    response = staff.post(url(ApiKey, "add"), data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.non_field_errors())
    assert not ApiKey.objects.exists()


def test_api_key_of_all_companies_is_made_in_the_admin(staff, company):
    response = staff.post(url(ApiKey, "add"), {"name": "fedesk", "all_companies": "on"})

    assert response.status_code == 200
    key = ApiKey.objects.get(name="fedesk")
    assert key.all_companies
    assert not key.companies.exists()


def test_api_key_list_warns_of_a_limited_key_with_no_companies_left(
    staff, make_company, make_api_key, settings
):
    settings.LANGUAGE_CODE = "en"
    gone = make_company(slug="gone", name="Gone SL")
    make_api_key(gone, name="orphan")
    make_api_key(name="everything")
    gone.delete()

    content = staff.get(url(ApiKey, "changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "limited, no companies left: sees nothing" in content
    assert content.count("limited, no companies left") == 1
