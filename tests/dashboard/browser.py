"""Helpers of the browser tests: Debian's chromium, Playwright, a daphne server on Redis."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

__all__ = [
    "ARGS",
    "BROWSER_MARKS",
    "CHROMIUM",
    "REDIS_URL",
    "ROOT",
    "async_playwright",
    "database_url",
    "expect",
    "free_port",
    "redis_reachable",
    "watch_csp",
]

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
# A database of its own: the test empties it, and other users of Redis keep theirs. Two runs at
# once need one each (.ci/run sets DASHBOARD_E2E_REDIS_URL), or one's flush breaks the other.
REDIS_URL = os.environ.get("DASHBOARD_E2E_REDIS_URL", "redis://127.0.0.1:6379/9")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = expect = None


BROWSER_MARKS = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        async_playwright is None, reason="playwright is not installed (pip install playwright)"
    ),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (apt-get install -y chromium)"
    ),
]


def redis_reachable() -> bool:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database as a URL, for the server subprocess."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


async def watch_csp(page) -> list[str]:
    """Collects every Content-Security-Policy violation the page reports (the browser blocks it)."""
    violations: list[str] = []
    await page.add_init_script(_REPORT_CSP_VIOLATIONS)

    def on_console(message) -> None:
        text = message.text
        if "CSP violation" in text or "Content Security Policy" in text:
            violations.append(f"{page.url}: {text}")

    page.on("console", on_console)
    return violations
