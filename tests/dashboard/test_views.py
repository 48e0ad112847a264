"""Supervisor pages: login, the company list, company scoping, the dashboard page."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse


@pytest.fixture
def companies(company, make_company):
    return company, make_company(slug="other", name="Other")


def test_the_dashboard_requires_login(client, companies):
    for url in ["/dashboard/", "/dashboard/onfarma/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_login_page_renders_and_logs_a_supervisor_in(client, companies, make_supervisor):
    make_supervisor(companies[0], username="marta")
    page = client.get("/accounts/login/?next=/dashboard/onfarma/")
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(
        "/accounts/login/",
        {"username": "marta", "password": "s3cret-Pass", "next": "/dashboard/onfarma/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/onfarma/"


def test_the_company_list_shows_only_assigned_companies(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    page = client.get("/dashboard/").content.decode()
    assert "ONFARMA" in page
    assert "Other" not in page
    assert 'href="/dashboard/onfarma/"' in page


def test_a_superuser_lists_every_company(admin_client, companies):
    page = admin_client.get("/dashboard/").content.decode()
    assert "ONFARMA" in page
    assert "Other" in page


def test_a_login_without_companies_sees_an_empty_list(client, django_user_model, companies):
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert "ONFARMA" not in response.content.decode()


def test_it_answers_404_for_a_company_not_assigned(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    for slug in ["other", "does-not-exist"]:
        response = client.get(f"/dashboard/{slug}/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")


def test_the_dashboard_page_carries_its_configuration(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    response = client.get(reverse("dashboard:company", args=["onfarma"]))
    assert response.status_code == 200
    page = response.content.decode()
    config = json.loads(
        re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', page)[1]
    )
    assert config["wsPath"] == "/ws/dashboard/onfarma/"
    assert set(config["statusLabels"]) == {"available", "unavailable", "busy", "ringing", "pause"}
    assert 'class="skip-link" href="#main"' in page
    assert "dashboard/dashboard.js" in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing from a CDN


def test_logout_goes_back_to_the_login_page(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    response = client.post("/accounts/logout/", {"next": "/accounts/login/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/dashboard/").status_code == 302
