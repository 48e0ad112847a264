"""End to end: a supervisor logs in with Debian's chromium and watches the dashboard change live."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

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

pytestmark = BROWSER_MARKS

# The README's picture is refreshed on purpose (SWAN_SCREENSHOT=docs/dashboard.png), not by every
# run: a test run must not change tracked files.
SCREENSHOT = Path(os.environ.get("SWAN_SCREENSHOT", "/tmp/swan-dashboard.png"))


def _populate(make_company, make_user, make_queue, make_supervisor):
    company = make_company(slug="onfarma", name="ONFARMA")
    now = timezone.now()
    people = [
        ("200", "Ana García", "NOT_INUSE"),
        ("201", "Luis Pérez", "INUSE"),
        ("202", "Marta Soler", "RINGING"),
        ("203", "Jordi Puig", "NOT_INUSE"),
        ("204", "Elena Ruiz", "UNAVAILABLE"),
        ("205", "Pau Vidal", "NOT_INUSE"),
    ]
    users = {}
    for extension, name, state in people:
        users[extension] = make_user(company, extension, name)
        DeviceState.objects.create(
            interface=f"PJSIP/{extension}",
            state=state,
            changed_at=now - timezone.timedelta(minutes=int(extension) - 195),
            confirmed_at=now,
        )
    UserPresence.objects.create(
        user=users["203"], paused=True, pause_reason="Descanso", changed_at=now, confirmed_at=now
    )
    queue = make_queue(
        company,
        "q-soporte",
        members=[users["200"], users["201"], users["203"]],
        alarm_waiting_calls=2,
        alarm_wait_seconds=None,
    )
    make_queue(company, "q-ventas", members=[users["205"]])
    for extension, paused, in_call in [
        ("200", False, False),
        ("201", False, True),
        ("203", True, False),
    ]:
        QueueMemberState.objects.create(
            queue_name="q-soporte",
            queue=queue,
            interface=f"PJSIP/{extension}",
            member_name=users[extension].name,
            user=users[extension],
            paused=paused,
            paused_reason="Descanso" if paused else "",
            in_call=in_call,
            changed_at=now,
            confirmed_at=now,
        )
    # Some history for the chart: calls in each hour so far today.
    local_hour = timezone.localtime(now, ZoneInfo(company.time_zone)).hour
    for hours_ago in range(local_hour + 1):
        for n in range(3 + (hours_ago * 7) % 5):
            QueueEntry.objects.create(
                callid=f"{hours_ago}.{n}",
                queue_name=queue.name,
                queue=queue,
                company=company,
                entered_at=now - timezone.timedelta(hours=hours_ago, seconds=n),
                outcome="abandoned" if n % 4 == 3 else "answered",
                wait_seconds=5 + 7 * n,
                talk_seconds=60,
            )
    make_supervisor(company, username="marta")
    return company, users, queue


def _caller_arrives(queue, n: int) -> None:
    now = timezone.now()
    QueueCallerState.objects.create(
        queue_name=queue.name,
        queue=queue,
        unique_id=f"1700000000.{n}",
        caller_id_num=f"+3460011122{n}",
        position=n,
        entered_at=now - timezone.timedelta(seconds=40 * n),
        confirmed_at=now,
    )


def _device_changes(interface: str, state: str) -> None:
    now = timezone.now()
    DeviceState.objects.filter(interface=interface).update(state=state, changed_at=now)


async def test_a_supervisor_sees_status_changes_and_alarms_live(
    server, make_company, make_user, make_queue, make_supervisor
):
    _company, users, queue = await database_sync_to_async(_populate)(
        make_company, make_user, make_queue, make_supervisor
    )
    await sync_to_async(broadcast.set_pbx_connected)("default", True)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
            violations = await watch_csp(page)
            await page.goto(f"{server}/accounts/login/?next=/dashboard/onfarma/")
            await page.fill("#id_username", "marta")
            await page.fill("#id_password", "s3cret-Pass")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server}/dashboard/onfarma/")

            ana = page.locator('[data-extension="200"]')
            await expect(ana).to_have_attribute("data-status", "available", timeout=10_000)
            await expect(ana.locator(".status-text")).to_have_text("Available")
            await expect(page.locator("#connection")).to_have_attribute("data-state", "live")

            await database_sync_to_async(_device_changes)("PJSIP/200", "INUSE")
            await sync_to_async(broadcast.publish_users)([users["200"].pk])
            await expect(ana).to_have_attribute("data-status", "busy", timeout=10_000)
            await expect(ana.locator(".status-text")).to_have_text("Busy")

            soporte = page.locator('.queue-card[data-group="q-soporte"]')
            await expect(soporte).not_to_have_class("queue-card is-alarm")
            for n in (1, 2, 3):
                await database_sync_to_async(_caller_arrives)(queue, n)
            await sync_to_async(broadcast.publish_queues)([queue.pk])
            await expect(soporte).to_have_class("queue-card is-alarm", timeout=10_000)
            await expect(page.locator("#alarm-banner")).to_be_visible()
            await expect(page.locator("#alarm-banner")).to_contain_text("q-soporte")
            await expect(soporte.locator(".callers li")).to_have_count(3)

            SCREENSHOT.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            await page.keyboard.press("Tab")
            await expect(page.locator(".skip-link")).to_be_focused()
            await page.keyboard.press("Enter")
            await page.keyboard.press("Tab")
            await expect(page.locator(".blf-card").first).to_be_focused()

            await sync_to_async(broadcast.set_pbx_connected)("default", False)
            await expect(page.locator("#connection")).to_have_attribute("data-state", "stale")
            assert violations == []
        finally:
            await browser.close()


def _make_admin() -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "root@example.com", "s3cret-Pass")


async def test_the_admin_and_the_api_docs_work_under_their_policies(server, company):
    await database_sync_to_async(_make_admin)()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = await browser.new_page(locale="en-US")
            violations = await watch_csp(page)
            await page.goto(f"{server}/admin/login/?next=/admin/")
            await page.fill("#id_username", "root")
            await page.fill("#id_password", "s3cret-Pass")
            await page.click("input[type=submit]")
            await page.wait_for_url(f"{server}/admin/")
            await page.goto(f"{server}/admin/agenda/agenda/add/")
            await expect(page.locator("#id_name")).to_be_visible()
            await page.goto(f"{server}/admin/pbx/pbxuser/")
            await expect(page.locator("#changelist")).to_be_visible()

            await page.goto(f"{server}/api/docs/")
            # Swagger UI ran its init script (a file) and rendered the schema it fetched.
            await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                "SWAN v2 API", timeout=15_000
            )
            await expect(page.locator(".opblock").first).to_be_visible()
            assert violations == []
        finally:
            await browser.close()
