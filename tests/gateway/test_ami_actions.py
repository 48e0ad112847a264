"""Every gateway action over TCP against recorded answers: the exact action sent, and errors."""

from __future__ import annotations

import pytest

from pbx.gateway import OriginateRequest, PbxActionFailed, PbxUnavailable, SpyRequest
from pbx.gateway.ami import AmiGateway
from tests.amireplay import frame_get
from tests.gateway.conftest import TIMEOUT

# Asterisk's own wording where no recording holds the answer (main/manager.c, apps/app_queue.c).
VARIABLE_SET = ["Response: Success", "Message: Variable Set"]
DB_UPDATED = ["Response: Success", "Message: Updated database successfully"]
DB_NOT_FOUND = ["Response: Error", "Message: Database entry not found"]
DB_DELETED = ["Response: Success", "Message: Key deleted successfully"]


def db_value(value: str) -> list[list[str]]:
    """DBGet's answer of Asterisk 20 and 22 for a key that holds `value`."""
    return [
        ["Response: Success", "ActionID: 1", "EventList: start", "Message: Result will follow"],
        ["Event: DBGetResponse", "ActionID: 1", "Family: DND", "Key: 201", f"Val: {value}"],
        ["Event: DBGetComplete", "ActionID: 1", "EventList: Complete", "ListItems: 1"],
    ]


def sent(server, action):
    """The headers of each `action` the server got, as dicts (repeats collapsed)."""
    return [{k: v for k, v in pairs} for pairs in server.actions(action)]


def test_originate_sends_an_async_originate_and_reports_success(server, gateway, capture):
    server.load(capture("panoramisk_originate_sync.txt"))
    request = OriginateRequest(
        channel="Local/2540",
        context="default",
        exten="2580",
        caller_id="Panoramisk tests",
        variables={"SWAN_USER": "42", "SWAN_QUEUE": "tous"},
    )
    assert gateway.originate(request) is True
    (pairs,) = server.actions("Originate")
    headers = dict(pairs)
    assert headers["Channel"] == "Local/2540"
    assert headers["Exten"] == "2580"
    assert headers["Context"] == "default"
    assert headers["Priority"] == "1"
    assert headers["Timeout"] == "30000"
    assert headers["Async"] == "true"
    assert headers["CallerID"] == "Panoramisk tests"
    assert [v for k, v in pairs if k == "Variable"] == ["SWAN_USER=42", "SWAN_QUEUE=tous"]
    assert headers["ActionID"] != "action/transaction_uid/1/1"


def test_originate_raises_the_pbx_message_on_error(server, gateway, capture):
    server.load(capture("issue_punchblock214_originate_invalid_channel.txt"))
    with pytest.raises(PbxActionFailed) as error:
        gateway.originate(OriginateRequest(channel="sip:arabbit", context="x", exten="1"))
    assert error.value.action == "Originate"
    assert error.value.message == "Invalid channel"


def test_queue_pause_sends_interface_queue_and_reason(server, gateway, capture):
    server.load(capture("goami2_queue_members.txt"))
    gateway.queue_pause(interface="Local/9921-12@from-queue/n", paused=False, queue="Books_12")
    gateway.queue_pause(
        interface="Local/9921-12@from-queue/n", paused=True, queue="Books_12", reason="Break"
    )
    unpause, pause = sent(server, "QueuePause")
    assert unpause["Paused"] == "false"
    assert "Reason" not in unpause
    assert pause == {
        "Action": "QueuePause",
        "ActionID": pause["ActionID"],
        "Interface": "Local/9921-12@from-queue/n",
        "Paused": "true",
        "Queue": "Books_12",
        "Reason": "Break",
    }


def test_queue_pause_without_a_queue_pauses_in_all_queues(server, gateway, capture):
    recorded = capture("goami2_queue_members.txt").exchanges()[1][1]
    server.expect("QueuePause", recorded)
    gateway.queue_pause(interface="Local/129@intern", paused=True, reason="Pause1")
    (headers,) = sent(server, "QueuePause")
    assert "Queue" not in headers
    assert headers["Reason"] == "Pause1"


def test_queue_actions_return_the_pbx_answer(server, gateway):
    server.expect("QueuePause", [["Response: Success", "Message: Interface paused successfully"]])
    server.expect("QueueAdd", [["Response: Success", "Message: Added interface to queue"]])
    assert gateway.queue_pause(interface="PJSIP/201", paused=True) == (
        "Interface paused successfully"
    )
    assert gateway.queue_add(queue="sales", interface="PJSIP/201") == "Added interface to queue"


