"""The admin of PBXes: the secret is never shown, companies move between PBXes, queues show theirs."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from pbx.models import Company, Pbx, Queue

SECRET = "s3cr3t-never-shown"


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff(client, admin_user, settings):
    settings.LANGUAGE_CODE = "en"
    client.force_login(admin_user)
    return client


@pytest.fixture
def pbxes(db, monkeypatch):
    """pbx-a, whose secret is in the environment; pbx-b, whose variable is unset; pbx-c, empty."""
    monkeypatch.setenv("SWAN_PBX_A_SECRET", SECRET)
    monkeypatch.delenv("SWAN_PBX_B_SECRET", raising=False)
    monkeypatch.setenv("SWAN_PBX_C_SECRET", "")
    return {
        name: Pbx.objects.create(
            name=name,
            host=f"{name}.example.net",
            username="swan",
            secret_env=f"SWAN_PBX_{name[-1].upper()}_SECRET",
        )
        for name in ("pbx-a", "pbx-b", "pbx-c")
    }


def _row(content: str, name: str) -> str:
    """The changelist's table row of the object called `name`."""
    rows = [row for row in re.split(r"<tr\b", content) if f">{name}<" in row]
    assert len(rows) == 1, rows
    return rows[0]


def pbx_form(**fields) -> dict:
    return {
        "name": "pbx-d",
        "host": "10.0.0.9",
        "port": 5038,
        "username": "swan",
        "secret_env": "SWAN_PBX_D_SECRET",
        "queue_log": "",
        "cdr_csv": "",
        "dial_context": "from-internal",
        **fields,
    }


def test_the_pbx_list_says_whether_the_secret_is_set_never_what_it_is(staff, pbxes, make_company):
    make_company(pbx=pbxes["pbx-a"])
    make_company(pbx=pbxes["pbx-a"])

    response = staff.get(url(Pbx, "changelist"))

    content = response.content.decode()
    assert SECRET not in content
    assert 'alt="True"' in _row(content, "pbx-a")
    assert 'alt="False"' in _row(content, "pbx-b")
    assert 'alt="False"' in _row(content, "pbx-c")  # empty: no PBX takes it
    assert "SWAN_PBX_A_SECRET" in _row(content, "pbx-a")
    counts = {p.name: p.company_count for p in response.context["cl"].result_list}
    assert counts == {"pbx-a": 2, "pbx-b": 0, "pbx-c": 0}


def test_the_pbx_page_shows_no_secret_and_has_no_field_for_one(staff, pbxes):
    response = staff.get(url(Pbx, "change", pbxes["pbx-a"].pk))

    content = response.content.decode()
    assert SECRET not in content
    assert set(response.context["adminform"].form.fields) == {
        "host",
        "port",
        "username",
        "secret_env",
        "queue_log",
        "cdr_csv",
        "dial_context",
    }
    assert 'alt="True"' in content  # secret set, read-only


@pytest.mark.parametrize(("term", "found"), [("pbx-b", ["pbx-b"]), ("a.example", ["pbx-a"])])
def test_pbxes_are_found_by_name_or_host(staff, pbxes, term, found):
    response = staff.get(url(Pbx, "changelist"), {"q": term})

    assert [p.name for p in response.context["cl"].result_list] == found


def test_a_pbx_is_added(staff, db):
    response = staff.post(url(Pbx, "add"), pbx_form())

    assert response.status_code == 302
    pbx = Pbx.objects.get()
    assert (pbx.name, pbx.host, pbx.secret_env) == ("pbx-d", "10.0.0.9", "SWAN_PBX_D_SECRET")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "default"}, "name"),
        ({"name": "PBX D"}, "name"),
        ({"secret_env": "swan-secret"}, "secret_env"),
        ({"secret_env": "DATABASE_URL"}, "secret_env"),
        ({"secret_env": "SECRET_KEY"}, "secret_env"),
        ({"secret_env": "SWAN_PBX_"}, "secret_env"),
        ({"host": "10.0.0.9 x"}, "host"),
        ({"port": 70000}, "port"),
    ],
    ids=[
        "default",
        "name",
        "env",
        "env-database-url",
        "env-secret-key",
        "env-prefix-only",
        "host",
        "port",
    ],
)
def test_a_bad_pbx_is_refused(staff, db, fields, field):
    response = staff.post(url(Pbx, "add"), pbx_form(**fields))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Pbx.objects.exists()


def test_a_pbx_is_changed_but_never_renamed(staff, pbxes):
    pbx = pbxes["pbx-b"]

    response = staff.post(url(Pbx, "change", pbx.pk), pbx_form(name="pbx-z", host="10.9.9.9"))

    assert response.status_code == 302
    pbx.refresh_from_db()
    assert (pbx.name, pbx.host) == ("pbx-b", "10.9.9.9")


def test_a_pbx_with_companies_is_not_deleted(staff, pbxes, make_company):
    make_company(pbx=pbxes["pbx-a"])

    staff.post(url(Pbx, "delete", pbxes["pbx-a"].pk), {"post": "yes"})

    assert Pbx.objects.filter(name="pbx-a").exists()


