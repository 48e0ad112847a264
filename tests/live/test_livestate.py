"""Live state from recorded Asterisk traffic: events of Asterisk 1.8, 16 and 20, and snapshots."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from pbx.gateway import ChannelRow, PbxSnapshot, QueueCallerRow, QueueMemberRow
from pbx.gateway.frames import Frame, FrameParser
from pbx.live.state_tables import LiveState
from pbx.models import (
    DeviceState,
    LiveChannel,
    PbxUser,
    QueueCallerState,
    QueueMemberState,
    UserPresence,
)
from terminals.models import Terminal
from tests.amireplay import Capture
from tests.conftest import fixtures_path
from tests.pbx_events import apply_frames

pytestmark = pytest.mark.django_db


def recorded_events(name: str) -> list[Frame]:
    capture = Capture.load(fixtures_path("ami", name))
    frames = []
    for lines in capture.events():
        frames.extend(FrameParser().feed(("\r\n".join(lines) + "\r\n\r\n").encode()))
    return frames


def event(**headers) -> Frame:
    return Frame([(key, str(value)) for key, value in headers.items()])


@pytest.fixture
def agent129(company, make_user, make_queue):
    user = make_user(company, "129", "Agente 129", terminals=["PJSIP/129"])
    make_queue(company, "main", members=[user])
    return user


def test_queue_member_pause_of_asterisk_20_pauses_and_unpauses(agent129):
    first, second = recorded_events("issue_asterisk395_queuepause_queuememberpause_ast20.txt")
    state = LiveState()

    changes = apply_frames(state, [first])
    member = QueueMemberState.objects.get()
    assert (member.queue_name, member.interface, member.user) == (
        "main",
        "Local/129@intern",
        agent129,
    )
    assert (member.paused, member.paused_reason) == (True, "Pause1")
    assert UserPresence.objects.get(user=agent129).pause_reason == "Pause1"
    assert agent129.pk in changes.user_ids
    assert member.queue_id in changes.queue_ids

    apply_frames(state, [second])  # Asterisk 20 sends an empty PausedReason on unpause
    member.refresh_from_db()
    assert (member.paused, member.paused_reason) == (False, "")
    assert UserPresence.objects.get(user=agent129).paused is False


def test_asterisk_16_reason_header_is_the_pause_reason(agent129):
    apply_frames(
        LiveState(),
        [
            event(
                Event="QueueMemberPause",
                Queue="main",
                MemberName="Agente 129",
                Interface="PJSIP/129",
                Paused="1",
                Reason="Descanso",
            ),
        ],
    )
    assert QueueMemberState.objects.get().paused_reason == "Descanso"
    assert UserPresence.objects.get(user=agent129).pause_reason == "Descanso"


def test_lower_case_keys_and_location_of_asterisk_1_8_add_a_member(company, make_user, make_queue):
    user = make_user(company, "7279", terminals=["PJSIP/7279"])
    make_queue(company, "1234")
    (added,) = recorded_events("issue_pami17_queuememberadded_lowercase_keys.txt")
    apply_frames(LiveState(), [added])
    member = QueueMemberState.objects.get()
    # Local/7279@from-queue/n names the user by the extension inside it, within the queue's company
    assert (member.queue_name, member.interface, member.user) == (
        "1234",
        "Local/7279@from-queue/n",
        user,
    )


def test_recorded_call_fills_and_empties_live_channels_and_device_states(company, make_user):
    make_user(company, "1001", terminals=["SIP/1001"])
    events = recorded_events("goami2_call_sip_dial_bridge_hangup.txt")
    state = LiveState()
    names = [e.name for e in events]
    newchannel_at = names.index("Newchannel")
    apply_frames(state, events[: newchannel_at + 1])
    assert LiveChannel.objects.count() == 1
    channel = LiveChannel.objects.get()
    assert channel.interface == channel.channel.rsplit("-", 1)[0]
    apply_frames(state, events[newchannel_at + 1 :])
    # the recording ends with both legs hung up and device states reported
    assert LiveChannel.objects.count() == 0
    recorded_devices = {e["Device"]: e["State"] for e in events if e.name == "DeviceStateChange"}
    assert dict(DeviceState.objects.values_list("interface", "state")) == recorded_devices


def test_callers_join_and_leave(company, make_queue):
    make_queue(company, "q1")
    state = LiveState()
    apply_frames(
        state,
        [
            event(
                Event="QueueCallerJoin",
                Queue="q1",
                Uniqueid="1.1",
                Channel="PJSIP/trunk-1",
                CallerIDNum="600111222",
                Position="1",
            ),
            event(
                Event="QueueCallerJoin",
                Queue="q1",
                Uniqueid="1.2",
                Channel="PJSIP/trunk-2",
                CallerIDNum="600111333",
                Position="2",
            ),
        ],
    )
    assert QueueCallerState.objects.count() == 2
    apply_frames(
        state,
        [
            event(Event="QueueCallerAbandon", Queue="q1", Uniqueid="1.1"),
            event(Event="QueueCallerLeave", Queue="q1", Uniqueid="1.1"),
            event(Event="QueueCallerLeave", Queue="q1", Uniqueid="1.2"),
        ],
    )
    assert not QueueCallerState.objects.exists()


def _joined(unique_id: str, position: int, queue: str = "q1") -> Frame:
    return event(
        Event="QueueCallerJoin",
        Queue=queue,
        Uniqueid=unique_id,
        Channel=f"PJSIP/trunk-{unique_id}",
        CallerIDNum=f"600{unique_id}",
        Position=str(position),
    )


def _positions() -> dict[str, int]:
    return dict(QueueCallerState.objects.values_list("unique_id", "position"))


@pytest.mark.parametrize("together", [False, True], ids=["batch per event", "one batch"])
def test_callers_are_renumbered_as_asterisk_does_when_one_leaves_or_jumps_ahead(
    company, make_queue, together
):
    """Asterisk numbers a queue's callers 1, 2, … in order: those behind one who leaves move up,
    and one who joins ahead (a higher priority) moves the rest down. Its QueueCallerLeave has
    no position of the others: SWAN renumbers them itself."""
    make_queue(company, "q1")
    state = LiveState()
    frames = [
        _joined("1.1", 1),
        _joined("1.2", 2),
        _joined("1.3", 3),
        event(Event="QueueCallerLeave", Queue="q1", Uniqueid="1.1", Position="1"),
        _joined("1.4", 3),  # Asterisk: behind the two left
        _joined("1.5", 1),  # a higher priority: first, the others one further back
        event(Event="QueueCallerLeave", Queue="q1", Uniqueid="1.2", Position="2"),
    ]
    for batch in [frames] if together else [[frame] for frame in frames]:
        apply_frames(state, batch)
    assert _positions() == {"1.5": 1, "1.3": 2, "1.4": 3}


def test_a_caller_leaving_renumbers_the_callers_stored_by_an_earlier_batch(company, make_queue):
    make_queue(company, "q1")
    make_queue(company, "q2")
    state = LiveState()
    apply_frames(state, [_joined("1.1", 1), _joined("1.2", 2), _joined("1.3", 3)])
    apply_frames(state, [_joined("2.1", 1, queue="q2")])
    apply_frames(state, [event(Event="QueueCallerLeave", Queue="q1", Uniqueid="1.2", Position="2")])
    assert _positions() == {"1.1": 1, "1.3": 2, "2.1": 1}  # q2's caller stays first of q2


def test_dnd_follows_the_custom_device_state(company, make_user):
    user = make_user(company, "200")
    state = LiveState()
    apply_frames(state, [event(Event="DeviceStateChange", Device="Custom:DND200", State="BUSY")])
    assert UserPresence.objects.get(user=user).dnd is True
    apply_frames(
        state, [event(Event="DeviceStateChange", Device="Custom:DND200", State="NOT_INUSE")]
    )
    assert UserPresence.objects.get(user=user).dnd is False


def test_a_broken_event_is_skipped_and_the_rest_applies(company, make_user, caplog):
    make_user(company, "200")
    broken = event(Event="QueueCallerJoin", Queue="q1", Uniqueid="x" * 200, Position="1")
    apply_frames(
        LiveState(),
        [
            broken,
            event(Event="DeviceStateChange", Device="PJSIP/200", State="INUSE"),
        ],
    )
    assert DeviceState.objects.get(interface="PJSIP/200").state == "INUSE"


def snapshot(**parts) -> PbxSnapshot:
    base = {
        "taken_at": datetime(2026, 11, 29, 10, 0, tzinfo=UTC),
        "device_states": {},
        "queue_members": [],
        "queue_callers": [],
        "channels": [],
        "contacts": [],
    }
    return PbxSnapshot(**{**base, **parts})


def member(queue, interface, *, paused=False, reason=""):
    return QueueMemberRow(
        queue=queue,
        interface=interface,
        member_name="",
        state_interface="",
        status=1,
        paused=paused,
        paused_reason=reason,
        in_call=False,
        calls_taken=0,
    )


def test_snapshot_replaces_drifted_state_and_counts_corrections(company, make_user, make_queue):
    ana = make_user(company, "200", terminals=["PJSIP/200"])
    make_queue(company, "q1", members=[ana])
    state = LiveState()
    apply_frames(
        state,
        [
            event(Event="DeviceStateChange", Device="PJSIP/200", State="INUSE"),
            event(Event="DeviceStateChange", Device="PJSIP/999", State="INUSE"),
            event(
                Event="QueueMemberPause",
                Queue="q1",
                Interface="PJSIP/200",
                Paused="1",
                PausedReason="Comida",
            ),
            event(Event="Newchannel", Channel="PJSIP/200-00000001", Uniqueid="9.1", Linkedid="9.1"),
        ],
    )
    changes = state.apply_snapshot(
        snapshot(
            device_states={"PJSIP/200": "NOT_INUSE"},
            queue_members=[member("q1", "PJSIP/200")],
            queue_callers=[
                QueueCallerRow(
                    queue="q1",
                    position=1,
                    channel="PJSIP/trunk-1",
                    unique_id="7.1",
                    caller_id_num="600",
                    wait_seconds=30,
                )
            ],
            channels=[
                ChannelRow(
                    channel="PJSIP/trunk-1",
                    unique_id="7.1",
                    linked_id="7.1",
                    state="Up",
                    caller_id_num="600",
                    connected_line_num="",
                    exten="q1",
                    context="from-pstn",
                    application="Queue",
                    duration_seconds=30,
                )
            ],
        )
    )
    # PJSIP/200 state, PJSIP/999 gone, member unpaused, caller added, channel 9.1 gone,
    # channel 7.1 added, presence unpaused
    assert changes.corrected == 7
    assert dict(DeviceState.objects.values_list("interface", "state")) == {"PJSIP/200": "NOT_INUSE"}
    assert UserPresence.objects.get(user=ana).paused is False
    caller = QueueCallerState.objects.get()
    assert caller.entered_at == datetime(2026, 11, 29, 9, 59, 30, tzinfo=UTC)
    assert list(LiveChannel.objects.values_list("unique_id", flat=True)) == ["7.1"]
    assert ana.pk in changes.user_ids

    again = state.apply_snapshot(
        snapshot(
            device_states={"PJSIP/200": "NOT_INUSE"},
            queue_members=[member("q1", "PJSIP/200")],
            queue_callers=[
                QueueCallerRow(
                    queue="q1",
                    position=1,
                    channel="PJSIP/trunk-1",
                    unique_id="7.1",
                    caller_id_num="600",
                    wait_seconds=31,
                )
            ],
            channels=[
                ChannelRow(
                    channel="PJSIP/trunk-1",
                    unique_id="7.1",
                    linked_id="7.1",
                    state="Up",
                    caller_id_num="600",
                    connected_line_num="",
                    exten="q1",
                    context="from-pstn",
                    application="Queue",
                    duration_seconds=31,
                )
            ],
        )
    )
    assert again.corrected == 0


def test_snapshot_without_device_list_keeps_device_states(company, make_user):
    make_user(company, "200")
    apply_frames(LiveState(), [event(Event="DeviceStateChange", Device="PJSIP/200", State="INUSE")])
    LiveState().apply_snapshot(snapshot())
    assert DeviceState.objects.get().state == "INUSE"


def _member_event(name: str, *, paused: bool, status: int = 1) -> Frame:
    return event(
        Event=name,
        Queue="main",
        MemberName="Agente 129",
        Interface="PJSIP/129",
        StateInterface="PJSIP/129",
        Status=status,
        Paused=int(paused),
        PausedReason="Descanso" if paused else "",
    )


def _stored_pause(user) -> tuple[bool, str]:
    presence = UserPresence.objects.get(user=user)
    return presence.paused, presence.pause_reason


def test_an_older_batch_does_not_undo_a_pause_the_api_stored(agent129):
    """Seen under load (issue 12): terminal-register re-added the phone unpaused, then a
    userStatus POST paused it on the PBX and stored the pause; the listener's batch holding the
    re-add, older than the pause, wrote "not paused" over it until the pause's own event came."""
    state = LiveState()
    apply_frames(state, [_member_event("QueueMemberAdded", paused=False)])
    assert _stored_pause(agent129) == (False, "")

    # The POST: the PBX paused the member, SWAN stored what the PBX answered.
    UserPresence.objects.filter(user=agent129).update(paused=True, pause_reason="Descanso")
    # The listener's next batch still holds what came before the pause: a re-add and a status.
    apply_frames(
        state,
        [
            event(Event="QueueMemberRemoved", Queue="main", Interface="PJSIP/129"),
            _member_event("QueueMemberAdded", paused=False),
            _member_event("QueueMemberStatus", paused=False, status=2),
        ],
    )
    assert _stored_pause(agent129) == (True, "Descanso")

    apply_frames(state, [_member_event("QueueMemberPause", paused=True)])  # the pause's event
    assert _stored_pause(agent129) == (True, "Descanso")
    apply_frames(state, [_member_event("QueueMemberPause", paused=False)])  # unpaused on the PBX
    assert _stored_pause(agent129) == (False, "")


