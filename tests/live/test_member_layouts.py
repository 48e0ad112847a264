"""Member layouts real call centres use: the status follows the device the PBX names for the
member, and queue actions go to the member interfaces the PBX reports (design.md, Devices)."""

from __future__ import annotations

import pytest

from pbx.gateway.frames import Frame
from pbx.live.selectors import user_status_get
from pbx.live.state_tables import LiveState
from pbx.models import QueueMemberState
from tests.pbx_events import apply_frames

pytestmark = pytest.mark.django_db


def event(**headers) -> Frame:
    return Frame([(key, str(value)) for key, value in headers.items()])


def member_event(name: str, **headers) -> Frame:
    fields = {"Event": name, "Queue": "q-sales", "Paused": "0", "InCall": "0", **headers}
    return event(**fields)


@pytest.fixture
def ana(company, make_user, make_queue):
    user = make_user(company, "201", "Ana García", terminals=["PJSIP/201"])
    make_queue(company, "q-sales", members=[user])
    return user


def freepbx_member(**headers) -> Frame:
    """What Asterisk 20/22 send for `member => Local/201@from-queue/n,0,Ana García,PJSIP/201`."""
    fields = {
        "MemberName": "Ana García",
        "Interface": "Local/201@from-queue/n",
        "StateInterface": "PJSIP/201",
        "Membership": "static",
        "Status": "1",
        **headers,
    }
    return member_event("QueueMemberStatus", **fields)


def test_a_freepbx_member_is_matched_to_the_user_by_its_state_interface(ana):
    apply_frames(LiveState(), [freepbx_member()])
    assert QueueMemberState.objects.get().user == ana


@pytest.mark.parametrize(
    ("status", "expected"),
    [("1", "available"), ("2", "busy"), ("6", "ringing"), ("5", "unavailable")],
)
def test_status_follows_the_member_status_when_the_device_is_not_listed(ana, status, expected):
    # A `hint:201@ext-local` state interface is in no DeviceStateList: only the member knows.
    apply_frames(LiveState(), [freepbx_member(StateInterface="hint:201@ext-local", Status=status)])
    assert user_status_get(user=ana)["status"] == expected


def test_terminal_set_to_the_member_interface_follows_the_member(company, make_user, make_queue):
    user = make_user(company, "202", terminals=["Local/202@agents/n"])
    make_queue(company, "q-sales", members=[user])
    apply_frames(
        LiveState(),
        [
            freepbx_member(
                MemberName="Agent 202",
                Interface="Local/202@agents/n",
                StateInterface="Custom:202",
                Status="1",
            )
        ],
    )
    assert user_status_get(user=user)["status"] == "available"


def test_a_device_named_without_n_is_the_member_device(company, make_user, make_queue):
    user = make_user(company, "203", terminals=["Local/203@from-queue/n"])
    state = LiveState()
    apply_frames(
        state,
        [freepbx_member(MemberName="x", Interface="Local/203@from-queue/n", StateInterface="")],
    )
    changes = apply_frames(
        state, [event(Event="DeviceStateChange", Device="Local/203@from-queue", State="INUSE")]
    )
    assert user.pk in changes.user_ids
    assert user_status_get(user=user)["status"] == "busy"


def test_a_device_change_of_the_state_interface_republishes_the_member_user(
    company, make_user, make_queue
):
    # The user's terminal is the member interface; its phone is only the state interface.
    user = make_user(company, "204", terminals=["Local/204@from-queue/n"])
    state = LiveState()
    apply_frames(
        state,
        [
            freepbx_member(
                MemberName="x", Interface="Local/204@from-queue/n", StateInterface="PJSIP/204"
            )
        ],
    )
    changes = apply_frames(
        state, [event(Event="DeviceStateChange", Device="PJSIP/204", State="RINGING")]
    )
    assert user.pk in changes.user_ids
    assert user_status_get(user=user)["status"] == "ringing"


def test_a_pause_event_without_status_keeps_the_member_status(ana):
    state = LiveState()
    apply_frames(state, [freepbx_member(StateInterface="hint:201@ext-local", Status="2")])
    apply_frames(
        state,
        [
            event(
                Event="QueueMemberPaused",  # Asterisk 11: no Status, no StateInterface
                Queue="q-sales",
                Location="Local/201@from-queue/n",
                MemberName="Ana García",
                Paused="1",
            )
        ],
    )
    member = QueueMemberState.objects.get()
    assert (member.status, member.state_interface, member.paused) == (2, "hint:201@ext-local", True)


