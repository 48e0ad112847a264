"""Every answer is the SWAN envelope: errors, unknown paths, wrong methods, auth and throttling."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from pbx.api.authentication import ApiKeyRateThrottle
from pbx.directory import lookups


def body(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    data = json.loads(response.content)
    assert set(data) == {"error", "error-msg", "result"}
    return data


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "delete", "put", "patch"])
def test_unknown_path_is_a_404_envelope_for_every_method(api, method):
    response = getattr(api, method)("/no/such/endpoint")
    assert response.status_code == 404
    data = body(response)
    assert data["error"] is True
    assert "/no/such/endpoint" in data["error-msg"]


@pytest.mark.django_db
def test_unknown_path_without_key_is_still_a_404_envelope():
    response = APIClient().get("/userstatus/200")  # paths are case-sensitive
    assert response.status_code == 404
    assert body(response)["error"] is True


@pytest.mark.django_db
def test_wrong_method_is_a_405_envelope_with_allow(api, company, make_user):
    make_user(company, "200")
    response = api.post("/username/200")
    assert response.status_code == 405
    assert "GET" in response["Allow"]
    assert "POST" in body(response)["error-msg"]


@pytest.mark.django_db
def test_paths_answer_with_and_without_trailing_slash_without_redirect(api, company, make_user):
    make_user(company, "200", "Ana García")
    for path in ("/username/200", "/username/200/"):
        response = api.get(path)
        assert response.status_code == 200
        assert body(response)["result"] == {"username": "Ana García"}


@pytest.mark.django_db
def test_success_body_keeps_non_ascii_unescaped(api, company, make_user):
    make_user(company, "200", "Ana García")
    response = api.get("/username/200")
    assert "García".encode() in response.content
    assert body(response) == {
        "error": False,
        "error-msg": None,
        "result": {"username": "Ana García"},
    }


@pytest.mark.django_db
def test_no_key_is_a_401_envelope(company):
    response = APIClient().get("/blf-users/onfarma")
    assert response.status_code == 401
    assert "Authorization: Bearer" in body(response)["error-msg"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{"HTTP_AUTHORIZATION": "Bearer swan_wrong"}, {"HTTP_X_API_KEY": "swan_wrong"}],
)
def test_wrong_key_is_a_401_envelope(company, headers):
    response = APIClient().get("/blf-users/onfarma", **headers)
    assert response.status_code == 401
    assert body(response)["error"] is True


@pytest.mark.django_db
def test_inactive_key_is_refused(company, make_api_key):
    raw = make_api_key(is_active=False)
    response = APIClient().get("/blf-users/onfarma", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401


@pytest.mark.django_db
def test_key_limited_to_a_network_is_refused_elsewhere(company, make_api_key):
    raw = make_api_key(allowed_networks="10.0.0.0/8")
    refused = APIClient().get("/blf-users/onfarma", HTTP_X_API_KEY=raw, REMOTE_ADDR="192.168.1.10")
    assert refused.status_code == 403
    assert "192.168.1.10" in body(refused)["error-msg"]
    allowed = APIClient().get("/blf-users/onfarma", HTTP_X_API_KEY=raw, REMOTE_ADDR="10.1.2.3")
    assert allowed.status_code == 200


@pytest.mark.django_db
def test_key_use_is_recorded(company, make_api_key):
    from pbx.models import ApiKey

    raw = make_api_key()
    APIClient().get("/blf-users/onfarma", HTTP_X_API_KEY=raw)
    assert ApiKey.objects.get().last_used_at is not None


@pytest.mark.django_db
def test_throttled_key_gets_a_429_envelope(company, api, monkeypatch):
    cache.clear()
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    assert api.get("/blf-users/onfarma").status_code == 200
    assert api.get("/blf-users/onfarma").status_code == 200
    response = api.get("/blf-users/onfarma")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert body(response)["error"] is True
    cache.clear()


@pytest.mark.django_db
def test_unexpected_error_is_a_logged_500_envelope(api, company, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(lookups, "company_numbers", explode)
    response = api.get("/company-numbers/onfarma")
    assert response.status_code == 500
    data = body(response)
    assert data["error"] is True
    assert "fire" not in data["error-msg"]  # internals are logged, not shown
    assert "database on fire" in caplog.text


@pytest.mark.django_db
def test_malformed_json_body_is_a_400_envelope(api):
    response = api.generic(
        "POST", "/update-agenda", '{"name": "x", "phones": [', content_type="application/json"
    )
    assert response.status_code == 400
    assert body(response)["error"] is True


@pytest.mark.django_db
def test_unsupported_body_type_is_a_415_envelope(api):
    response = api.generic("POST", "/update-agenda", "name=x", content_type="text/plain")
    assert response.status_code == 415
    assert body(response)["error"] is True


@pytest.mark.django_db
def test_legacy_mode_answers_errors_with_http_200(api, settings):
    settings.SWAN_ALWAYS_HTTP_200 = True
    response = api.get("/company-numbers/nobody")
    assert response.status_code == 200
    assert body(response)["error"] is True


@pytest.mark.django_db
def test_english_is_chosen_by_accept_language(api):
    spanish = body(api.get("/company-numbers/nobody"))["error-msg"]
    english = body(api.get("/company-numbers/nobody", HTTP_ACCEPT_LANGUAGE="en"))["error-msg"]
    assert english == "Company 'nobody' not found."
    assert spanish == "No se encuentra la empresa 'nobody'."


@pytest.mark.django_db
def test_options_is_not_part_of_the_contract(api, company, make_user):
    response = api.options("/username/200")
    assert response.status_code == 405
    assert body(response)["error"] is True


@pytest.mark.django_db
def test_unknown_path_answer_declares_utf8(api):
    response = api.get("/ñ")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert body(response)["error"] is True


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*, text/html"])
def test_an_answer_is_json_whatever_json_friendly_accept_says(api, company, accept):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = api.get("/company-numbers/onfarma", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.content) == {"error": False, "error-msg": None, "result": []}


def test_an_accept_that_refuses_json_is_a_406_envelope(api, company):
    response = api.get("/company-numbers/onfarma", HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert json.loads(response.content)["error"] is True


@pytest.mark.parametrize("value", ["xml", "json", "api", ""])
def test_a_format_parameter_is_no_parameter_of_the_contract(api, company, value):
    """DRF's `?format=` override answered 404 on a path that exists when it named no renderer."""
    response = api.get(f"/company-numbers/onfarma?format={value}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.content) == {"error": False, "error-msg": None, "result": []}


def test_the_schema_still_answers_json_for_format_json(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert json.loads(response.content)["openapi"].startswith("3.")