def test_a_member_change_seen_by_the_listener_still_reaches_presence(agent129):
    """Only what did not change is left alone: a pause and a re-add that drops it apply."""
    state = LiveState()
    apply_frames(state, [_member_event("QueueMemberAdded", paused=True)])
    assert _stored_pause(agent129) == (True, "Descanso")
    apply_frames(
        state,
        [
            event(Event="QueueMemberRemoved", Queue="main", Interface="PJSIP/129"),
            _member_event("QueueMemberAdded", paused=False),  # Asterisk re-adds unpaused
        ],
    )
    assert _stored_pause(agent129) == (False, "")


def _paused_member_of_nobody(company, make_queue) -> LiveState:
    """Agent PJSIP/300 paused in q1 on the PBX before SWAN's directory names anyone for it."""
    make_queue(company, "q1")
    state = LiveState()
    state.apply_snapshot(
        snapshot(queue_members=[member("q1", "PJSIP/300", paused=True, reason="Comida")])
    )
    assert QueueMemberState.objects.get().user_id is None
    return state


def test_a_member_seen_before_its_user_existed_is_matched_after_the_directory_changes(
    company, make_user, make_queue
):
    state = _paused_member_of_nobody(company, make_queue)
    marta = make_user(company, "300", "Marta", terminals=["PJSIP/300"])
    state.reload_directory()
    changes = state.rematch()
    assert QueueMemberState.objects.get().user_id == marta.pk
    presence = UserPresence.objects.get(user=marta)
    assert (presence.paused, presence.pause_reason) == (True, "Comida")
    assert marta.pk in changes.user_ids
    assert changes.corrected == 1  # the member row
    assert state.rematch().corrected == 0  # nothing more to match