def test_the_company_list_shows_and_filters_by_pbx(staff, pbxes, make_company):
    on_a = make_company(slug="on-a", pbx=pbxes["pbx-a"])
    on_default = make_company(slug="on-default")

    content = staff.get(url(Company, "changelist")).content.decode()
    assert ">pbx-a<" in _row(content, on_a.name)
    assert ">default<" in _row(content, on_default.name)
    for value, slugs in (("pbx-a", ["on-a"]), ("default", ["on-default"]), ("pbx-b", [])):
        response = staff.get(url(Company, "changelist"), {"pbx": value})
        assert [c.slug for c in response.context["cl"].result_list] == slugs


def company_form(company: Company, pbx: Pbx | None) -> dict:
    return {
        "slug": company.slug,
        "name": company.name,
        "time_zone": company.time_zone,
        "pbx": pbx.name if pbx else "",
        "dial_context": "",
        "dnd_prefix": "",
        "departments-TOTAL_FORMS": 0,
        "departments-INITIAL_FORMS": 0,
    }


def test_a_company_moved_to_another_pbx_takes_its_queues(staff, pbxes, make_company, make_queue):
    company = make_company(pbx=pbxes["pbx-a"])
    make_queue(company, "q-ventas")
    make_queue(company, "q-soporte")

    response = staff.post(url(Company, "change", company.pk), company_form(company, None))

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.pbx_key == "default"
    assert set(Queue.objects.values_list("pbx", flat=True)) == {"default"}


def test_a_move_onto_a_queue_name_of_the_target_pbx_is_a_form_error(
    staff, pbxes, make_company, make_queue
):
    company = make_company(pbx=pbxes["pbx-a"])
    make_queue(company, "q-ventas")
    other = make_company(slug="other", name="Other", pbx=pbxes["pbx-b"])
    make_queue(other, "q-ventas")

    response = staff.post(url(Company, "change", company.pk), company_form(company, pbxes["pbx-b"]))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["pbx"] == [
        "Queue q-ventas of company Other is on that PBX already: a queue name is one queue on a "
        "PBX."
    ]
    company.refresh_from_db()
    assert company.pbx_key == "pbx-a"
    assert set(Queue.objects.values_list("company__slug", "pbx")) == {
        (company.slug, "pbx-a"),
        ("other", "pbx-b"),
    }


@pytest.mark.parametrize("theirs", ["PJSIP/201", "pjsip/201"])
def test_a_move_onto_a_device_of_the_target_pbx_is_a_form_error(
    staff, pbxes, make_company, make_user, theirs
):
    company = make_company(pbx=pbxes["pbx-a"])
    make_user(company, "201", terminals=["PJSIP/201"])
    other = make_company(slug="other", name="Other", pbx=pbxes["pbx-b"])
    make_user(other, "301", terminals=[theirs])

    response = staff.post(url(Company, "change", company.pk), company_form(company, pbxes["pbx-b"]))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["pbx"] == [
        f"Device {theirs} of company Other is on that PBX already: a device belongs to one company."
    ]
    company.refresh_from_db()
    assert company.pbx_key == "pbx-a"


def test_a_move_beside_other_devices_of_the_target_pbx_is_saved(
    staff, pbxes, make_company, make_user
):
    company = make_company(pbx=pbxes["pbx-a"])
    make_user(company, "201", terminals=["PJSIP/201"])
    other = make_company(slug="other", name="Other", pbx=pbxes["pbx-b"])
    make_user(other, "301", terminals=["PJSIP/301"])
    elsewhere = make_company(slug="elsewhere", name="Elsewhere", pbx=pbxes["pbx-a"])
    make_user(elsewhere, "202", terminals=["PJSIP/201b"])

    response = staff.post(url(Company, "change", company.pk), company_form(company, pbxes["pbx-b"]))

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.pbx_key == "pbx-b"


def test_the_queue_list_shows_and_filters_by_pbx(staff, pbxes, make_company, make_queue):
    make_queue(make_company(pbx=pbxes["pbx-a"]), "q-ventas")
    make_queue(make_company(), "q-ventas")

    content = staff.get(url(Queue, "changelist")).content.decode()
    cells = re.findall(r'<td class="field-pbx">([^<]*)</td>', content)
    assert sorted(cells) == ["default", "pbx-a"]
    for value in ("pbx-a", "default"):
        response = staff.get(url(Queue, "changelist"), {"pbx": value})
        assert [q.pbx for q in response.context["cl"].result_list] == [value]


def test_the_queue_page_shows_its_pbx_read_only(staff, pbxes, make_company, make_queue):
    company = make_company(pbx=pbxes["pbx-a"])
    queue = make_queue(company, "q-ventas")

    change = staff.get(url(Queue, "change", queue.pk))
    add = staff.get(url(Queue, "add"))

    assert "pbx" not in change.context["adminform"].form.fields
    assert '<div class="readonly">pbx-a</div>' in change.content.decode()
    assert "pbx" not in str(add.context["adminform"].form.fields)
    assert "field-pbx" not in add.content.decode()
