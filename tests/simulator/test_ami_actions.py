"""Every action over TCP: its success, its errors, and the list actions' framing."""

from __future__ import annotations

import pytest

from pbx.simulator import QUIET, CallCentre, CentreConfig, MemberConfig, QueueConfig
from tests.simulator.helpers import START, AmiClient, make_pbx, small_config


def test_queue_pause_pauses_in_every_queue_with_the_reason(ami):
    reply = ami.action(
        "QueuePause", ("Interface", "PJSIP/201"), ("Paused", "true"), ("Reason", "Descanso")
    )
    assert reply.get("Message") == "Interface paused successfully"
    ami.wait_event("QueueMemberPause", Queue="soporte")
    paused = [e for e in ami.events("QueueMemberPause") if e.get("Interface") == "PJSIP/201"]
    assert sorted(e.get("Queue") for e in paused) == ["soporte", "ventas"]
    assert {(e.get("Paused"), e.get("PausedReason")) for e in paused} == {("1", "Descanso")}


def test_queue_pause_in_one_queue_then_unpause_clears_the_reason(ami):
    ami.action(
        "QueuePause",
        ("Interface", "PJSIP/201"),
        ("Paused", "1"),
        ("Queue", "ventas"),
        ("Reason", "Comida"),
    )
    reply = ami.action(
        "QueuePause", ("Interface", "PJSIP/201"), ("Paused", "0"), ("Queue", "ventas")
    )
    assert reply.get("Message") == "Interface unpaused successfully"
    ami.wait_event("QueueMemberPause", Paused="0")
    events = ami.events("QueueMemberPause")
    assert [(e.get("Queue"), e.get("Paused"), e.get("PausedReason")) for e in events] == [
        ("ventas", "1", "Comida"),
        ("ventas", "0", ""),
    ]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ((("Interface", "PJSIP/999"), ("Paused", "1")), "Interface not found"),
        ((("Interface", "PJSIP/202"), ("Paused", "1"), ("Queue", "ventas")), "Interface not found"),
        ((("Paused", "1"),), "Need 'Interface' and 'Paused' parameters."),
    ],
)
def test_queue_pause_errors(ami, headers, message):
    reply = ami.action("QueuePause", *headers)
    assert (reply.get("Response"), reply.get("Message")) == ("Error", message)


def test_queue_add_then_remove(ami):
    reply = ami.action(
        "QueueAdd",
        ("Queue", "ventas"),
        ("Interface", "PJSIP/202"),
        ("MemberName", "Marta Ruiz"),
        ("Penalty", "2"),
    )
    assert (reply.get("Response"), reply.get("Message")) == ("Success", "Added interface to queue")
    added = ami.wait_event("QueueMemberAdded")
    assert (added.get("Queue"), added.get("Interface"), added.get("MemberName")) == (
        "ventas",
        "PJSIP/202",
        "Marta Ruiz",
    )
    assert (added.get("Membership"), added.get("Penalty"), added.get("Status")) == (
        "dynamic",
        "2",
        "1",
    )
    reply = ami.action("QueueRemove", ("Queue", "ventas"), ("Interface", "PJSIP/202"))
    assert reply.get("Message") == "Removed interface from queue"
    assert ami.wait_event("QueueMemberRemoved").get("Interface") == "PJSIP/202"


@pytest.mark.parametrize(
    ("action", "headers", "message"),
    [
        ("QueueAdd", (("Queue", "ventas"), ("Interface", "PJSIP/200")), "Unable to add interface: Already there"),
        ("QueueAdd", (("Queue", "nope"), ("Interface", "PJSIP/200")), "Unable to add interface to queue: No such queue"),
        ("QueueAdd", (("Interface", "PJSIP/200"),), "'Queue' not specified."),
        ("QueueAdd", (("Queue", "ventas"),), "'Interface' not specified."),
        ("QueueRemove", (("Queue", "ventas"), ("Interface", "PJSIP/202")), "Unable to remove interface: Not there"),
        ("QueueRemove", (("Queue", "nope"), ("Interface", "PJSIP/200")), "Unable to remove interface from queue: No such queue"),
        ("QueueRemove", (("Queue", "ventas"),), "Need 'Queue' and 'Interface' parameters."),
    ],
)  # fmt: skip
def test_queue_membership_errors(ami, action, headers, message):
    reply = ami.action(action, *headers)
    assert (reply.get("Response"), reply.get("Message")) == ("Error", message)


