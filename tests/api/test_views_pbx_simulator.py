"""The PBX-action endpoints over real TCP against the simulated Asterisk (AMI gateway end to end)."""

from __future__ import annotations

import json
import socket

import pytest
from django.utils import timezone

from pbx.models import DeviceState
from pbx.simulator import SimulatedPbx
from pbx.simulator.callcentre import CallCentre
from pbx.simulator.config import QUIET
from terminals.models import Terminal

pytestmark = pytest.mark.django_db


@pytest.fixture
def directory(company, make_user, make_queue):
    ana = make_user(company, "200", "Ana García", terminals=["PJSIP/200"])
    bea = make_user(company, "201", "Bea Ruiz", terminals=["PJSIP/201"])
    make_queue(company, "q-soporte", members=[ana, bea])
    make_queue(company, "q-ventas", members=[bea])
    Terminal.objects.filter(user=ana).update(mac="001565aabbcc")
    Terminal.objects.filter(user=bea).update(mac="001565aabbcd", type="webphone")
    return ana, bea


@pytest.fixture
def pbx(directory, settings):
    centre = CallCentre.from_directory(behaviour=QUIET, seed=1)
    simulator = SimulatedPbx(centre, port=0, username="swan-test", secret="s3cret", speed=0)
    simulator.start()
    settings.PBX_GATEWAY = "pbx.gateway.ami.AmiGateway"
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", simulator.port
    settings.AMI_USERNAME, settings.AMI_SECRET = "swan-test", "s3cret"
    settings.AMI_TIMEOUT = 2.0
    now = timezone.now()
    for interface, state in centre.device_states().items():  # as the listener would have stored
        DeviceState.objects.create(
            interface=interface, state=state, changed_at=now, confirmed_at=now
        )
    yield centre
    simulator.stop()


@pytest.fixture
def pbx_down(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.PBX_GATEWAY = "pbx.gateway.ami.AmiGateway"
    settings.AMI_HOST, settings.AMI_PORT, settings.AMI_TIMEOUT = "127.0.0.1", port, 0.5


def answer(response, status=200):
    assert response.status_code == status, response.content
    return json.loads(response.content)


def member(centre, queue, interface):
    return centre.queues[queue].members.get(interface)


def test_pause_and_unpause_reach_the_pbx(api, pbx):
    data = answer(api.post("/userStatus/201", {"status": "pause", "reason": "Comida"}))
    assert (data["result"]["status"], data["result"]["description"]) == ("pause", "Comida")
    for queue in ("q-soporte", "q-ventas"):
        assert member(pbx, queue, "PJSIP/201").paused is True
        assert member(pbx, queue, "PJSIP/201").paused_reason == "Comida"
    answer(api.post("/userStatus/201", {"status": "available"}))
    assert member(pbx, "q-ventas", "PJSIP/201").paused is False


def test_busy_sets_do_not_disturb_on_the_pbx(api, pbx):
    data = answer(api.post("/userStatus/200", {"status": "busy", "reason": "Reunión"}))
    assert data["result"]["description"] == "Reunión"
    assert pbx.astdb[("DND", "200")] == "YES"
    answer(api.post("/userStatus/200", {"status": "available"}))
    assert ("DND", "200") not in pbx.astdb


def test_terminal_unregister_and_register_change_queue_membership(api, pbx, directory):
    assert answer(api.delete("/terminal-register/00:15:65:aa:bb:cd"))["result"] == {"success": True}
    assert member(pbx, "q-soporte", "PJSIP/201") is None
    assert member(pbx, "q-ventas", "PJSIP/201") is None
    assert Terminal.objects.get(mac="001565aabbcd").registered is False

    assert answer(api.post("/terminal-register/001565aabbcd"))["result"] == {"success": True}
    assert member(pbx, "q-ventas", "PJSIP/201").name == "Bea Ruiz"
    assert Terminal.objects.get(mac="001565aabbcd").registered is True


def test_user_unregister_removes_the_user_from_its_queues(api, pbx):
    assert answer(api.post("/user-unregister/201"))["result"] == {"success": True}
    assert member(pbx, "q-soporte", "PJSIP/201") is None
    assert member(pbx, "q-soporte", "PJSIP/200") is not None


def test_click_to_call_rings_the_source_device(api, pbx):
    data = answer(api.post("/call/+34600111222", {"private_source": "200", "company": "onfarma"}))
    assert data["result"] == {"success": True}
    pbx.step(1)
    assert any(channel.name.startswith("PJSIP/200-") for channel in pbx.channels.values())


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("post", "/userStatus/200", {"status": "pause"}),
        ("post", "/call/600", {"private_source": "200", "company": "onfarma"}),
        ("post", "/user-unregister/200", {}),
        ("post", "/terminal-register/001565aabbcc", {}),
        ("delete", "/terminal-register/001565aabbcc", {}),
    ],
)
def test_pbx_down_is_a_503_envelope(api, directory, pbx_down, method, path, payload):
    data = answer(getattr(api, method)(path, payload), 503)
    assert data["error"] is True
    assert "PBX" in data["error-msg"] or "centralita" in data["error-msg"]
    assert Terminal.objects.get(mac="001565aabbcc").registered is False


def test_refused_login_is_a_503(api, pbx, settings):
    settings.AMI_SECRET = "wrong"
    answer(api.post("/userStatus/200", {"status": "pause"}), 503)
