"""The actions end to end against the simulated Asterisk: the page's POST, the AMI gateway over
TCP, the PBX's own answers, and the change reaching a supervisor's websocket through the real
listener (Redis carries it, as between the listener and daphne in production)."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from dashboard.models import Supervisor
from dashboard.publisher import DashboardPublisher
from pbx.gateway.ami import AmiGateway
from pbx.live.listener import Listener, ListenerSettings
from pbx.models import LiveChannel
from pbx.simulator import SimulatedPbx
from pbx.simulator.callcentre import CallCentre
from pbx.simulator.config import QUIET
from tests.websockets import websocket

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/dashboard/onfarma/"
USERNAME, SECRET = "swan-test", "s3cret"
FAST = ListenerSettings(
    lease_seconds=2.0, ping_seconds=0.5, reconcile_seconds=3600, backoff_first=0.1, backoff_max=0.3
)
FLAGS = {
    "may_pause": True,
    "may_log_agents": True,
    "may_listen": True,
    "may_whisper": True,
    "may_barge": True,
}


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def wait_until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def directory(company, make_user, make_queue, make_supervisor):
    ana = make_user(company, "200", "Ana García")
    luis = make_user(company, "201", "Luis Pérez")
    make_queue(company, "q-soporte", members=[ana, luis])
    marta = make_supervisor(company, username="marta")
    Supervisor.objects.filter(user=marta).update(phone="PJSIP/250", **FLAGS)
    return {"company": company, "ana": ana, "luis": luis, "marta": marta}


@pytest.fixture
def pbx(directory, redis_everywhere, settings):
    """The simulated PBX of the directory (the supervisor's phone included), the gateway's
    settings pointing at it, and the real listener on a thread of this process."""
    centre = CallCentre.from_directory(behaviour=QUIET, seed=5)
    simulator = SimulatedPbx(centre, port=0, username=USERNAME, secret=SECRET, speed=0)
    simulator.start()
    settings.PBX_GATEWAY = "pbx.gateway.ami.AmiGateway"
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", simulator.port
    settings.AMI_USERNAME, settings.AMI_SECRET, settings.AMI_TIMEOUT = USERNAME, SECRET, 2.0
    listener = Listener(
        gateway_factory=lambda: AmiGateway("127.0.0.1", simulator.port, USERNAME, SECRET, 2.0),
        publisher=DashboardPublisher(),
        settings=FAST,
    )
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert listener.active.wait(10), "the listener did not sync with the simulator"
        yield simulator
    finally:
        stop.set()
        thread.join(10)
        simulator.stop()


def post(user, action: str, **data) -> tuple[int, dict]:
    client = Client()
    client.force_login(user)
    response = client.post(f"/dashboard/onfarma/actions/{action}/", data)
    return response.status_code, json.loads(response.content)


async def next_message(communicator, wanted, timeout: float = 10.0) -> dict:
    """The first message that `wanted` accepts (others, such as queue updates, are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await communicator.receive_json_from(
            timeout=max(deadline - time.monotonic(), 0.1)
        )
        if wanted(message):
            return message


def user_status(extension: str, status: str):
    return lambda m: (
        m["type"] == "user.status"
        and m["payload"]["extension"] == extension
        and m["payload"]["status"] == status
    )


def members_of(queue: str):
    return lambda m: m["type"] == "queue.update" and m["payload"]["group"] == queue


async def test_a_pause_from_the_page_reaches_the_pbx_and_every_dashboard(directory, pbx):
    async with websocket(PATH, user=directory["marta"]) as (communicator, accepted, _code):
        assert accepted
        assert (await communicator.receive_json_from(timeout=10))["type"] == "snapshot"
        status, body = await sync_to_async(post)(
            directory["marta"], "pause", extension="201", reason="Descanso"
        )
        assert status == 200, body
        assert body["result"]["pbx"] == [
            {
                "action": "QueuePause",
                "target": "PJSIP/201",
                "ok": True,
                "message": "Interface paused successfully",
            }
        ]
        member = pbx.centre.queues["q-soporte"].members["PJSIP/201"]
        assert (member.paused, member.paused_reason) == (True, "Descanso")
        message = await next_message(communicator, user_status("201", "pause"))
        assert message["payload"]["reason"] == "Descanso"

        status, body = await sync_to_async(post)(directory["marta"], "unpause", extension="201")
        assert status == 200, body
        assert not member.paused
        await next_message(communicator, user_status("201", "available"))


async def test_log_out_and_back_in_change_the_queue_members_everyone_sees(directory, pbx):
    async with websocket(PATH, user=directory["marta"]) as (communicator, accepted, _code):
        assert accepted
        await communicator.receive_json_from(timeout=10)
        status, body = await sync_to_async(post)(directory["marta"], "logout", extension="201")
        assert status == 200, body
        assert [a["message"] for a in body["result"]["pbx"]] == ["Removed interface from queue"]
        assert "PJSIP/201" not in pbx.centre.queues["q-soporte"].members
        update = await next_message(communicator, members_of("q-soporte"))
        assert [m["extension"] for m in update["payload"]["members"]] == ["200"]

        status, body = await sync_to_async(post)(directory["marta"], "login", extension="201")
        assert status == 200, body
        assert [a["message"] for a in body["result"]["pbx"]] == ["Added interface to queue"]
        assert "PJSIP/201" in pbx.centre.queues["q-soporte"].members
        update = await next_message(
            communicator, lambda m: members_of("q-soporte")(m) and len(m["payload"]["members"]) == 2
        )
        assert [m["extension"] for m in update["payload"]["members"]] == ["200", "201"]


def _answered_call(pbx) -> str:
    """A caller in q-soporte answered by an agent; the agent's channel once SWAN has it."""
    with pbx.lock:
        pbx.centre.behaviour = dataclasses.replace(
            QUIET, answer_probability=1.0, ring_seconds=(1.0, 1.0), talk_seconds=(120.0, 120.0)
        )
        pbx.centre.caller_arrives("q-soporte", "600111222")
    for _ in range(20):
        pbx.step(0.5)
    return wait_until(
        lambda: (
            LiveChannel.objects.filter(interface__startswith="PJSIP/20", state="Up")
            .values_list("channel", flat=True)
            .first()
        )
    )


def test_listening_rings_the_supervisor_who_then_spies_on_the_agent(directory, pbx):
    agent = _answered_call(pbx)
    extension = agent.split("/")[1].split("-")[0]
    status, body = post(directory["marta"], "listen", extension=extension)
    assert status == 200, body
    assert body["result"]["pbx"][0]["message"] == "Originate successfully queued"
    pbx.step(5)  # the supervisor's phone answers, ChanSpy finds the agent's channel
    spying = [ch for ch in pbx.centre.channels.values() if ch.device == "PJSIP/250"]
    assert [(ch.application, ch.app_data) for ch in spying] == [("ChanSpy", f"{agent},qES")]
    assert pbx.centre.spies[spying[0].name].target.name == agent
    # the listener saw the supervisor's phone go off-hook like any channel
    assert wait_until(
        lambda: LiveChannel.objects.filter(interface="PJSIP/250", state="Up").exists()
    )


def test_the_pbx_refusing_is_a_409_with_its_own_words(directory, pbx):
    assert post(directory["marta"], "logout", extension="201")[0] == 200
    wait_until(lambda: not directory["luis"].live_memberships.exists())
    status, body = post(directory["marta"], "pause", extension="201", reason="Descanso")
    assert status == 409
    assert body["error-msg"] == "Extension 201 is not a member of any queue on the PBX."
    assert body["result"]["pbx"] == [
        {
            "action": "QueuePause",
            "target": "PJSIP/201",
            "ok": False,
            "message": "Interface not found",
        }
    ]


def test_the_pbx_down_is_a_503(directory, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.PBX_GATEWAY = "pbx.gateway.ami.AmiGateway"
    settings.AMI_HOST, settings.AMI_PORT, settings.AMI_TIMEOUT = "127.0.0.1", port, 0.5
    status, body = post(directory["marta"], "pause", extension="201")
    assert status == 503
    assert body["error-msg"] == "The PBX cannot be reached right now; try again later."
    assert body["result"]["pbx"][0]["message"].startswith("no answer: AMI at 127.0.0.1:")
