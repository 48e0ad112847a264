"""username, blf-users and company-numbers: results, scoping and every error path."""

from __future__ import annotations

import pytest
from django.utils import timezone

from pbx.models import DeviceState, PbxUser, UserPresence
from terminals.models import Terminal
from tests.envelope import error, result

pytestmark = pytest.mark.django_db


def set_device(interface: str, state: str) -> None:
    now = timezone.now()
    DeviceState.objects.update_or_create(
        interface=interface, defaults={"state": state, "changed_at": now, "confirmed_at": now}
    )


def set_presence(user: PbxUser, **flags) -> None:
    now = timezone.now()
    UserPresence.objects.update_or_create(
        user=user, defaults={**flags, "changed_at": now, "confirmed_at": now}
    )


# username/{extension}


def test_username_of_a_known_extension(api, company, make_user):
    make_user(company, "200", "Ana García")
    assert result(api.get("/username/200")) == {"username": "Ana García"}


def test_username_of_an_unknown_extension_is_null_not_an_error(api, company):
    assert result(api.get("/username/999")) == {"username": None}


def test_username_with_a_bad_extension_is_a_400(api):
    assert "20a" in error(api.get("/username/20a"), 400)


def test_username_ambiguous_across_companies_is_a_409_unless_company_given(
    api, make_company, make_user
):
    first, second = make_company(slug="one"), make_company(slug="two")
    make_user(first, "200", "Ana")
    make_user(second, "200", "Bea")
    assert "company" in error(api.get("/username/200"), 409)
    assert result(api.get("/username/200", {"company": "two"})) == {"username": "Bea"}
    assert result(api.get("/username/200", {"company": "ONE"})) == {"username": "Ana"}


def test_username_is_scoped_to_the_keys_companies(api_for, make_company, make_user):
    mine, other = make_company(slug="mine"), make_company(slug="other")
    make_user(other, "300", "Secret")
    client = api_for(mine)
    assert result(client.get("/username/300")) == {"username": None}
    error(client.get("/username/300", {"company": "other"}), 404)


# blf-users/{company}


def test_blf_users_lists_every_user_with_status(api, company, make_user):
    ana = make_user(company, "200", "Ana", mobile="+34600111222")
    make_user(company, "201", "Bea")
    make_user(company, "1000", "Carla", terminals=[])
    set_device("PJSIP/200", "INUSE")
    set_presence(ana, dnd=False, paused=False)
    rows = result(api.get("/blf-users/onfarma"))
    assert [row["extension"] for row in rows] == ["200", "201", "1000"]
    assert rows[0] == {
        "extension": "200",
        "id": ana.pk,
        "name": "Ana",
        "status": "busy",
        "description": "Ocupado",
    }
    assert rows[1]["status"] == "unavailable"  # no live state from the PBX yet
    assert rows[2]["status"] == "unavailable"  # no terminal at all
    assert "mobile" not in rows[0]


def test_blf_users_description_is_the_pause_reason(api, company, make_user):
    ana = make_user(company, "200", "Ana")
    set_device("PJSIP/200", "NOT_INUSE")
    set_presence(ana, paused=True, pause_reason="Descanso")
    (row,) = result(api.get("/blf-users/onfarma"))
    assert (row["status"], row["description"]) == ("pause", "Descanso")


def test_blf_users_with_mobile(api, company, make_user):
    make_user(company, "200", "Ana", mobile="+34600111222")
    make_user(company, "201", "Bea")
    rows = result(api.get("/blf-users/onfarma", {"withMobile": "true"}))
    assert [row["mobile"] for row in rows] == ["+34600111222", None]


@pytest.mark.parametrize(
    "query",
    [
        "departments%5B0%5D=Soporte&departments%5B1%5D=Ventas",
        "departments[]=soporte&departments[]=ventas",
        'departments=["Soporte","Ventas"]',
        "departments=Soporte&departments=Ventas",
    ],
)
def test_blf_users_filtered_by_departments(api, company, make_user, query):
    make_user(company, "200", department="Soporte")
    make_user(company, "201", department="Ventas")
    make_user(company, "202", department="Dirección")
    rows = result(api.get(f"/blf-users/onfarma?{query}"))
    assert [row["extension"] for row in rows] == ["200", "201"]


