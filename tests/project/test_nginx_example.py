"""deploy/nginx-swan.conf: every location that proxies to SWAN says which host and scheme the
client used. Without Host, Django sees the upstream's name ("swan_http") and answers 400
(ALLOWED_HOSTS); without X-Forwarded-Proto, SECURE_SSL_REDIRECT answers 301 to HTTPS requests."""

from __future__ import annotations

import re
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx-swan.conf"


def _locations() -> dict[str, str]:
    text = re.sub(r"#[^\n]*", "", CONFIG.read_text())
    return dict(re.findall(r"location\s+([^{]+?)\s*\{([^}]*)\}", text))


def test_every_proxied_location_passes_the_host_and_the_scheme():
    proxied = {name: body for name, body in _locations().items() if "proxy_pass" in body}
    assert set(proxied) == {"/ws/", "= /metrics", "/"}
    for name, body in proxied.items():
        assert re.search(r"proxy_set_header\s+Host\s+\$host;", body), name
        assert re.search(r"proxy_set_header\s+X-Forwarded-Proto\s+https;", body), name
        assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", body), name