def test_a_terminal_moved_to_another_user_moves_the_member_and_its_pause(
    company, make_user, make_queue
):
    state = _paused_member_of_nobody(company, make_queue)
    marta = make_user(company, "300", "Marta", terminals=["PJSIP/300"])
    state.reload_directory()
    state.rematch()
    luis = make_user(company, "301", "Luis", terminals=[])
    Terminal.objects.filter(interface="PJSIP/300").update(user=luis)
    state.reload_directory()
    changes = state.rematch()
    assert QueueMemberState.objects.get().user_id == luis.pk
    assert UserPresence.objects.get(user=luis).paused is True
    assert UserPresence.objects.get(user=marta).paused is False
    assert {marta.pk, luis.pk} <= changes.user_ids


def test_a_caller_of_a_queue_created_later_is_counted_in_it(company, make_queue):
    state = LiveState()
    apply_frames(state, [_joined("1.1", 1, queue="q-new")])
    assert QueueCallerState.objects.get().queue_id is None
    queue = make_queue(company, "q-new")
    state.reload_directory()
    changes = state.rematch()
    assert QueueCallerState.objects.get().queue_id == queue.pk
    assert queue.pk in changes.queue_ids


def test_a_snapshot_after_the_directory_changed_matches_the_rows_it_keeps(
    company, make_user, make_queue
):
    state = _paused_member_of_nobody(company, make_queue)
    marta = make_user(company, "300", "Marta", terminals=["PJSIP/300"])
    state.reload_directory()  # the reconcile reloads, then takes a snapshot
    changes = state.apply_snapshot(
        snapshot(queue_members=[member("q1", "PJSIP/300", paused=True, reason="Comida")])
    )
    assert QueueMemberState.objects.get().user_id == marta.pk
    assert UserPresence.objects.get(user=marta).paused is True
    assert marta.pk in changes.user_ids


