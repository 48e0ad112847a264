"""The event hook: every unsolicited event, in order, with repeated headers and any key case."""

from __future__ import annotations

import threading
import time

from tests.amireplay import frame_get

from .conftest import READY


def wait_until(predicate, timeout=READY):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def test_every_event_of_a_recorded_call_arrives_in_order_with_its_repeats(server, gateway, capture):
    recorded = capture("goami2_call_sip_dial_bridge_hangup.txt").events()
    heard = []
    gateway.events(heard.append)
    server.push(recorded)
    assert wait_until(lambda: len(heard) == len(recorded))
    assert [e.name for e in heard] == [frame_get(f, "Event") for f in recorded]
    assert heard[1].get_all("ChanVariable") == ["realm=", "SIPDOMAIN=", "SIPCALLID="]
    assert sum(len(e.get_all("ChanVariable")) for e in heard) == 129  # grep -c ChanVariable:
    assert sum(len(e.get_all("DestChanVariable")) for e in heard) == 6


def test_lower_case_keys_are_looked_up_in_any_case(server, gateway, capture):
    heard = []
    gateway.events(heard.append)
    server.push(capture("issue_pami17_queuememberadded_lowercase_keys.txt").events())
    assert wait_until(lambda: heard)
    (event,) = heard
    assert (event.name, event["Queue"], event["MemberName"]) == (
        "QueueMemberAdded",
        "1234",
        "Local/7279@from-queue/n",
    )
    assert event.pairs[0] == ("event", "QueueMemberAdded")


def test_events_after_an_answer_reach_the_listener(server, gateway, capture):
    server.load(capture("goami2_queue_members.txt"))
    heard = []
    gateway.events(heard.append)
    gateway.queue_pause(interface="Local/9921-12@from-queue/n", paused=False, queue="Books_12")
    assert wait_until(lambda: len(heard) == 3)
    assert [e.name for e in heard] == ["DeviceStateChange", "DeviceStateChange", "QueueMemberPause"]
    assert heard[2]["PausedReason"] == ""


def test_an_event_carrying_an_unknown_action_id_is_an_event(server, gateway, capture):
    heard = []
    gateway.events(heard.append)
    server.push(capture("issue_jade6_originateresponse_failure_channelid_with_spaces.txt").events())
    assert wait_until(lambda: heard)
    assert (heard[0].name, heard[0]["Response"], heard[0]["ActionID"]) == (
        "OriginateResponse",
        "Failure",
        "1113",
    )


def test_a_failing_handler_does_not_stop_the_others(server, gateway, capture):
    heard = []

    def broken(event):
        raise RuntimeError("bug in a listener")

    gateway.events(broken)
    gateway.events(heard.append)
    server.push(capture("goami2_queue_members.txt").events())
    assert wait_until(lambda: len(heard) == 5)


def test_unsubscribe_stops_delivery(server, gateway, capture):
    heard = []
    unsubscribe = gateway.events(heard.append)
    unsubscribe()
    still = []
    gateway.events(still.append)
    events = capture("goami2_queue_members.txt").events()
    server.push(events)
    # events reach every handler in order on one thread: once the subscribed one has them all,
    # the unsubscribed one would have had them too (no sleep deciding how long is enough)
    assert wait_until(lambda: len(still) == len(events))
    assert heard == []


def test_the_listener_is_told_when_the_pbx_hangs_up(server, gateway):
    dropped = threading.Event()
    gateway.events(lambda event: None, on_disconnect=dropped.set)
    server.drop_all()
    assert dropped.wait(READY)


def test_closing_on_purpose_is_not_reported_as_a_drop(server, gateway):
    dropped = threading.Event()
    gateway.events(lambda event: None, on_disconnect=dropped.set)
    connection = gateway._conn
    gateway.close()
    # a drop would be dispatched before the dispatcher's end: once it ended, none came
    connection.event_dispatch_thread.join(READY)
    assert not connection.event_dispatch_thread.is_alive()
    assert not dropped.is_set()


class _ConnectedFlag(threading.Event):
    """The session's `connected` flag; the moment the reader clears it on a drop, `at_clear`
    runs, as another thread's action could at that instant."""

    def __init__(self, at_clear):
        super().__init__()
        self.set()
        self.at_clear = at_clear

    def clear(self):
        super().clear()
        at_clear, self.at_clear = self.at_clear, None
        if at_clear is not None:
            at_clear()


def test_a_drop_is_reported_though_an_action_replaced_the_session_at_that_moment(server, gateway):
    """An action (the listener's ping, a REST request) that finds the session down closes it and
    logs in again. Had it closed it before the reader told the drop, the drop was taken for our
    own close: the listener never heard of it, took no snapshot, and what happened meanwhile
    was lost. The interleaving is forced, not waited for."""
    dropped = threading.Event()
    gateway.events(lambda event: None, on_disconnect=dropped.set)
    first = gateway._conn
    replaced = threading.Event()

    def another_action_now():
        # what every action does first (the replay server answers no Ping)
        worker = threading.Thread(
            target=lambda: (gateway._connection(), replaced.set()), daemon=True
        )
        worker.start()
        worker.join(READY)  # the reader waits: the action runs entirely in between

    first._connected = _ConnectedFlag(another_action_now)
    server.drop_all()
    assert replaced.wait(READY), "the action did not log in again"
    assert gateway._conn is not first
    assert dropped.wait(READY), "the drop was taken for our own close"
