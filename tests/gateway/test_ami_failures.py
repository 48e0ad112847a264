"""Unreachable PBX, refused login, silence, dropped connections: all PbxUnavailable, quickly."""

from __future__ import annotations

import socket
import time

import pytest

from pbx.gateway import PbxUnavailable
from pbx.gateway.ami import AmiGateway
from tests.amireplay import AmiReplayServer

from .conftest import READY, TIMEOUT

REMOVED = [["Response: Success", "Message: Removed interface from queue"]]


def test_an_unreachable_pbx_is_unavailable():
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = AmiGateway("127.0.0.1", port, "swan", "secret", timeout=TIMEOUT)
    with pytest.raises(PbxUnavailable, match="unreachable"):
        gateway.queue_remove(queue="q", interface="PJSIP/1")


def test_a_refused_login_is_unavailable(server, gateway, capture):
    server.load(capture("panoramisk_login_failed.txt"))
    with pytest.raises(PbxUnavailable, match="Authentication failed"):
        gateway.queue_remove(queue="q", interface="PJSIP/1")
    (login,) = server.actions("Login")
    assert dict(login)["Username"] == "swan"
    assert server.actions("QueueRemove") == []


def test_a_pbx_that_sends_no_banner_is_unavailable(gateway):
    with AmiReplayServer(banner=None) as mute:
        gateway.port = mute.port
        started = time.monotonic()
        with pytest.raises(PbxUnavailable, match="no banner"):
            gateway.queue_remove(queue="q", interface="PJSIP/1")
        assert time.monotonic() - started < TIMEOUT + READY


def test_an_action_without_answer_times_out(server, gateway):
    server.expect("QueueRemove", REMOVED, silent=True)
    started = time.monotonic()
    with pytest.raises(PbxUnavailable, match=r"no answer within 0\.5s"):
        gateway.queue_remove(queue="q", interface="PJSIP/1")
    assert time.monotonic() - started < TIMEOUT + READY


def test_a_late_answer_is_not_taken_for_the_next_action(server, gateway):
    late = server.expect("QueueRemove", [["Response: Error", "Message: late"]], hold=True)
    with pytest.raises(PbxUnavailable):
        gateway.queue_remove(queue="q", interface="PJSIP/1")
    assert late.hold
    server.release()  # the first answer arrives now, after its waiter gave up
    server.expect("QueueRemove", REMOVED)
    gateway.queue_remove(queue="q", interface="PJSIP/2")


def test_a_connection_dropped_mid_answer_is_unavailable(server, gateway):
    server.expect("QueueRemove", REMOVED, drop_after=0)  # half a response, then hang up
    with pytest.raises(PbxUnavailable, match="dropped"):
        gateway.queue_remove(queue="q", interface="PJSIP/1")


def test_the_next_action_after_a_drop_reconnects(server, gateway):
    server.expect("QueueRemove", REMOVED)
    gateway.queue_remove(queue="q", interface="PJSIP/1")
    server.drop_all()
    deadline = time.monotonic() + READY
    while gateway.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not gateway.connected
    server.expect("QueueRemove", REMOVED)
    gateway.queue_remove(queue="q", interface="PJSIP/1")
    assert len(server.actions("Login")) == 2


def test_close_returns_quickly_when_the_pbx_keeps_the_socket_open(gateway):
    with AmiReplayServer(keep_open_after_logoff=True) as sticky:
        gateway.port = sticky.port
        sticky.expect("QueueRemove", REMOVED)
        gateway.queue_remove(queue="q", interface="PJSIP/1")
        started = time.monotonic()
        gateway.close()
        assert time.monotonic() - started < TIMEOUT + READY  # returns: it does not hang
        assert sticky.actions("Logoff")