QUEUED = ["Response: Success", "Message: Originate successfully queued"]


@pytest.mark.parametrize(
    ("mode", "options"), [("listen", "qES"), ("whisper", "qwES"), ("barge", "qBES")]
)
def test_spy_rings_the_supervisor_and_runs_chanspy_on_the_channel(server, gateway, mode, options):
    server.expect("Originate", [QUEUED])
    answer = gateway.spy(
        SpyRequest(
            device="PJSIP/250",
            channel="PJSIP/201-0000001a",
            mode=mode,
            caller_id='"Escucha 201" <201>',
        )
    )
    assert answer == "Originate successfully queued"
    (headers,) = sent(server, "Originate")
    assert headers == {
        "Action": "Originate",
        "ActionID": headers["ActionID"],
        "Channel": "PJSIP/250",
        "Application": "ChanSpy",
        "Data": f"PJSIP/201-0000001a,{options}",
        "Timeout": "30000",
        "Async": "true",
        "CallerID": '"Escucha 201" <201>',
    }


@pytest.mark.parametrize(
    ("device", "channel", "mode"),
    [
        ("PJSIP/250", "PJSIP/201-1a,b", "listen"),  # a second ChanSpy argument
        ("PJSIP/250", "PJSIP/201-1a\r\nAction: Hangup", "listen"),
        ("PJSIP/250\r\n", "PJSIP/201-1a", "listen"),
        ("250", "PJSIP/201-1a", "listen"),  # no technology
        ("PJSIP/250", 'PJSIP/201-1a"', "listen"),
        ("PJSIP/250", "PJSIP/201-1a", "steal"),
    ],
)
def test_spy_sends_nothing_for_a_bad_channel_or_mode(server, gateway, device, channel, mode):
    with pytest.raises(ValueError, match=r"control character|Tech/resource|spy mode"):
        gateway.spy(SpyRequest(device=device, channel=channel, mode=mode))
    assert server.actions("Originate") == []


def test_spy_raises_the_pbx_message_on_error(server, gateway):
    server.expect("Originate", [["Response: Error", "Message: Permission denied"]])
    with pytest.raises(PbxActionFailed, match="Permission denied"):
        gateway.spy(SpyRequest(device="PJSIP/250", channel="PJSIP/201-1a", mode="listen"))


def test_queue_pause_raises_when_the_interface_is_unknown(server, gateway):
    server.expect("QueuePause", [["Response: Error", "Message: Interface not found"]])
    with pytest.raises(PbxActionFailed, match="Interface not found"):
        gateway.queue_pause(interface="PJSIP/404", paused=True)


def test_queue_add_sends_the_member(server, gateway, capture):
    server.expect("QueueAdd", capture("panoramisk_queue_add.txt").server_frames())
    gateway.queue_add(
        queue="sales",
        interface="PJSIP/201",
        member_name="Ann",
        state_interface="PJSIP/201",
        penalty=2,
        paused=True,
    )
    (headers,) = sent(server, "QueueAdd")
    assert headers["Queue"] == "sales"
    assert headers["Interface"] == "PJSIP/201"
    assert headers["MemberName"] == "Ann"
    assert headers["StateInterface"] == "PJSIP/201"
    assert headers["Penalty"] == "2"
    assert headers["Paused"] == "true"


def test_queue_add_raises_when_already_a_member(server, gateway):
    server.expect(
        "QueueAdd", [["Response: Error", "Message: Unable to add interface: Already there"]]
    )
    with pytest.raises(PbxActionFailed, match="Already there"):
        gateway.queue_add(queue="sales", interface="PJSIP/201")


def test_queue_remove(server, gateway):
    server.expect("QueueRemove", [["Response: Success", "Message: Removed interface from queue"]])
    assert gateway.queue_remove(queue="sales", interface="PJSIP/201") == (
        "Removed interface from queue"
    )
    (headers,) = sent(server, "QueueRemove")
    assert (headers["Queue"], headers["Interface"]) == ("sales", "PJSIP/201")


def test_queue_remove_raises_when_not_a_member(server, gateway):
    server.expect(
        "QueueRemove", [["Response: Error", "Message: Unable to remove interface: Not there"]]
    )
    with pytest.raises(PbxActionFailed, match="Not there"):
        gateway.queue_remove(queue="sales", interface="PJSIP/201")


