"""End to end with Debian's chromium: the report pages, a CSV export, a recording played and seeked."""

from __future__ import annotations

import csv
import io
import os
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from pbx.models.history import CdrRecord, QueueEntry
from tests.dashboard.browser import ARGS, CHROMIUM, async_playwright, watch_csp

try:
    from playwright.async_api import expect
except ImportError:  # pragma: no cover - depends on the machine
    expect = None

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        async_playwright is None, reason="playwright is not installed (pip install playwright)"
    ),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is absent (apt-get install -y chromium)",
    ),
]

# `server` (daphne on the test database) and `redis_everywhere` come from tests/dashboard/conftest.py.
SCREENSHOT = Path(os.environ.get("SWAN_REPORTS_SCREENSHOT", "/tmp/swan-reports.png"))
DAY = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 09:00 in Madrid
CALLS = 12  # every third abandoned: 8 answered, 4 abandoned


@pytest.fixture
def recordings(tmp_path, monkeypatch):
    """The server's RECORDINGS_ROOT (it reads the environment when it starts)."""
    root = tmp_path / "rec"
    monkeypatch.setenv("RECORDINGS_ROOT", str(root))
    return root


def _populate(make_company, make_user, make_queue, make_supervisor, root) -> bytes:
    company = make_company(slug="onfarma", name="ONFARMA")
    ana = make_user(company, "201", "Ana García")
    queue = make_queue(company, "q-soporte", display_name="Soporte", members=[ana])
    for n in range(CALLS):
        answered = n % 3 != 0
        QueueEntry.objects.create(
            callid=f"1767600000.{n}",
            queue_name=queue.name,
            queue=queue,
            company=company,
            caller=f"6000000{n:02d}",
            entered_at=DAY + timedelta(minutes=10 * n),
            answered_at=DAY + timedelta(minutes=10 * n, seconds=4 + n) if answered else None,
            outcome="answered" if answered else "abandoned",
            wait_seconds=4 + n,
            talk_seconds=60 if answered else 0,
            agent="PJSIP/201" if answered else "",
            agent_user=ana if answered else None,
        )
    last = CALLS - 1  # 11: answered, the newest
    CdrRecord.objects.create(
        calldate=DAY + timedelta(minutes=10 * last),
        src=f"6000000{last}",
        dst="q-soporte",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/201-1",
        channel_device="PJSIP/trunk",
        dstchannel_device="PJSIP/201",
        uniqueid=f"1767600000.{last}",
        linkedid=f"1767600000.{last}",
        billsec=60,
        disposition="ANSWERED",
        company=company,
        digest="00000000-0000-0000-0000-000000000011",
    )
    folder = root / "2026" / "01" / "05"
    folder.mkdir(parents=True)
    path = folder / f"q-1767600000.{last}.wav"
    with wave.open(str(path), "wb") as audio:  # 4 s of a quiet square wave, 8 kHz mono
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes((b"\x00\x04" * 20 + b"\x00\xfc" * 20) * 800)
    make_supervisor(company, username="marta")
    return path.read_bytes()


async def test_a_supervisor_reads_the_reports_exports_a_table_and_plays_a_call(
    recordings, server, make_company, make_user, make_queue, make_supervisor
):
    await database_sync_to_async(_populate)(
        make_company, make_user, make_queue, make_supervisor, recordings
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = await browser.new_page(
                viewport={"width": 1440, "height": 1000}, locale="en-US", accept_downloads=True
            )
            violations = await watch_csp(page)
            await page.goto(f"{server}/accounts/login/?next=/dashboard/onfarma/")
            await page.fill("#id_username", "marta")
            await page.fill("#id_password", "s3cret-Pass")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server}/dashboard/onfarma/")

            await page.click("text=Reports")
            await page.fill("#report-from", "2026-01-05")
            await page.fill("#report-to", "2026-01-05")
            await page.click("button[type=submit] >> text=Show")
            await page.wait_for_url("**/reports/?from=2026-01-05&to=2026-01-05")
            row = page.locator("#table-queues tbody tr").first
            await expect(row.locator("th")).to_have_text("q-soporte")
            cells = await row.locator("td").all_inner_texts()
            # name, offered, answered, unanswered, abandoned, short abandons (waits 4 and 7 … under 5)
            assert cells[:6] == ["Soporte", "12", "8", "4", "4", "1"]
            # the hour chart: two bars for each of the 24 hours
            await expect(
                page.locator("svg.chart").first.locator("rect.bar-answered")
            ).to_have_count(24)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            await page.locator("#hours-title ~ details summary").click()  # unfold the table
            hours_table = page.locator("#table-hours")
            await expect(hours_table).to_be_visible()
            shown = [
                await tr.locator("th, td").all_inner_texts()
                for tr in await hours_table.locator("tbody tr").all()
            ]
            async with page.expect_download() as download_info:
                await page.locator("#hours-title ~ p a.export").click()
            download = await download_info.value
            assert download.suggested_filename == "onfarma-hours-2026-01-05-2026-01-05.csv"
            exported = list(
                csv.reader(io.StringIO((await download.path()).read_text(encoding="utf-8-sig")))
            )
            assert exported[0] == ["Hour", "Answered", "Abandoned", "Unanswered"]
            assert exported[1:] == shown
            assert exported[10] == ["09:00", "4", "2", "2"]  # 09:00-09:59 Madrid: calls 0-5

            await page.click("nav.report-nav >> text=Agents")
            agent = page.locator("#table-agents tbody tr").first
            await expect(agent.locator("th")).to_have_text("201")
            assert (await agent.locator("td").all_inner_texts())[:4] == [
                "Ana García",
                "8",
                "0:08:00",
                "0:01:00",
            ]
            await agent.locator("a").click()  # the agent's calls
            await page.wait_for_url("**/reports/calls/?**agent=201")
            await expect(page.locator("#table-calls tbody tr")).to_have_count(8)

            statuses: list[int] = []
            page.on(
                "response",
                lambda r: statuses.append(r.status) if "/recording-file/" in r.url else None,
            )
            player = page.locator("#table-calls tbody tr").first.locator("audio")
            duration = await player.evaluate(
                """audio => new Promise((resolve, reject) => {
                    audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
                    audio.addEventListener("error", () => reject(audio.error.code));
                    audio.preload = "auto";
                    audio.load();
                })"""
            )
            assert duration == pytest.approx(4.0, abs=0.05)
            position = await player.evaluate(
                """audio => new Promise(resolve => {
                    audio.addEventListener("seeked", () => resolve(audio.currentTime));
                    audio.currentTime = 3;
                })"""
            )
            assert position == pytest.approx(3.0, abs=0.05)
            # Chromium asks for media with Range (`bytes=0-`): the answers are partial content.
            assert statuses, "no recording-file request"
            assert set(statuses) == {206}, statuses
            assert violations == []
        finally:
            await browser.close()
