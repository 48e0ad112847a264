"""The wallboard page: access exactly as the dashboard's, its configuration and its texts."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse


@pytest.fixture
def companies(company, make_company):
    return company, make_company(slug="other", name="Other")


def _config(response) -> dict:
    page = response.content.decode()
    return json.loads(
        re.search(r'<script id="wallboard-config" type="application/json">(.*?)</script>', page)[1]
    )


def test_the_wallboard_requires_login(client, companies):
    response = client.get("/dashboard/onfarma/wallboard/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/onfarma/wallboard/"


def test_it_answers_404_for_a_company_not_assigned(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    for slug in ["other", "does-not-exist"]:
        response = client.get(f"/dashboard/{slug}/wallboard/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")


def test_a_superuser_opens_any_wallboard(admin_client, companies):
    assert admin_client.get("/dashboard/other/wallboard/").status_code == 200


def test_the_wallboard_reads_the_dashboards_stream(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    response = client.get(
        reverse("dashboard:wallboard", args=["onfarma"]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    config = _config(response)
    assert config["wsPath"] == "/ws/dashboard/onfarma/"
    assert config["timeZone"] == "Europe/Madrid"
    assert config["statusLabels"]["logged_out"] == "Logged out"
    assert set(config["statusLabels"]) == {
        "available",
        "unavailable",
        "busy",
        "ringing",
        "pause",
        "logged_out",
    }
    assert set(config["alarmTexts"]) == {
        "waiting_calls",
        "wait_seconds",
        "service_ratio",
        "abandoned_ratio",
    }
    for text in config["alarmTexts"].values():
        assert {"{value}", "{threshold}", "{excess}"} <= set(re.findall(r"\{\w+\}", text))
    page = response.content.decode()
    assert page.index("dashboard/stream.js") < page.index("dashboard/wallboard.js")
    assert "dashboard/wallboard.css" in page
    assert "http://" not in page  # nothing from a CDN


def test_the_wallboard_speaks_spanish(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    response = client.get("/dashboard/onfarma/wallboard/", HTTP_ACCEPT_LANGUAGE="es")
    config = _config(response)
    assert config["statusLabels"]["logged_out"] == "Fuera de colas"
    assert config["texts"]["longestWait"] == "Espera más larga ahora"
    assert config["alarmTexts"]["waiting_calls"] == (
        "{value} en espera, alarma con {threshold}: {excess} de más"
    )
    assert "Panel mural" in response.content.decode()


def test_the_company_list_links_each_wallboard(client, companies, make_supervisor):
    client.force_login(make_supervisor(companies[0]))
    page = client.get("/dashboard/").content.decode()
    assert 'href="/dashboard/onfarma/wallboard/"' in page
    assert 'href="/dashboard/other/wallboard/"' not in page