def test_set_dnd_on_writes_freepbx_key_and_busy_device_state(server, gateway):
    server.expect("DBGet", [DB_NOT_FOUND])
    server.expect("DBPut", [DB_UPDATED])
    server.expect("Setvar", [VARIABLE_SET])
    assert gateway.set_dnd(key="201", enabled=True) == (
        "Updated database successfully; Variable Set"
    )
    (db,) = sent(server, "DBPut")
    (state,) = sent(server, "Setvar")
    assert (db["Family"], db["Key"], db["Val"]) == ("DND", "201", "YES")
    assert (state["Variable"], state["Value"]) == ("DEVICE_STATE(Custom:DND201)", "BUSY")


def test_set_dnd_with_a_company_prefixed_key_writes_that_key_and_device(server, gateway):
    server.expect("DBPut", [DB_UPDATED])
    server.expect("Setvar", [VARIABLE_SET])
    gateway.set_dnd(key="beta-201", enabled=True)
    (db,) = sent(server, "DBPut")
    (state,) = sent(server, "Setvar")
    assert (db["Family"], db["Key"]) == ("DND", "beta-201")
    assert state["Variable"] == "DEVICE_STATE(Custom:DNDbeta-201)"


def test_set_dnd_off_deletes_the_key_even_if_it_was_never_set(server, gateway):
    server.expect("DBGet", [DB_NOT_FOUND])
    server.expect("DBDel", [DB_NOT_FOUND])
    server.expect("Setvar", [VARIABLE_SET])
    # the PBX's answers as they were: the end state is right all the same
    assert gateway.set_dnd(key="201", enabled=False) == "Database entry not found; Variable Set"
    (db,) = sent(server, "DBDel")
    (state,) = sent(server, "Setvar")
    assert (db["Family"], db["Key"]) == ("DND", "201")
    assert state["Value"] == "NOT_INUSE"


REFUSED = [["Response: Error", "Message: Failed to set variable"]]


def test_dnd_on_refused_by_the_device_state_deletes_the_key_it_wrote(server, gateway):
    server.expect("DBGet", [DB_NOT_FOUND])
    server.expect("DBPut", [DB_UPDATED])
    server.expect("Setvar", REFUSED)
    server.expect("DBDel", [DB_DELETED])
    with pytest.raises(PbxActionFailed) as error:
        gateway.set_dnd(key="201", enabled=True)
    assert error.value.action == "Setvar"
    assert "the AstDB key DND/201 was put back as it was" in error.value.message
    assert [(d["Family"], d["Key"]) for d in sent(server, "DBDel")] == [("DND", "201")]


def test_dnd_off_refused_by_the_device_state_writes_the_key_back(server, gateway):
    server.expect("DBGet", db_value("YES"))
    server.expect("DBDel", [DB_DELETED])
    server.expect("Setvar", REFUSED)
    server.expect("DBPut", [DB_UPDATED])
    with pytest.raises(PbxActionFailed, match="put back as it was"):
        gateway.set_dnd(key="201", enabled=False)
    (put,) = sent(server, "DBPut")
    assert (put["Family"], put["Key"], put["Val"]) == ("DND", "201", "YES")


def test_dnd_off_refused_when_there_was_no_key_writes_nothing_back(server, gateway):
    server.expect("DBGet", [DB_NOT_FOUND])
    server.expect("DBDel", [DB_NOT_FOUND])
    server.expect("Setvar", REFUSED)
    with pytest.raises(PbxActionFailed, match="the key is as it was"):
        gateway.set_dnd(key="201", enabled=False)
    assert sent(server, "DBPut") == []
    assert len(sent(server, "DBDel")) == 1


def test_a_key_that_cannot_be_put_back_is_said_and_logged(server, gateway, caplog):
    server.expect("DBGet", [DB_NOT_FOUND])
    server.expect("DBPut", [DB_UPDATED])
    server.expect("Setvar", REFUSED)
    server.expect("DBDel", [["Response: Error", "Message: Database entry could not be deleted"]])
    with pytest.raises(PbxActionFailed, match=r"could not be put back \(Database entry could not"):
        gateway.set_dnd(key="201", enabled=True)
    assert "AstDB key left changed family=DND key=201" in caplog.text


def test_a_key_whose_value_was_not_told_is_not_guessed_back(server, gateway):
    server.expect("DBGet", [["Response: Error", "Message: Permission denied"]])
    server.expect("DBPut", [DB_UPDATED])
    server.expect("Setvar", REFUSED)
    with pytest.raises(PbxActionFailed, match="its value before was not known"):
        gateway.set_dnd(key="201", enabled=True)
    assert sent(server, "DBDel") == []


