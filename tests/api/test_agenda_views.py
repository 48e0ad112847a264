"""update-agenda and delete-phones-agenda: upsert, deletion, tenancy and every error path."""

from __future__ import annotations

import pytest

from agenda.models import Agenda, AgendaPhone
from tests.envelope import error, result

pytestmark = pytest.mark.django_db

PHP_BODY = (  # http_build_query(['name' => 'clientes', 'phones' => [[...], [...]]])
    "name=clientes&phones%5B0%5D%5Bname%5D=Farmacia+Sol&phones%5B0%5D%5Bnumber%5D=%2B34+931+234+567"
    "&phones%5B1%5D%5Bname%5D=Bar+%C3%91u&phones%5B1%5D%5Bnumber%5D=600-11-12"
)
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def ok(response):
    assert result(response) == {"success": True}


def phones(name="clientes"):
    return dict(AgendaPhone.objects.filter(agenda__name=name).values_list("number", "name"))


def test_update_agenda_creates_agenda_and_phones_from_a_php_form(api):
    ok(api.generic("POST", "/update-agenda", PHP_BODY, content_type=FORM))
    assert phones() == {"+34931234567": "Farmacia Sol", "6001112": "Bar Ñu"}
    assert Agenda.objects.get().company is None  # an unrestricted key may create global agendas


def test_update_agenda_accepts_json_and_renames_existing_numbers(api):
    ok(
        api.post(
            "/update-agenda",
            {"name": "clientes", "phones": [{"name": "A", "number": "1"}]},
            format="json",
        )
    )
    ok(
        api.post(
            "/update-agenda",
            {
                "name": "clientes",
                "phones": [{"name": "A2", "number": "1"}, {"name": "B", "number": "2"}],
            },
            format="json",
        )
    )
    assert phones() == {"1": "A2", "2": "B"}


def test_update_agenda_accepts_phones_as_a_json_string(api):
    ok(api.post("/update-agenda", {"name": "clientes", "phones": '[{"name": "A", "number": "1"}]'}))
    assert phones() == {"1": "A"}


def test_update_agenda_accepts_a_json_array_body_with_name_in_the_query(api):
    ok(api.post("/update-agenda?name=clientes", [{"name": "A", "number": "1"}], format="json"))
    assert phones() == {"1": "A"}


def test_update_agenda_handles_ten_thousand_phones(api, django_assert_max_num_queries):
    entries = [{"name": f"Cliente {n}", "number": f"6{n:08d}"} for n in range(10_000)]
    # 10,000 phones in batches: the count grows with the batches, never with the phones (the
    # agenda's lock and the creation's savepoint are three of these).
    with django_assert_max_num_queries(43):
        ok(api.post("/update-agenda", {"name": "grande", "phones": entries}, format="json"))
    assert AgendaPhone.objects.filter(agenda__name="grande").count() == 10_000


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"phones": [{"name": "A", "number": "1"}]}, "'name'"),
        ({"name": "clientes"}, "'phones'"),
        ({"name": "clientes", "phones": []}, "'phones'"),
        (
            {"name": "clientes", "phones": [{"name": "A", "number": "1"}, {"name": "B"}]},
            "phones[1]",
        ),
        ({"name": "clientes", "phones": [{"name": "A", "number": "abc"}]}, "phones[0]"),
        # 33 characters: longer than the column (PostgreSQL's DataError was a 500)
        ({"name": "clientes", "phones": [{"name": "A", "number": "+" + "1" * 32}]}, "phones[0]"),
        ({"name": "clientes", "phones": [{"number": "1"}]}, "phones[0]"),
        ({"name": "clientes", "phones": ["1"]}, "phones[0]"),
        ({"name": "clientes", "phones": {"x": {"name": "A", "number": "1"}}}, "phones"),
        ({"name": "a\r\nb", "phones": [{"name": "A", "number": "1"}]}, "name"),
    ],
)
def test_update_agenda_rejects_bad_input_and_writes_nothing(api, payload, fragment):
    assert fragment in error(api.post("/update-agenda", payload, format="json"), 400)
    assert not Agenda.objects.exists()
    assert not AgendaPhone.objects.exists()


def test_update_agenda_with_a_bad_entry_leaves_an_existing_agenda_untouched(api):
    ok(
        api.post(
            "/update-agenda",
            {"name": "clientes", "phones": [{"name": "A", "number": "1"}]},
            format="json",
        )
    )
    bad = {
        "name": "clientes",
        "phones": [{"name": "A2", "number": "1"}, {"name": "X", "number": "?"}],
    }
    error(api.post("/update-agenda", bad, format="json"), 400)
    assert phones() == {"1": "A"}


