"""End to end with Debian's chromium: the wallboard on a 1920x1080 screen, and the landing page."""

from __future__ import annotations

import os
from pathlib import Path

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.utils import timezone

from dashboard import broadcast
from pbx.models import DeviceState, QueueCallerState, QueueMemberState, UserPresence
from pbx.models.history import QueueEntry
from tests.dashboard.browser import (
    ARGS,
    BROWSER_MARKS,
    CHROMIUM,
    async_playwright,
    expect,
    watch_csp,
)
from tests.today import earlier_today

pytestmark = BROWSER_MARKS

# As the dashboard's picture: written where asked (SWAN_WALLBOARD_SCREENSHOT=docs/wallboard.png).
SCREENSHOT = Path(os.environ.get("SWAN_WALLBOARD_SCREENSHOT", "/tmp/swan-wallboard.png"))
FIRST_NAMES = ["Ana", "Luis", "Marta", "Jordi", "Elena", "Pau", "Núria", "Sergio", "Lucía", "Iván"]
LAST_NAMES = ["García", "Pérez", "Soler", "Puig", "Ruiz", "Vidal", "Ferrer", "Serra"]
# Names as long as real ones get: they must wrap or shrink, never be cut.
LONG_NAMES = {
    "207": "María del Carmen Fernández-Villaverde de la Peña",
    "215": "Maximiliano Bartolomé Hernández-Santiesteban",
    "231": "Wenceslao Fontanals i Puigdollers",
}
STATES = ["NOT_INUSE", "INUSE", "NOT_INUSE", "RINGING", "NOT_INUSE", "UNAVAILABLE", "NOT_INUSE"]
QUEUES = [
    ("q-soporte", "Soporte técnico"),
    ("q-ventas", "Ventas"),
    ("q-citas", "Citas y reservas de farmacias"),
    ("q-facturas", ""),
    ("q-urgencias", "Urgencias 24 h"),
    ("q-vip", "Clientes VIP"),
]
LOGGED_OUT = {"236", "237", "238", "239"}
AGENT_COUNT = 40


def _name(index: int, extension: str) -> str:
    if extension in LONG_NAMES:
        return LONG_NAMES[extension]
    return f"{FIRST_NAMES[index % 10]} {LAST_NAMES[(index // 3) % 8]}"


def _populate(make_company, make_user, make_queue, make_supervisor):
    """40 agents (4 logged out of every queue, 2 paused), 6 queues, two of them in alarm."""
    company = make_company(slug="onfarma", name="ONFARMA")
    now = timezone.now()
    users = {}
    for index in range(AGENT_COUNT):
        extension = str(200 + index)
        users[extension] = make_user(company, extension, _name(index, extension))
        DeviceState.objects.create(
            interface=f"PJSIP/{extension}",
            state=STATES[index % len(STATES)],
            changed_at=now - timezone.timedelta(seconds=37 * index),
            confirmed_at=now,
        )
    for extension in ("204", "218"):
        UserPresence.objects.create(
            user=users[extension],
            paused=True,
            pause_reason="Descanso",
            changed_at=now,
            confirmed_at=now,
        )
    queues = {}
    extensions = sorted(users)
    for position, (name, display_name) in enumerate(QUEUES):
        members = [users[e] for e in extensions[position * 6 : position * 6 + 10]]
        queues[name] = make_queue(
            company,
            name,
            members=members,
            display_name=display_name,
            alarm_waiting_calls=3,
            alarm_wait_seconds=None,
            alarm_service_ratio_below=80 if name == "q-ventas" else None,
        )
        for user in members:
            if user.extension in LOGGED_OUT:
                continue
            QueueMemberState.objects.create(
                queue_name=name,
                queue=queues[name],
                interface=f"PJSIP/{user.extension}",
                member_name=user.name,
                user=user,
                paused=user.extension in {"204", "218"},
                paused_reason="Descanso" if user.extension in {"204", "218"} else "",
                in_call=STATES[int(user.extension) % len(STATES)] == "INUSE",
                changed_at=now,
                confirmed_at=now,
            )
    # q-ventas answered 4 calls today, 2 of them within its 20 s: 50 % against a target of 80 %.
    for n, wait in enumerate([5, 10, 40, 50]):
        QueueEntry.objects.create(
            callid=f"1700000100.{n}",
            queue_name="q-ventas",
            queue=queues["q-ventas"],
            company=company,
            entered_at=earlier_today(60 * (n + 1)),
            outcome="answered",
            wait_seconds=wait,
            talk_seconds=60,
        )
    for n in range(1, 5):
        _caller_arrives(queues["q-soporte"], n)
    make_supervisor(company, username="marta")
    return users, queues


