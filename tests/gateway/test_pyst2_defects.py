"""pyst2 0.5.1 defects, each reproduced with stock pyst2 on recorded traffic, and fixed in ours."""

from __future__ import annotations

import socket
import threading

import pytest

from pbx.gateway import PbxUnavailable
from pbx.gateway.ami import AmiConnection

from .conftest import READY, TIMEOUT

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning",  # stock pyst2's setDaemon/isSet
    "ignore::pytest.PytestUnhandledThreadExceptionWarning",  # defect (a) kills a stock thread
)
HANG = TIMEOUT  # a stock call still blocked after this long is taken as hung (it never returns)


def finishes(call, seconds=HANG):
    """Run `call` on a daemon thread: (returned in time?, its result or exception)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except Exception as exc:
            outcome["value"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), outcome.get("value")


@pytest.fixture
def stock(server):
    """Stock pyst2 Managers, logged in to the replay server."""
    manager = pytest.importorskip("asterisk.manager")
    made = []

    def connect():
        stock_manager = manager.Manager()
        made.append(stock_manager)
        returned, _ = finishes(
            lambda: (
                stock_manager.connect("127.0.0.1", server.port),
                stock_manager.login("swan", "secret"),
            ),
            READY,
        )
        assert returned, "stock pyst2 could not log in to the replay server"
        return stock_manager

    yield connect
    for stock_manager in made:
        stock_manager._running.clear()  # its __del__ would otherwise try to close and hang


@pytest.fixture
def ours(server):
    connection = AmiConnection(TIMEOUT)
    connection.connect("127.0.0.1", server.port)
    connection.login("swan", "secret")
    yield connection
    connection.close()


def ping_replies(capture, count):
    """`count` recorded Ping answers (panoramisk_agent_loggued_in.txt has eight)."""
    pings = [reply for action, reply in capture("panoramisk_agent_loggued_in.txt").exchanges()]
    return [[frames[0]] for frames in pings[:count]]


# (a) ----------------------------------------------------------------------------------------


def test_a_stock_pyst2_reader_dies_on_chanvariable(server, stock, capture):
    server.expect("Ping", ping_replies(capture, 1)[0])
    manager = stock()
    server.push(capture("goami2_call_sip_dial_bridge_hangup.txt").events())
    returned, _ = finishes(lambda: manager.send_action({"Action": "Ping"}))
    assert not returned
    # the Ping went out and was answered, but pyst2's parser thread had already raised
    # AttributeError on `self.headers.has_key('ChanVariable')` (reported when the test ends)
    assert server.actions("Ping")


def test_a_ours_keeps_reading_after_chanvariable(server, gateway, capture):
    heard = []
    gateway.events(heard.append)
    server.push(capture("goami2_call_sip_dial_bridge_hangup.txt").events())
    server.expect("QueueRemove", [["Response: Success", "Message: Removed interface from queue"]])
    gateway.queue_remove(queue="q", interface="PJSIP/1")
    gateway.close()
    assert len(heard) == 51  # grep -c '^Event:' of the file


# (b) ----------------------------------------------------------------------------------------


def test_b_stock_pyst2_reuses_one_action_id_for_keyword_calls(server, stock, capture):
    for reply in ping_replies(capture, 2):
        server.expect("Ping", reply)
    manager = stock()
    assert finishes(lambda: manager.send_action(Action="Ping"), READY)[0]
    assert finishes(lambda: manager.send_action(Action="Ping"), READY)[0]
    first, second = (dict(a)["ActionID"] for a in server.actions("Ping"))
    assert first == second


def test_b_ours_sends_a_fresh_action_id_each_time(server, ours, capture):
    for reply in ping_replies(capture, 2):
        server.expect("Ping", reply)
    assert ours.send_action(Action="Ping").get_header("Ping") == "Pong"
    assert ours.send_action(Action="Ping").get_header("Ping") == "Pong"
    first, second = (dict(a)["ActionID"] for a in server.actions("Ping"))
    assert first != second


# (c) ----------------------------------------------------------------------------------------


def pipelined_pauses(server, capture, send):
    """Unpause then pause (goami2_queue_members.txt); the PBX answers the second first."""
    server.load(capture("goami2_queue_members.txt"), hold=True)
    results = {}
    unpause = threading.Thread(
        target=lambda: results.update(unpause=send("QueuePause", "unpause", "0")), daemon=True
    )
    pause = threading.Thread(
        target=lambda: results.update(pause=send("QueuePause", "pause", "1")), daemon=True
    )
    logins = len(server.received)
    unpause.start()
    server.wait_for(logins + 1, READY)
    pause.start()
    server.wait_for(logins + 2, READY)
    server.release(reverse=True)
    unpause.join(READY)
    pause.join(READY)
    return results


def test_c_stock_pyst2_hands_answers_out_first_in_first_out(server, stock, capture):
    """One waiter, two answers in flight: stock pyst2 gives the waiter whichever came first.

    Deterministic by construction: only the unpause thread ever waits for an answer (the pause
    goes out on the same socket, as another thread's send would, but nobody waits for it), so
    no scheduling decides who takes which answer."""
    server.load(capture("goami2_queue_members.txt"), hold=True)
    manager = stock()
    interface = "Local/9921-12@from-queue/n"
    logins = len(server.received)
    outcome = {}
    waiter = threading.Thread(
        target=lambda: outcome.update(
            unpause=manager.send_action(
                {
                    "Action": "QueuePause",
                    "ActionID": "unpause",
                    "Interface": interface,
                    "Paused": "0",
                }
            )
        ),
        daemon=True,
    )
    waiter.start()
    server.wait_for(logins + 1, READY)
    manager._sock.write(  # the pause, sent while the unpause still waits for its answer
        f"Action: QueuePause\r\nActionID: pause\r\nInterface: {interface}\r\n"
        "Paused: 1\r\n\r\n".encode()
    )
    manager._sock.flush()
    server.wait_for(logins + 2, READY)
    server.release(reverse=True)  # the PBX answers the pause first
    waiter.join(READY)
    assert not waiter.is_alive()
    reply = outcome["unpause"]
    assert reply.get_header("ActionID") == "pause"  # the other action's answer …
    assert reply.get_header("Message") == "Interface paused successfully"
    # … and the unpause's own answer is left queued for whoever asks next
    assert manager._response_queue.get(timeout=READY).get_header("ActionID") == "unpause"


def test_c_ours_matches_answers_by_action_id(server, ours, capture):
    def send(action, _, paused):
        reply = ours.send_action(
            {"Action": action, "Interface": "Local/9921-12@from-queue/n", "Paused": paused}
        )
        return reply.get_header("Message")

    results = pipelined_pauses(server, capture, send)
    assert results == {
        "unpause": "Interface unpaused successfully",
        "pause": "Interface paused successfully",
    }


# (d) ----------------------------------------------------------------------------------------


def test_d_stock_pyst2_close_hangs_while_the_pbx_keeps_the_socket(server, stock, capture):
    server.load(capture("panoramisk_logoff.txt"))  # Goodbye, and the socket stays open
    manager = stock()
    returned, _ = finishes(manager.close)
    assert not returned
    assert server.actions("logoff")


def test_d_ours_closes_at_once(server, ours, capture):
    server.load(capture("panoramisk_logoff.txt"))
    returned, _ = finishes(ours.close, READY)  # stock pyst2 never returns here
    assert returned
    assert server.actions("logoff")
    assert not ours.message_thread.is_alive()


# (e) ----------------------------------------------------------------------------------------


def test_e_stock_pyst2_waits_forever_for_a_silent_pbx(server, stock, capture):
    server.expect("Ping", ping_replies(capture, 1)[0], silent=True)
    manager = stock()
    returned, _ = finishes(lambda: manager.send_action({"Action": "Ping"}))
    assert not returned


def test_e_ours_times_out(server, ours, capture):
    server.expect("Ping", ping_replies(capture, 1)[0], silent=True)
    returned, outcome = finishes(lambda: ours.send_action({"Action": "Ping"}), READY)
    assert returned
    assert isinstance(outcome, PbxUnavailable)


# (f) ----------------------------------------------------------------------------------------


@pytest.fixture
def client_reads(server, monkeypatch):
    """Counts recv/recv_into calls on sockets connected to the replay server."""
    calls = []
    for name in ("recv", "recv_into"):
        original = getattr(socket.socket, name)

        def counting(self, *args, _original=original, **kwargs):
            try:
                if self.getpeername()[1] == server.port:
                    calls.append(1)
            except OSError:
                pass
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(socket.socket, name, counting)
    return calls


def pushed_then_pinged(server, capture, send):
    events = capture("panoramisk_agent_not_in_pause.txt").events()
    size = sum(len("\r\n".join(frame)) + 4 for frame in events)
    server.expect("Ping", ping_replies(capture, 1)[0])
    server.push(events)
    returned, _ = finishes(send, READY)
    assert returned
    return size


def test_f_stock_pyst2_reads_one_byte_per_call(server, stock, capture, client_reads):
    manager = stock()
    before = len(client_reads)
    size = pushed_then_pinged(server, capture, lambda: manager.send_action({"Action": "Ping"}))
    assert len(client_reads) - before >= size


def test_f_ours_reads_in_large_blocks(server, ours, capture, client_reads):
    before = len(client_reads)
    size = pushed_then_pinged(server, capture, lambda: ours.send_action({"Action": "Ping"}))
    assert size > 10_000
    assert len(client_reads) - before < 50
