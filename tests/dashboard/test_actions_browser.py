"""End to end in Debian's chromium: a supervisor pauses an agent from the dashboard against the
simulated Asterisk, reads the PBX's answer in the page, and sees the card change live (the real
listener, Redis, daphne's websocket); with the PBX gone, the page says so."""

from __future__ import annotations

import threading

import pytest
from channels.db import database_sync_to_async

from dashboard.models import Supervisor
from dashboard.publisher import DashboardPublisher
from pbx.gateway.ami import AmiGateway
from pbx.live.listener import Listener, ListenerSettings
from pbx.simulator import SimulatedPbx
from pbx.simulator.callcentre import CallCentre
from pbx.simulator.config import QUIET
from tests.dashboard.browser import (
    ARGS,
    BROWSER_MARKS,
    CHROMIUM,
    async_playwright,
    expect,
    watch_csp,
)

pytestmark = BROWSER_MARKS

USERNAME, SECRET = "swan-test", "s3cret"
FAST = ListenerSettings(
    lease_seconds=2.0, ping_seconds=0.5, reconcile_seconds=3600, backoff_first=0.1, backoff_max=0.3
)


@pytest.fixture
def directory(company, make_user, make_queue, make_supervisor):
    ana = make_user(company, "200", "Ana García")
    luis = make_user(company, "201", "Luis Pérez")
    make_queue(company, "q-soporte", members=[ana, luis])
    marta = make_supervisor(company, username="marta")
    Supervisor.objects.filter(user=marta).update(may_pause=True)
    return marta


@pytest.fixture
def pbx(directory):
    simulator = SimulatedPbx(
        CallCentre.from_directory(behaviour=QUIET, seed=5),
        port=0,
        username=USERNAME,
        secret=SECRET,
        speed=0,
    )
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def server_env(pbx) -> dict[str, str]:
    """The test server's gateway speaks to the simulator."""
    return {
        "PBX_GATEWAY": "pbx.gateway.ami.AmiGateway",
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": str(pbx.port),
        "AMI_USERNAME": USERNAME,
        "AMI_SECRET": SECRET,
        "AMI_TIMEOUT": "1",
    }


@pytest.fixture
def listener(pbx, redis_everywhere):
    """The real listener on a thread of this process, publishing through Redis to the server."""
    running = Listener(
        gateway_factory=lambda: AmiGateway("127.0.0.1", pbx.port, USERNAME, SECRET, 2.0),
        publisher=DashboardPublisher(),
        settings=FAST,
    )
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    assert running.active.wait(10), "the listener did not sync with the simulator"
    yield running
    stop.set()
    thread.join(10)


async def test_a_supervisor_pauses_an_agent_and_sees_the_pbx_answer_and_the_card(
    server, listener, pbx
):
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = await browser.new_page(locale="en-US")
            violations = await watch_csp(page)
            await page.goto(f"{server}/accounts/login/?next=/dashboard/onfarma/")
            await page.fill("#id_username", "marta")
            await page.fill("#id_password", "s3cret-Pass")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server}/dashboard/onfarma/")

            luis = page.locator('#blf [data-extension="201"]')
            await expect(luis).to_have_attribute("data-status", "available", timeout=10_000)
            buttons = page.locator("#action-form [data-action]")
            await expect(buttons).to_have_count(2)  # pause and unpause: all marta may do

            await page.locator('#blf [data-extension="200"]').click()
            await expect(page.locator("#action-agent")).to_have_value("200")
            await luis.click()  # clicking a card chooses that agent
            await expect(page.locator("#action-agent")).to_have_value("201")
            await page.fill("#action-reason", "Descanso")
            await page.click('#action-form [data-action="pause"]')

            result = page.locator("#action-result")
            await expect(result).to_have_attribute("data-outcome", "done", timeout=10_000)
            await expect(result.locator(".action-message")).to_have_text(
                "Extension 201 is paused: Descanso."
            )
            await expect(result.locator(".action-pbx li")).to_have_text(
                ["QueuePause PJSIP/201: Interface paused successfully"]
            )
            await expect(luis).to_have_attribute("data-status", "pause", timeout=10_000)
            await expect(luis.locator(".blf-reason")).to_have_text("Descanso")
            member = pbx.centre.queues["q-soporte"].members["PJSIP/201"]
            assert (member.paused, member.paused_reason) == (True, "Descanso")

            pbx.stop()  # the PBX goes away: the page says so instead of failing silently
            await page.click('#action-form [data-action="unpause"]')
            await expect(result).to_have_attribute("data-outcome", "unavailable", timeout=10_000)
            await expect(result.locator(".action-message")).to_have_text(
                "The PBX cannot be reached right now; try again later."
            )
            await expect(page.locator('#action-form [data-action="unpause"]')).to_be_enabled()
            assert violations == []
        finally:
            await browser.close()


async def test_a_supervisor_without_permissions_gets_no_buttons(server, directory, make_supervisor):
    await database_sync_to_async(
        lambda: Supervisor.objects.filter(user=directory).update(may_pause=False)
    )()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = await browser.new_page(locale="en-US")
            await page.goto(f"{server}/accounts/login/?next=/dashboard/onfarma/")
            await page.fill("#id_username", "marta")
            await page.fill("#id_password", "s3cret-Pass")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server}/dashboard/onfarma/")
            await expect(page.locator('#blf [data-extension="201"]')).to_be_visible()
            await expect(page.locator("#actions")).to_have_count(0)
            answer = await page.evaluate(
                """async () => {
                    const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
                    const response = await fetch("/dashboard/onfarma/actions/pause/", {
                        method: "POST", body: new URLSearchParams({extension: "201"}),
                        headers: {"X-CSRFToken": token}
                    });
                    return [response.status, await response.json()];
                }"""
            )
            assert answer[0] == 403  # the permission's refusal, not CSRF's: the token is good
            assert answer[1]["result"]["outcome"] == "denied"
        finally:
            await browser.close()