def test_astdb_put_get_delete(ami):
    put = ami.action("DBPut", ("Family", "DND"), ("Key", "200"), ("Val", "YES"))
    assert put.get("Message") == "Updated database successfully"
    response, items, complete = ami.listing("DBGet", ("Family", "DND"), ("Key", "200"))
    assert response.get("EventList") == "start"
    assert [(i.event, i.get("Val")) for i in items] == [("DBGetResponse", "YES")]
    assert (complete.event, complete.get("ListItems")) == ("DBGetComplete", "1")
    assert ami.action("DBDel", ("Family", "DND"), ("Key", "200")).get("Message") == (
        "Key deleted successfully"
    )
    # Asterisk 20 and 22 word the two misses differently.
    for action, message in (
        ("DBGet", "Database entry not found"),
        ("DBDel", "Database entry could not be deleted"),
    ):
        reply = ami.action(action, ("Family", "DND"), ("Key", "200"))
        assert (reply.get("Response"), reply.get("Message")) == ("Error", message)


def test_astdb_needs_family_and_key(ami):
    assert ami.action("DBPut", ("Key", "1")).get("Message") == "No family specified."
    assert ami.action("DBPut", ("Family", "DND")).get("Message") == "No key specified."


def test_astdb_del_tree(ami):
    ami.action("DBPut", ("Family", "CF"), ("Key", "200"), ("Val", "600"))
    reply = ami.action("DBDelTree", ("Family", "CF"))
    assert reply.get("Message") == "Key tree deleted successfully"
    assert ami.action("DBDelTree", ("Family", "CF")).get("Response") == "Error"


def test_setvar_device_state_changes_a_custom_device(ami):
    reply = ami.action("Setvar", ("Variable", "DEVICE_STATE(Custom:DND200)"), ("Value", "BUSY"))
    assert (reply.get("Response"), reply.get("Message")) == ("Success", "Variable Set")
    change = ami.wait_event("DeviceStateChange", Device="Custom:DND200")
    assert change.get("State") == "BUSY"
    got = ami.action("Getvar", ("Variable", "DEVICE_STATE(Custom:DND200)"))
    assert got.get("Value") == "BUSY"
    _, items, _ = ami.listing("DeviceStateList")
    assert ("Custom:DND200", "BUSY") in [(i.get("Device"), i.get("State")) for i in items]


def test_setvar_errors(ami):
    assert ami.action("Setvar", ("Value", "1")).get("Message") == "No variable specified"
    reply = ami.action(
        "Setvar", ("Channel", "PJSIP/200-00000099"), ("Variable", "X"), ("Value", "1")
    )
    assert reply.get("Message") == "No such channel"


def test_setvar_and_getvar_of_a_global(ami):
    ami.action("Setvar", ("Variable", "NIGHTMODE"), ("Value", "1"))
    assert ami.action("Getvar", ("Variable", "NIGHTMODE")).get("Value") == "1"


def test_device_state_list(ami):
    response, items, complete = ami.listing("DeviceStateList")
    assert (response.get("Response"), response.get("EventList")) == ("Success", "start")
    states = {i.get("Device"): i.get("State") for i in items}
    assert states["PJSIP/200"] == states["PJSIP/202"] == "NOT_INUSE"
    assert {i.event for i in items} == {"DeviceStateChange"}
    assert complete.pairs[0] == ("Event", "DeviceStateListComplete")
    assert (complete.get("EventList"), complete.get("ListItems")) == ("Complete", str(len(items)))


def test_extension_state_list(ami):
    _, items, complete = ami.listing("ExtensionStateList")
    rows = {
        (i.get("Exten"), i.get("Context"), i.get("Hint"), i.get("Status"), i.get("StatusText"))
        for i in items
    }
    assert ("200", "from-internal", "PJSIP/200", "0", "Idle") in rows
    assert (complete.event, complete.get("ListItems")) == ("ExtensionStateListComplete", "3")


