"""`manage.py create_api_key`: prints a working key once, stores its limits, refuses bad input."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from pbx.models import ApiKey, hash_api_key


def create_api_key(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_it_prints_a_key_that_authenticates(db):
    lines = create_api_key("fedesk", "--all-companies")

    raw = lines[-1]
    key = ApiKey.objects.get(name="fedesk")
    assert key.key_hash == hash_api_key(raw)
    assert key.prefix == raw[:10]
    assert key.is_active
    assert key.all_companies
    assert not key.companies.exists()
    assert key.allowed_networks == ""
    assert all(raw not in line for line in lines[:-1])


def test_the_key_opens_the_api(company):
    raw = create_api_key("fedesk", "--company", company.slug)[-1]

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get(f"/company-numbers/{company.slug}")

    assert response.status_code == 200


def test_it_stores_company_and_network_limits(make_company):
    first, second = make_company(slug="onfarma"), make_company(slug="farmacias")
    make_company(slug="otra")

    create_api_key(
        "fedesk",
        "--company",
        "onfarma",
        "--company",
        "FARMACIAS",
        "--network",
        "10.0.0.0/8",
        "--network",
        "192.168.1.20",
    )

    key = ApiKey.objects.get(name="fedesk")
    assert not key.all_companies
    assert set(key.companies.all()) == {first, second}
    assert key.allowed_networks.split() == ["10.0.0.0/8", "192.168.1.20/32"]
    assert key.allows_address("10.1.2.3")
    assert not key.allows_address("172.16.0.1")


def test_each_key_is_new(db):
    first = create_api_key("one", "--all-companies")[-1]
    second = create_api_key("two", "--all-companies")[-1]

    assert first != second


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fedesk", "--company", "onfarma", "--company", "nadie"], "nadie"),
        (["fedesk", "--all-companies", "--network", "intranet"], "intranet"),
        (["fedesk", "--all-companies", "--network", "10.0.0.0/33"], "10.0.0.0/33"),
        (["  ", "--all-companies"], "name"),
        (["x" * 121, "--all-companies"], "name"),
        (["fedesk", "--all-companies", "--company", "onfarma"], "not both"),
    ],
)
def test_it_rejects_bad_input_and_writes_nothing(company, args, message):
    with pytest.raises(CommandError, match=message):
        create_api_key(*args)

    assert not ApiKey.objects.exists()


def test_it_rejects_a_duplicate_name(db):
    first = create_api_key("fedesk", "--all-companies")[-1]

    with pytest.raises(CommandError, match="fedesk"):
        create_api_key("fedesk", "--all-companies")

    assert ApiKey.objects.get().key_hash == hash_api_key(first)


def test_without_companies_the_key_sees_every_company_and_says_so(company):
    """contract.md's `create_api_key NAME`: every company, stored as the explicit flag."""
    lines = create_api_key("fedesk")
    key = ApiKey.objects.get(name="fedesk")
    assert key.all_companies is True
    assert "all companies" in lines[0]