def test_agenda_of_a_single_company_key_belongs_to_its_company(api_for, company):
    ok(
        api_for(company).post(
            "/update-agenda",
            {"name": "clientes", "phones": [{"name": "A", "number": "1"}]},
            format="json",
        )
    )
    assert Agenda.objects.get().company == company


def test_key_of_several_companies_must_name_the_company(api_for, make_company):
    first, second = make_company(slug="one"), make_company(slug="two")
    client = api_for(first, second)
    payload = {"name": "clientes", "phones": [{"name": "A", "number": "1"}]}
    assert "company" in error(client.post("/update-agenda", payload, format="json"), 400)
    ok(client.post("/update-agenda", {**payload, "company": "two"}, format="json"))
    assert Agenda.objects.get().company == second


def test_unknown_company_parameter_is_a_404(api):
    payload = {"name": "clientes", "company": "nowhere", "phones": [{"name": "A", "number": "1"}]}
    assert "nowhere" in error(api.post("/update-agenda", payload, format="json"), 404)


def test_another_companys_agenda_name_is_taken_and_unknown_to_delete(api_for, make_company):
    mine, other = make_company(slug="mine"), make_company(slug="other")
    Agenda.objects.create(name="clientes", company=other)
    payload = {"name": "clientes", "phones": [{"name": "A", "number": "1"}]}
    error(api_for(mine).post("/update-agenda", payload, format="json"), 409)
    error(api_for(mine).delete("/delete-phones-agenda?name=clientes"), 404)
    assert not AgendaPhone.objects.exists()


def test_agenda_named_with_another_company_is_a_409(api, make_company):
    first, second = make_company(slug="one"), make_company(slug="two")
    Agenda.objects.create(name="clientes", company=first)
    payload = {"name": "clientes", "company": "two", "phones": [{"name": "A", "number": "1"}]}
    error(api.post("/update-agenda", payload, format="json"), 409)
    assert second.agendas.count() == 0


# delete-phones-agenda


@pytest.fixture
def agenda(db):
    agenda = Agenda.objects.create(name="clientes")
    for number in ("1", "2", "+34931234567"):
        AgendaPhone.objects.create(agenda=agenda, name=f"Phone {number}", number=number)
    return agenda


def test_delete_phones_listed_only(api, agenda):
    ok(
        api.generic(
            "DELETE",
            "/delete-phones-agenda",
            "name=clientes&phones%5B0%5D=%2B34+931+234+567&phones%5B1%5D=1",
            content_type=FORM,
        )
    )
    assert set(phones()) == {"2"}


def test_delete_every_phone_when_phones_is_absent(api, agenda):
    ok(api.delete("/delete-phones-agenda", {"name": "clientes"}, format="json"))
    assert phones() == {}
    assert Agenda.objects.filter(name="clientes").exists()


@pytest.mark.parametrize(
    "request_args",
    [
        ({"name": "clientes", "phones": []}, "json"),
        ({"name": "clientes", "phones": None}, "json"),
        ({"name": "clientes", "phones": ""}, "json"),
        ("name=clientes&phones=", FORM),
    ],
    ids=["json-empty-list", "json-null", "json-empty-text", "form-empty"],
)
def test_an_empty_phones_list_deletes_nothing(api, agenda, request_args):
    """Only an absent `phones` means every phone: a list that came out empty is no wildcard."""
    body, kind = request_args
    if kind == "json":
        ok(api.delete("/delete-phones-agenda", body, format="json"))
    else:
        ok(api.generic("DELETE", "/delete-phones-agenda", body, content_type=kind))
    assert len(phones()) == 3


def test_a_bare_empty_array_body_deletes_nothing(api, agenda):
    ok(api.generic("DELETE", "/delete-phones-agenda?name=clientes", "[]", content_type=JSON))
    assert len(phones()) == 3


def test_delete_reads_the_query_string_too(api, agenda):
    ok(api.delete("/delete-phones-agenda?name=clientes&phones[]=2"))
    assert set(phones()) == {"1", "+34931234567"}


def test_delete_needs_a_name(api, agenda):
    assert "'name'" in error(api.delete("/delete-phones-agenda", {}, format="json"), 400)


def test_delete_of_an_unknown_agenda_is_a_404(api):
    assert "nada" in error(api.delete("/delete-phones-agenda?name=nada"), 404)


def test_delete_with_a_bad_number_deletes_nothing(api, agenda):
    payload = {"name": "clientes", "phones": ["1", "not-a-number"]}
    assert "phones[1]" in error(api.delete("/delete-phones-agenda", payload, format="json"), 400)
    assert len(phones()) == 3


def test_agenda_endpoints_refuse_the_wrong_method(api):
    assert api.get("/update-agenda").status_code == 405
    assert api.post("/delete-phones-agenda").status_code == 405