def test_each_action_gets_its_own_action_id(server, gateway):
    for _ in range(3):
        server.expect(
            "QueueRemove", [["Response: Success", "Message: Removed interface from queue"]]
        )
        gateway.queue_remove(queue="q", interface="PJSIP/1")
    ids = [h["ActionID"] for h in sent(server, "QueueRemove")]
    assert len(set(ids)) == 3


INJECTIONS = [
    lambda gw: gw.originate(
        OriginateRequest(channel="PJSIP/1\r\nAction: Hangup", context="c", exten="1")
    ),
    lambda gw: gw.originate(
        OriginateRequest(channel="PJSIP/1", context="c", exten="1", variables={"A": "1\nB"})
    ),
    lambda gw: gw.originate(
        OriginateRequest(channel="PJSIP/1", context="c", exten="1", caller_id="x\x00")
    ),
    lambda gw: gw.queue_pause(interface="PJSIP/1", paused=True, reason="lunch\r\nAction: Logoff"),
    lambda gw: gw.queue_pause(interface="PJSIP/1", paused=True, queue="q\n"),
    lambda gw: gw.queue_add(queue="q", interface="PJSIP/1", member_name="Ann\rX"),
    lambda gw: gw.queue_remove(queue="q", interface="PJSIP/1\x1b"),
    lambda gw: gw.set_dnd(key="201\r\nAction: Command", enabled=True),
    lambda gw: gw.set_dnd(key="201", enabled=False, reason="x\ny"),
]


@pytest.mark.parametrize("call", INJECTIONS)
def test_a_control_character_in_any_value_is_refused_before_anything_is_sent(server, gateway, call):
    with pytest.raises(ValueError, match="control character"):
        call(gateway)
    assert bytes(server.raw_received) == b""
    assert not gateway.connected


def test_a_control_character_is_refused_on_an_open_session_too(server, gateway):
    server.expect("QueueRemove", [["Response: Success", "Message: Removed interface from queue"]])
    gateway.queue_remove(queue="q", interface="PJSIP/1")
    before = bytes(server.raw_received)
    with pytest.raises(ValueError, match="control character"):
        gateway.set_dnd(key="201\r\n", enabled=True)
    assert bytes(server.raw_received) == before


def test_the_recorded_action_id_is_rewritten_to_ours(server, gateway, capture):
    recorded = capture("panoramisk_originate_sync.txt")
    assert frame_get(recorded.server_frames()[0], "ActionID") == "action/transaction_uid/1/1"
    server.load(recorded)
    assert gateway.originate(
        OriginateRequest(channel="Local/2540", context="default", exten="2580")
    )


def test_a_session_for_actions_asks_the_pbx_for_no_events(server, gateway):
    server.expect("QueueRemove", [["Response: Success", "Message: Removed interface from queue"]])
    gateway.queue_remove(queue="sales", interface="PJSIP/201")
    (login,) = sent(server, "Login")
    assert login["Events"] == "off"


def test_subscribing_on_a_session_for_actions_turns_the_events_on(server, gateway):
    server.expect("Ping", [["Response: Success", "Ping: Pong"]])
    server.expect("Events", [["Response: Success", "Events: On"]])
    gateway.ping()
    unsubscribe = gateway.events(lambda frame: None)
    (mask,) = sent(server, "Events")
    assert mask["EventMask"] == "on"
    unsubscribe()


def test_the_listener_session_logs_in_with_events_on(server):
    listener = AmiGateway("127.0.0.1", server.port, "swan", "secret", timeout=TIMEOUT)
    try:
        listener.events(lambda frame: None)
        (login,) = sent(server, "Login")
        assert login["Events"] == "on"
        assert sent(server, "Events") == []
    finally:
        listener.close()


def test_a_device_state_unanswered_after_the_key_was_written_says_what_was_written(
    server, gateway, caplog
):
    """No answer within the timeout: Asterisk may have set the state or not, so nothing is put
    back; the error and the log say the key was written."""
    server.expect("DBGet", [DB_NOT_FOUND])
    server.expect("DBPut", [DB_UPDATED])
    server.expect("Setvar", [VARIABLE_SET], silent=True)
    with pytest.raises(PbxUnavailable, match="the AstDB key DND/201 was written before it"):
        gateway.set_dnd(key="201", enabled=True)
    assert sent(server, "DBDel") == []
    assert "DND half known key=201 astdb=written device_state=unknown" in caplog.text