def _caller_arrives(queue, n: int) -> None:
    now = timezone.now()
    QueueCallerState.objects.create(
        queue_name=queue.name,
        queue=queue,
        unique_id=f"1700000000.{queue.pk}.{n}",
        caller_id_num=f"+3460011122{n}",
        position=n,
        entered_at=now - timezone.timedelta(seconds=15 * n),
        confirmed_at=now,
    )


def _device_changes(interface: str, state: str) -> None:
    DeviceState.objects.filter(interface=interface).update(state=state, changed_at=timezone.now())


def _log_out(user) -> None:
    QueueMemberState.objects.filter(user=user).delete()


_FIT = """() => {
  const doc = document.documentElement;
  const tiles = [...document.querySelectorAll(".wb-agent")];
  const names = [...document.querySelectorAll(".wb-agent-name")];
  const inView = (r) => r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
  return {
    scrollHeight: doc.scrollHeight, scrollWidth: doc.scrollWidth,
    innerHeight, innerWidth,
    tiles: tiles.length,
    tilesOutOfView: tiles.filter((t) => !inView(t.getBoundingClientRect())).map((t) => t.dataset.extension),
    queuesOutOfView: [...document.querySelectorAll(".wb-queue")]
      .filter((q) => !inView(q.getBoundingClientRect())).map((q) => q.dataset.group),
    tilesOverflowing: tiles.filter((t) => t.scrollHeight > t.clientHeight + 1 || t.scrollWidth > t.clientWidth + 1)
      .map((t) => t.dataset.extension),
    namesCut: names.filter((n) => n.scrollWidth > n.clientWidth || n.scrollHeight > n.clientHeight + 1
        || getComputedStyle(n).textOverflow === "ellipsis")
      .map((n) => n.textContent),
    nameSizes: names.map((n) => parseFloat(getComputedStyle(n).fontSize)).sort((a, b) => a - b),
    smallestStatus: Math.min(...[...document.querySelectorAll(".wb-agent-status")]
      .map((n) => parseFloat(getComputedStyle(n).fontSize))),
    bigNumber: Math.min(...[...document.querySelectorAll(".wb-big-value")]
      .map((n) => parseFloat(getComputedStyle(n).fontSize))),
  };
}"""