def test_pause_goes_to_the_member_interfaces_the_pbx_reports(api, ana, gateway):
    apply_frames(LiveState(), [freepbx_member()])
    response = api.post("/userStatus/201", {"status": "pause", "reason": "Descanso"})
    assert response.status_code == 200, response.json()
    paused = {"paused": True, "queue": None, "reason": "Descanso"}
    assert gateway.calls == [
        ("QueuePause", {"interface": "Local/201@from-queue/n", **paused}),
        ("QueuePause", {"interface": "PJSIP/201", **paused}),  # no member: "Interface not found"
    ]


def test_without_live_members_pause_goes_to_the_user_devices(api, ana, gateway):
    response = api.post("/userStatus/201", {"status": "pause"})
    assert response.status_code == 200
    assert [arguments["interface"] for _action, arguments in gateway.calls] == ["PJSIP/201"]


def test_user_unregister_leaves_every_membership_the_pbx_reports(api, ana, gateway):
    apply_frames(
        LiveState(),
        [
            freepbx_member(),
            freepbx_member(Queue="q-support", Interface="PJSIP/201", StateInterface="PJSIP/201"),
        ],
    )
    response = api.post("/user-unregister/201")
    assert response.status_code == 200
    removed = sorted(
        (arguments["queue"], arguments["interface"])
        for action, arguments in gateway.calls
        if action == "QueueRemove"
    )
    assert removed == [
        ("q-sales", "Local/201@from-queue/n"),
        ("q-sales", "PJSIP/201"),
        ("q-support", "PJSIP/201"),
    ]


@pytest.mark.parametrize("state_interface", ["PJSIP/201", "hint:201@ext-local"])
def test_terminal_register_keeps_the_static_member_that_rings_the_device(
    api, ana, gateway, state_interface
):
    from terminals.models import Terminal
    from tests.fakes import refuse

    apply_frames(LiveState(), [freepbx_member(StateInterface=state_interface)])
    terminal = Terminal.objects.get(user=ana)
    response = api.post(f"/terminal-register/{terminal.mac}")
    assert response.json()["result"] == {"success": True}
    assert gateway.calls == []  # already in q-sales: adding PJSIP/201 would ring it twice

    gateway.failures["QueueRemove"] = lambda arguments: (
        refuse("Member not dynamic")(arguments)
        if arguments["interface"] == "Local/201@from-queue/n"
        else refuse("Unable to remove interface: Not there")(arguments)
    )
    response = api.delete(f"/terminal-register/{terminal.mac}")
    assert response.json()["result"] == {"success": False}
    terminal.refresh_from_db()
    assert terminal.registered is True  # the PBX kept its static member


def test_terminal_register_adds_a_second_device_beside_the_first(
    api, company, make_user, make_queue, gateway
):
    from terminals.models import Terminal

    user = make_user(company, "201", terminals=["PJSIP/201", "PJSIP/201w"])
    make_queue(company, "q-sales", members=[user])
    apply_frames(
        LiveState(),
        [freepbx_member(MemberName=user.name, Interface="PJSIP/201", StateInterface="PJSIP/201")],
    )
    webphone = Terminal.objects.get(interface="PJSIP/201w")
    response = api.post(f"/terminal-register/{webphone.mac}")
    assert response.json()["result"] == {"success": True}
    assert [(name, arguments["interface"]) for name, arguments in gateway.calls] == [
        ("QueueAdd", "PJSIP/201w")
    ]


def test_terminal_register_asks_the_pbx_even_if_the_listener_still_shows_the_device(
    api, ana, gateway
):
    """The listener may not have seen the QueueMemberRemoved of a DELETE a moment ago."""
    from terminals.models import Terminal

    apply_frames(
        LiveState(),
        [freepbx_member(Interface="PJSIP/201", StateInterface="PJSIP/201", Membership="dynamic")],
    )
    terminal = Terminal.objects.get(user=ana)
    response = api.post(f"/terminal-register/{terminal.mac}")
    assert response.json()["result"] == {"success": True}
    assert [(name, arguments["interface"]) for name, arguments in gateway.calls] == [
        ("QueueAdd", "PJSIP/201")
    ]
