"""The web tier's settings (swanproject/webtier.py) and the client address behind the proxy."""

from __future__ import annotations

import pytest

from swanproject.proxy import client_address, trusted_networks
from swanproject.webtier import ConfigError, WebTier

LOOPBACK = trusted_networks(["127.0.0.1/32", "::1/128"])


def test_defaults_and_the_commands_they_give():
    tier = WebTier.from_env({})
    assert (tier.host, tier.http_port, tier.ws_ports) == ("127.0.0.1", 8000, [8001])
    argv = tier.gunicorn_argv("python")
    assert argv[argv.index("--worker-class") + 1] == "sync"
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8000"
    assert argv[-1] == "swanproject.wsgi:application"
    assert tier.http_env({})["DATABASE_CONN_MAX_AGE"] == "300"
    assert tier.http_env({"DATABASE_CONN_MAX_AGE": "0"})["DATABASE_CONN_MAX_AGE"] == "0"
    assert "--proxy-headers" in tier.daphne_argv(8001, "python")


def test_several_daphne_processes_take_consecutive_ports():
    tier = WebTier.from_env({"SWAN_WS_PORT": "9001", "SWAN_WS_WORKERS": "3"})
    assert tier.ws_ports == [9001, 9002, 9003]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SWAN_HTTP_WORKERS": "two"}, "SWAN_HTTP_WORKERS='two' is not a whole number"),
        ({"SWAN_HTTP_WORKERS": "0"}, "SWAN_HTTP_WORKERS='0' must be 1 or more"),
        ({"SWAN_HTTP_PORT": "70000"}, "SWAN_HTTP_PORT=70000 is not a TCP port"),
        ({"SWAN_HTTP_PORT": "8002", "SWAN_WS_WORKERS": "2"}, "is one of the websocket ports"),
        ({"SWAN_WS_PORT": "65535", "SWAN_WS_WORKERS": "2"}, "runs past port 65535"),
    ],
)
def test_a_bad_value_is_named(environ, message):
    with pytest.raises(ConfigError, match=message):
        WebTier.from_env(environ)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("127.0.0.1", "203.0.113.7", "203.0.113.7"),  # nginx on the same host
        ("127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the proxy's own peer wins
        ("127.0.0.1", "203.0.113.7, 127.0.0.1", "203.0.113.7"),  # trusted hops are skipped
        ("203.0.113.9", "10.9.9.9", "203.0.113.9"),  # not a proxy: it cannot say who it is
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7, junk", "127.0.0.1"),
        ("::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_client_address(peer, forwarded, client):
    assert client_address(peer, forwarded, LOOPBACK) == client


@pytest.mark.django_db
def test_a_key_limited_to_a_network_sees_the_client_behind_the_proxy(
    client, make_company, make_api_key, settings
):
    company = make_company(slug="acme")
    key = make_api_key(company, allowed_networks="203.0.113.0/24")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    inside = client.get("/blf-users/acme", HTTP_X_FORWARDED_FOR="203.0.113.7", **headers)
    assert inside.status_code == 200, inside.json()
    outside = client.get("/blf-users/acme", HTTP_X_FORWARDED_FOR="198.51.100.1", **headers)
    assert outside.status_code == 403
    assert "198.51.100.1" in outside.json()["error-msg"]
    spoofed = client.get(
        "/blf-users/acme", HTTP_X_FORWARDED_FOR="203.0.113.7", REMOTE_ADDR="198.51.100.1", **headers
    )
    assert spoofed.status_code == 403  # a peer that is no proxy cannot claim an address


@pytest.mark.django_db
def test_pages_served_without_a_proxy_find_the_websockets_on_their_port(
    admin_client, make_company, settings
):
    import json
    import re

    make_company(slug="acme")
    settings.SWAN_WEBSOCKET_PORT = 8001
    response = admin_client.get("/dashboard/acme/", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    connect = re.search(r"connect-src ([^;]+)", response["Content-Security-Policy"]).group(1)
    assert {"ws://127.0.0.1:8001", "wss://127.0.0.1:8001"} <= set(connect.split())
    config = re.search(r'id="dashboard-config"[^>]*>(.*?)</script>', response.content.decode())
    assert json.loads(config.group(1))["wsPort"] == 8001

    settings.SWAN_WEBSOCKET_PORT = None  # behind the proxy: the page's own origin
    response = admin_client.get("/dashboard/acme/", HTTP_HOST="127.0.0.1:8000")
    connect = re.search(r"connect-src ([^;]+)", response["Content-Security-Policy"]).group(1)
    assert "ws://127.0.0.1:8000" in connect.split()