def test_blf_users_company_by_name_case_insensitive(api, company, make_user):
    make_user(company, "200")
    assert len(result(api.get("/blf-users/Onfarma"))) == 1


def test_blf_users_unknown_department_is_a_404(api, company, make_user):
    make_user(company, "200", department="Soporte")
    assert "Marketing" in error(api.get("/blf-users/onfarma", {"departments": "Marketing"}), 404)


def test_blf_users_unknown_company_is_a_404(api):
    assert "nowhere" in error(api.get("/blf-users/nowhere"), 404)


def test_blf_users_of_another_company_is_a_404(api_for, make_company, make_user):
    mine, other = make_company(slug="mine"), make_company(slug="other")
    make_user(other, "200")
    error(api_for(mine).get("/blf-users/other"), 404)
    assert len(result(api_for(other).get("/blf-users/other"))) == 1


def test_blf_users_bad_with_mobile_is_a_400(api, company):
    assert "withMobile" in error(api.get("/blf-users/onfarma", {"withMobile": "maybe"}), 400)


def test_blf_users_runs_a_constant_number_of_queries(
    api, company, make_user, django_assert_max_num_queries
):
    users = [
        PbxUser(company=company, extension=str(1000 + n), name=f"User {n}") for n in range(1000)
    ]
    PbxUser.objects.bulk_create(users)
    users = list(PbxUser.objects.filter(company=company))
    Terminal.objects.bulk_create(
        Terminal(mac=f"{n:012x}", user=user, interface=f"PJSIP/{user.extension}")
        for n, user in enumerate(users)
    )
    now = timezone.now()
    DeviceState.objects.bulk_create(
        DeviceState(
            interface=f"PJSIP/{user.extension}", state="NOT_INUSE", changed_at=now, confirmed_at=now
        )
        for user in users[:500]
    )
    # key lookup, key companies, last-used update; the probe (pbx/live/version.py); the read
    # cache's directory: companies, users, departments, terminals, queues; the users' live
    # state: users, terminals, queue members, device states
    with django_assert_max_num_queries(13):
        rows = result(api.get("/blf-users/onfarma", {"withMobile": "1"}))
    assert len(rows) == 1000
    assert sum(row["status"] == "available" for row in rows) == 500
    with django_assert_max_num_queries(1):  # then the probe alone, the key and rows kept
        assert result(api.get("/blf-users/onfarma", {"withMobile": "1"})) == rows


# company-numbers/{company}


def test_company_numbers_sorted_by_name(api, company, make_number):
    second = make_number(company, "secundario", "937060371", alias="ONFARMA 2", in_use=False)
    first = make_number(company, "primari", "937060370", alias="ONFARMA", in_use=True)
    assert result(api.get("/company-numbers/onfarma")) == [
        {"id": first.pk, "name": "primari - 937060370", "alias": "ONFARMA", "value": "937060370"},
        {
            "id": second.pk,
            "name": "secundario - 937060371",
            "alias": "ONFARMA 2",
            "value": "937060371",
        },
    ]


@pytest.mark.parametrize(("in_use", "expected"), [("true", 1), ("false", 2), ("", 2), ("1", 1)])
def test_company_numbers_in_use_filter(api, company, make_number, in_use, expected):
    make_number(company, "a", "1", in_use=True)
    make_number(company, "b", "2", in_use=False)
    assert len(result(api.get("/company-numbers/onfarma", {"in_use": in_use}))) == expected


def test_company_numbers_bad_in_use_is_a_400(api, company):
    assert "in_use" in error(api.get("/company-numbers/onfarma", {"in_use": "sometimes"}), 400)


def test_company_numbers_of_another_company_is_a_404(api_for, make_company, make_number):
    mine, other = make_company(slug="mine"), make_company(slug="other")
    make_number(other, "a", "1")
    error(api_for(mine).get("/company-numbers/other"), 404)
