"""The front door: `/` links the dashboard, the admin and the API docs; the admin says SWAN."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_the_root_is_a_landing_page_with_the_three_entrances(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<h1>SWAN</h1>" in page
    for href in [
        'href="/dashboard/"',
        'href="/admin/"',
        'href="/api/docs/"',
        'href="/api/schema/"',
    ]:
        assert href in page
    assert "Content-Security-Policy" in response.headers


@pytest.mark.django_db
def test_the_landing_page_speaks_spanish(client):
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Documentación de la API" in page
    assert "Panel de supervisión" in page


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_on_the_root_get_a_405_envelope(client, method):
    response = getattr(client, method)("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json() == {
        "error": True,
        "error-msg": f'Method "{method.upper()}" not allowed.',
        "result": None,
    }


@pytest.mark.django_db
def test_unknown_paths_still_answer_the_json_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json()["error"] is True


def test_the_admin_header_and_title_say_swan(admin_client):
    page = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<title>Companies, PBX and call history | SWAN admin</title>" in page
    assert ">SWAN administration<" in page
    spanish = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert ">Administración de SWAN<" in spanish