def test_matching_after_a_directory_change_leaves_other_users_pauses_as_stored(
    company, make_user, make_queue
):
    """A userStatus POST may have stored a pause whose member events are still on their way:
    the re-match of someone else's member must not put back what the member rows said."""
    state = _paused_member_of_nobody(company, make_queue)
    luis = make_user(company, "301", "Luis", terminals=["PJSIP/301"])
    UserPresence.objects.create(
        user=luis, paused=True, pause_reason="Comida", changed_at=timezone.now(),
        confirmed_at=timezone.now(),
    )  # fmt: skip
    make_user(company, "300", "Marta", terminals=["PJSIP/300"])
    state.reload_directory()
    state.rematch()
    presence = UserPresence.objects.get(user=luis)
    assert (presence.paused, presence.pause_reason) == (True, "Comida")


def test_a_snapshot_puts_the_callers_it_keeps_in_asterisks_places(company, make_queue):
    """A caller ahead left while the listener was away: the snapshot says who moved up."""
    make_queue(company, "q1")
    state = LiveState()
    apply_frames(state, [_joined("1.1", 1), _joined("1.2", 2), _joined("1.3", 3)])

    def waiting(unique_id: str, position: int) -> QueueCallerRow:
        return QueueCallerRow(
            queue="q1",
            position=position,
            channel=f"PJSIP/trunk-{unique_id}",
            unique_id=unique_id,
            caller_id_num=f"600{unique_id}",
            wait_seconds=30,
        )

    changes = state.apply_snapshot(snapshot(queue_callers=[waiting("1.2", 1), waiting("1.3", 2)]))
    assert _positions() == {"1.2": 1, "1.3": 2}
    assert changes.corrected == 3  # 1.1 gone, 1.2 and 1.3 moved up


def test_a_dnd_lamp_lit_before_its_user_existed_is_matched_after_the_directory_changes(company):
    state = LiveState()
    apply_frames(state, [event(Event="DeviceStateChange", Device="Custom:DND300", State="BUSY")])
    marta = PbxUser.objects.create(company=company, extension="300", name="Marta")
    state.reload_directory()
    changes = state.rematch()
    assert UserPresence.objects.get(user=marta).dnd is True
    assert marta.pk in changes.user_ids
    assert state.rematch().corrected == 0