async def _assert_fits(page) -> dict:
    fit = await page.evaluate(_FIT)
    assert fit["scrollHeight"] <= fit["innerHeight"], fit
    assert fit["scrollWidth"] <= fit["innerWidth"], fit
    assert fit["tiles"] == AGENT_COUNT
    assert fit["tilesOutOfView"] == [], fit
    assert fit["queuesOutOfView"] == [], fit
    assert fit["tilesOverflowing"] == [], fit
    assert fit["namesCut"] == [], fit
    # Readable from across a room on a 1080p screen; the longest names get smaller type.
    sizes = fit["nameSizes"]
    assert sizes[len(sizes) // 2] >= 24, fit
    assert sizes[0] >= 14, fit
    assert fit["smallestStatus"] >= 18, fit
    assert fit["bigNumber"] >= 48, fit
    return fit


async def test_the_wallboard_fits_one_screen_and_follows_the_stream(
    server, make_company, make_user, make_queue, make_supervisor
):
    users, queues = await database_sync_to_async(_populate)(
        make_company, make_user, make_queue, make_supervisor
    )
    await sync_to_async(broadcast.set_pbx_connected)("default", True)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080}, locale="en-US")
            violations = await watch_csp(page)
            await page.goto(f"{server}/accounts/login/?next=/dashboard/onfarma/wallboard/")
            await page.fill("#id_username", "marta")
            await page.fill("#id_password", "s3cret-Pass")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server}/dashboard/onfarma/wallboard/")

            await expect(page.locator(".wb-agent")).to_have_count(AGENT_COUNT, timeout=10_000)
            await expect(page.locator(".wb-queue")).to_have_count(len(QUEUES))
            await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            await page.wait_for_timeout(300)  # the resize observers' layout pass
            await _assert_fits(page)

            # Every name whole, as the directory spells it.
            names = await page.locator(".wb-agent-name").all_text_contents()
            assert names == [users[e].name for e in sorted(users, key=int)]
            # Queues by their display name, or the Asterisk name when it has none.
            shown = await page.locator(".wb-queue-name").all_text_contents()
            assert shown == [display or name for name, display in sorted(QUEUES)]

            for extension in LOGGED_OUT:
                tile = page.locator(f'.wb-agent[data-extension="{extension}"]')
                await expect(tile).to_have_attribute("data-status", "logged_out")
                await expect(tile.locator(".wb-agent-status")).to_have_text("Logged out")
            ana = page.locator('.wb-agent[data-extension="200"]')
            await expect(ana).to_have_attribute("data-status", "available")
            await expect(page.locator('.wb-agent[data-extension="204"]')).to_have_attribute(
                "data-status", "pause"
            )

            # Each alarm names its threshold and by how much it is broken.
            soporte = page.locator('.wb-queue[data-group="q-soporte"]')
            await expect(soporte).to_have_class("wb-queue is-alarm")
            await expect(soporte.locator(".wb-alarm-text")).to_have_text(
                ["4 waiting, alarm at 3: 1 over"]
            )
            ventas = page.locator('.wb-queue[data-group="q-ventas"]')
            await expect(ventas.locator(".wb-alarm-text")).to_have_text(
                ["Service level 50 %, target 80 %: 30 points under"]
            )
            await expect(page.locator('.wb-queue[data-group="q-vip"]')).to_have_class("wb-queue")

            # Live: a phone goes busy, an agent logs out of its last queue, callers pile up.
            await database_sync_to_async(_device_changes)("PJSIP/200", "INUSE")
            await sync_to_async(broadcast.publish_users)([users["200"].pk])
            await expect(ana).to_have_attribute("data-status", "busy", timeout=10_000)
            await expect(ana.locator(".wb-agent-status")).to_have_text("Busy")

            await database_sync_to_async(_log_out)(users["202"])
            await sync_to_async(broadcast.publish_queues)([q.pk for q in queues.values()])
            marta = page.locator('.wb-agent[data-extension="202"]')
            await expect(marta).to_have_attribute("data-status", "logged_out", timeout=10_000)

            for n in (5, 6):
                await database_sync_to_async(_caller_arrives)(queues["q-soporte"], n)
            await sync_to_async(broadcast.publish_queues)([queues["q-soporte"].pk])
            await expect(soporte.locator('[data-role="waiting"]')).to_have_text("6", timeout=10_000)
            await expect(soporte.locator(".wb-alarm-text")).to_have_text(
                ["6 waiting, alarm at 3: 3 over"]
            )
            await page.wait_for_timeout(300)
            await _assert_fits(page)

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))
            assert violations == []
        finally:
            await browser.close()


async def test_the_landing_page_links_the_dashboard_the_admin_and_the_api_docs(server):
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = await browser.new_page(locale="en-US")
            violations = await watch_csp(page)
            response = await page.goto(f"{server}/")
            assert response.status == 200
            await expect(page.locator("h1")).to_have_text("SWAN")

            await page.click("#link-dashboard")
            await page.wait_for_url(f"{server}/accounts/login/?next=/dashboard/")
            await expect(page.locator("h1")).to_have_text("Supervisor login")

            await page.goto(f"{server}/")
            await page.click("#link-admin")
            await page.wait_for_url(f"{server}/admin/login/?next=/admin/")
            await expect(page).to_have_title("Log in | SWAN admin")
            await expect(page.locator("#site-name")).to_have_text("SWAN administration")

            await page.goto(f"{server}/")
            await page.click("#link-api-docs")
            await page.wait_for_url(f"{server}/api/docs/")
            await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                "SWAN v2 API", timeout=15_000
            )
            assert violations == []
        finally:
            await browser.close()