def test_queue_status_lists_params_members_and_callers(pbx, ami):
    pbx.centre.queue_pause("PJSIP/200", True, queue="ventas", reason="Comida")
    pbx.centre.caller_arrives("ventas", "600111222")
    pbx.centre.caller_arrives("ventas", "600333444")
    pbx.step(0)
    response, items, complete = ami.listing("QueueStatus", ("Queue", "ventas"))
    assert response.get("Message") == "Queue status will follow"
    assert [i.event for i in items] == [
        "QueueParams",
        "QueueMember",
        "QueueMember",
        "QueueEntry",
        "QueueEntry",
    ]
    params = items[0]
    assert (params.get("Queue"), params.get("Calls"), params.get("Strategy")) == (
        "ventas",
        "2",
        "rrmemory",
    )
    ana = next(i for i in items if i.get("Name") == "Ana García")
    assert (ana.get("Location"), ana.get("StateInterface"), ana.get("Status")) == (
        "PJSIP/200",
        "PJSIP/200",
        "1",
    )
    assert (ana.get("Paused"), ana.get("PausedReason"), ana.get("InCall")) == ("1", "Comida", "0")
    luis = next(i for i in items if i.get("Name") == "Luis Pérez")
    assert luis.get("Status") == "6"  # AST_DEVICE_RINGING: the first caller rings him
    entries = [i for i in items if i.event == "QueueEntry"]
    assert [(e.get("Position"), e.get("CallerIDNum")) for e in entries] == [
        ("1", "600111222"),
        ("2", "600333444"),
    ]
    assert all(i.get("ActionID") == response.get("ActionID") for i in items)
    assert (complete.get("EventList"), complete.get("ListItems")) == ("Complete", "5")


def test_queue_status_of_every_queue(ami):
    _, items, complete = ami.listing("QueueStatus")
    assert [i.get("Queue") for i in items if i.event == "QueueParams"] == ["ventas", "soporte"]
    assert complete.get("ListItems") == str(len(items)) == "6"


def test_core_show_channels(pbx, ami):
    pbx.centre.caller_arrives("ventas", "600111222")
    pbx.step(0)
    response, items, complete = ami.listing("CoreShowChannels")
    assert response.get("Message") == "Channels will follow"
    by_app = {i.get("Application"): i for i in items}
    caller = by_app["Queue"]
    assert caller.get("Channel").startswith("PJSIP/trunk-")
    assert (
        caller.get("ChannelStateDesc"),
        caller.get("CallerIDNum"),
        caller.get("ApplicationData"),
    ) == (
        "Up",
        "600111222",
        "ventas,t",
    )
    agent = by_app["AppDial"]
    assert agent.get("ChannelStateDesc") == "Ringing"
    assert agent.get("Linkedid") == caller.get("Uniqueid")
    assert caller.get("Duration") == "00:00:00"
    assert (complete.event, complete.get("ListItems")) == ("CoreShowChannelsComplete", "2")


def test_pjsip_show_contacts(ami):
    response, items, complete = ami.listing("PJSIPShowContacts")
    assert response.get("EventList") == "start"
    assert sorted(i.get("Endpoint") for i in items) == ["200", "201", "202"]
    first = items[0]
    assert first.get("ObjectName").startswith(first.get("Endpoint") + ";@")
    assert first.get("Uri").startswith(f"sip:{first.get('Endpoint')}@")
    assert first.get("Status") == "Reachable"
    assert (complete.event, complete.get("ListItems")) == ("ContactListComplete", "3")


def test_command_core_show_version(ami):
    reply = ami.action("Command", ("Command", "core show version"))
    assert reply.get("Message") == "Command output follows"
    assert reply.get("Output").startswith("Asterisk 20")


def test_queue_remove_of_a_static_member_is_refused_as_asterisk_does(tmp_path):
    config = small_config()
    static = QueueConfig(
        "fijos", "acme", (MemberConfig("PJSIP/200", "Ana García", membership="static"),)
    )
    centre = CallCentre(
        CentreConfig(companies=config.companies, devices=config.devices, queues=(static,)),
        behaviour=QUIET,
        seed=1,
        start_time=START,
    )
    with make_pbx(centre) as server:
        client = AmiClient(server.port)
        try:
            assert client.login().get("Response") == "Success"
            reply = client.action("QueueRemove", ("Queue", "fijos"), ("Interface", "PJSIP/200"))
            assert (reply.get("Response"), reply.get("Message")) == ("Error", "Member not dynamic")
        finally:
            client.close()
