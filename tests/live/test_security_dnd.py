"""Security sweep (issue 10, finding 2): do-not-disturb never crosses companies sharing an extension.

Company A and company B both have an extension 201 on one PBX. A's DND key and device must never
be B's: with a DND prefix they differ (`DND/201` vs `DND/beta-201`); without one the key is
ambiguous, and then SWAN refuses to set it (409, nothing sent) and the listener applies it to no
one. Unit tests (keys, mapping, the service) and end to end over TCP against the simulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from pbx.directory.dnd import DndKeys, dnd_key_of, dnd_key_sharers, key_of_dnd_device
from pbx.directory.loading import DirectoryError, directory_load
from pbx.gateway import PbxSnapshot
from pbx.gateway.frames import Frame
from pbx.live.state_tables import LiveState
from pbx.models import Company, DeviceState, Pbx, UserPresence
from pbx.simulator import SimulatedPbx
from pbx.simulator.callcentre import CallCentre
from pbx.simulator.config import QUIET
from tests.pbx_events import apply_frames

pytestmark = pytest.mark.django_db


def event(**headers) -> Frame:
    return Frame([(key, str(value)) for key, value in headers.items()])


def dnd_event(device: str, state: str) -> Frame:
    return event(Event="DeviceStateChange", Device=device, State=state)


def snapshot(device_states: dict[str, str]) -> PbxSnapshot:
    return PbxSnapshot(
        taken_at=datetime.now(UTC),
        device_states=device_states,
        queue_members=[],
        queue_callers=[],
        channels=[],
        contacts=[],
    )


def dnd_of(user) -> bool:
    presence = UserPresence.objects.filter(user=user).first()
    return bool(presence and presence.dnd)


def answer(response, status=200) -> dict:
    assert response.status_code == status, response.content
    return json.loads(response.content)


@pytest.fixture
def shared(make_company, make_user, make_queue):
    """Alpha (no prefix) and Beta, both with extension 201; Beta's prefix is set per test."""
    alpha = make_company(slug="alpha", name="Alpha SL")
    beta = make_company(slug="beta", name="Beta SL")
    a201 = make_user(alpha, "201", "Ana Alpha", terminals=["PJSIP/201"])
    b201 = make_user(beta, "201", "Bruno Beta", terminals=["PJSIP/b201"])
    make_queue(alpha, "q-alpha", members=[a201])
    make_queue(beta, "q-beta", members=[b201])
    return {"alpha": alpha, "beta": beta, "a201": a201, "b201": b201}


@pytest.fixture
def prefixed(shared):
    Company.objects.filter(pk=shared["beta"].pk).update(dnd_prefix="beta-")
    shared["b201"].company.refresh_from_db()
    return shared


@pytest.fixture
def pbx_b(db):
    return Pbx.objects.create(
        name="pbx-b", host="127.0.0.1", username="swan", secret_env="SWAN_PBX_B"
    )


# ----------------------------------------------------------------------------- keys


def test_the_dnd_key_is_the_extension_without_a_prefix_and_prefixed_with_one(prefixed):
    assert dnd_key_of(prefixed["a201"]) == "201"
    assert dnd_key_of(prefixed["b201"]) == "beta-201"
    assert key_of_dnd_device("Custom:DNDbeta-201") == "beta-201"
    assert key_of_dnd_device("custom:dnd201") == "201"
    assert key_of_dnd_device("PJSIP/201") is None


@pytest.mark.parametrize("prefix", ["", "acme-", "B_", "t1-", "Beta"])
def test_a_dnd_prefix_of_asterisk_safe_characters_is_valid(prefix):
    Company(slug="acme", name="ACME", dnd_prefix=prefix).full_clean()


@pytest.mark.parametrize(
    "prefix", ["acme1", "a b", "a\n", "a\r\nAction: Command", "a/b", "a:b", "a&b", "x" * 21]
)
def test_a_dnd_prefix_with_other_characters_or_a_final_digit_is_refused(prefix):
    with pytest.raises(ValidationError) as refused:
        Company(slug="acme", name="ACME", dnd_prefix=prefix).full_clean()
    assert "dnd_prefix" in refused.value.message_dict


def test_two_companies_of_one_pbx_never_share_a_dnd_prefix_ignoring_case(make_company, pbx_b):
    make_company(dnd_prefix="acme-")
    make_company(dnd_prefix="")
    make_company(dnd_prefix="")  # empty is FreePBX's layout: any number of companies
    with pytest.raises(IntegrityError), transaction.atomic():
        make_company(dnd_prefix="ACME-")
    make_company(dnd_prefix="Acme-", pbx=pbx_b)  # its keys live in another PBX's AstDB
    with pytest.raises(IntegrityError), transaction.atomic():
        make_company(dnd_prefix="acme-", pbx=pbx_b)


def test_a_company_moving_onto_a_pbx_where_its_dnd_prefix_is_taken_is_refused(make_company, pbx_b):
    make_company(slug="there", name="There", dnd_prefix="acme-", pbx=pbx_b)
    moving = make_company(slug="here", name="Here", dnd_prefix="ACME-")
    moving.pbx = pbx_b
    with pytest.raises(ValidationError) as refused, translation.override("en"):
        moving.full_clean()
    assert "Another company on this PBX already uses this DND prefix." in str(refused.value)


def test_the_admin_refuses_a_dnd_prefix_taken_on_the_pbx_and_takes_it_on_another(
    admin_client, make_company, pbx_b, settings
):
    settings.LANGUAGE_CODE = "en"
    make_company(slug="there", name="There", dnd_prefix="acme-", pbx=pbx_b)
    form = {
        "slug": "acme",
        "name": "ACME",
        "time_zone": "Europe/Madrid",
        "dial_context": "",
        "dnd_prefix": "acme-",
        "departments-TOTAL_FORMS": 0,
        "departments-INITIAL_FORMS": 0,
    }
    page = admin_client.post("/admin/pbx/company/add/", {**form, "pbx": "pbx-b"})
    assert page.status_code == 200
    assert page.context["adminform"].form.non_field_errors() == [
        "Another company on this PBX already uses this DND prefix."
    ]
    page = admin_client.post("/admin/pbx/company/add/", {**form, "pbx": ""})
    assert page.status_code == 302
    assert Company.objects.get(slug="acme").pbx_key == "default"


def test_a_shared_key_names_the_other_company(shared):
    assert dnd_key_sharers(shared["a201"]) == [shared["beta"]]
    Company.objects.filter(pk=shared["beta"].pk).update(dnd_prefix="beta-")
    assert dnd_key_sharers(shared["a201"]) == []


# ----------------------------------------------------------------------------- the listener


def test_a_dnd_event_reaches_only_the_company_whose_key_it_is(prefixed):
    state = LiveState()
    apply_frames(state, [dnd_event("Custom:DND201", "BUSY")])
    assert (dnd_of(prefixed["a201"]), dnd_of(prefixed["b201"])) == (True, False)
    apply_frames(state, [dnd_event("Custom:DNDbeta-201", "BUSY")])
    apply_frames(state, [dnd_event("Custom:DND201", "NOT_INUSE")])
    assert (dnd_of(prefixed["a201"]), dnd_of(prefixed["b201"])) == (False, True)


def test_the_snapshot_maps_dnd_devices_by_company_key(prefixed):
    LiveState().apply_snapshot(snapshot({"Custom:DNDbeta-201": "BUSY", "PJSIP/201": "NOT_INUSE"}))
    assert (dnd_of(prefixed["a201"]), dnd_of(prefixed["b201"])) == (False, True)


def test_an_ambiguous_dnd_key_maps_to_no_user_and_is_logged_once(shared, caplog):
    state = LiveState()
    apply_frames(state, [dnd_event("Custom:DND201", "BUSY")])
    apply_frames(state, [dnd_event("Custom:DND201", "NOT_INUSE")])
    apply_frames(state, [dnd_event("Custom:DND201", "BUSY")])
    assert (dnd_of(shared["a201"]), dnd_of(shared["b201"])) == (False, False)
    assert caplog.text.count("dnd key shared by companies") == 1
    state.apply_snapshot(snapshot({"Custom:DND201": "BUSY"}))
    assert (dnd_of(shared["a201"]), dnd_of(shared["b201"])) == (False, False)


def test_dnd_keys_ignore_case_like_asterisk_device_names(prefixed):
    assert DndKeys.load().users_of("BETA-201") == {prefixed["b201"].pk}


# ----------------------------------------------------------------------------- the service


@pytest.mark.parametrize("status", ["busy", "available"])
def test_a_shared_dnd_key_is_a_409_naming_it_and_nothing_reaches_the_pbx(
    shared, api, gateway, status
):
    body = answer(api.post("/userStatus/201", {"status": status, "company": "alpha"}), 409)
    assert body["error"] is True
    assert "201" in body["error-msg"]
    assert "Beta SL" in body["error-msg"]
    assert gateway.calls == []
    assert not UserPresence.objects.exists()


def test_the_shared_key_message_is_translated(shared, api, gateway):
    body = answer(
        api.post(
            "/userStatus/201",
            {"status": "busy", "company": "beta"},
            HTTP_ACCEPT_LANGUAGE="en",
        ),
        409,
    )
    assert body["error-msg"] == (
        "Extension 201 shares its do-not-disturb key with company Alpha SL; "
        "give one of the companies a DND prefix."
    )
    spanish = answer(
        api.post(
            "/userStatus/201", {"status": "busy", "company": "beta"}, HTTP_ACCEPT_LANGUAGE="es"
        ),
        409,
    )
    assert "prefijo" in spanish["error-msg"]


def test_pause_does_not_touch_dnd_and_still_works_with_a_shared_key(shared, api, gateway):
    answer(api.post("/userStatus/201", {"status": "pause", "company": "alpha"}))
    assert [action for action, _ in gateway.calls] == ["QueuePause"]


def test_each_company_sets_its_own_dnd_key(prefixed, api, gateway):
    answer(api.post("/userStatus/201", {"status": "busy", "company": "alpha"}))
    answer(api.post("/userStatus/201", {"status": "available", "company": "beta"}))
    dnd = [arguments for action, arguments in gateway.calls if action == "DND"]
    assert dnd == [
        {"key": "201", "enabled": True, "reason": ""},
        {"key": "beta-201", "enabled": False, "reason": ""},
    ]


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def pbx(prefixed, settings):
    centre = CallCentre.from_directory(behaviour=QUIET, seed=1)
    simulator = SimulatedPbx(centre, port=0, username="swan-test", secret="s3cret", speed=0)
    simulator.start()
    settings.PBX_GATEWAY = "pbx.gateway.ami.AmiGateway"
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", simulator.port
    settings.AMI_USERNAME, settings.AMI_SECRET = "swan-test", "s3cret"
    settings.AMI_TIMEOUT = 2.0
    now = timezone.now()
    for interface, state in centre.device_states().items():
        DeviceState.objects.create(
            interface=interface, state=state, changed_at=now, confirmed_at=now
        )
    yield centre
    simulator.stop()


def resync() -> None:
    """What the listener does on (re)connecting: a snapshot of the simulated PBX, applied."""
    from pbx.gateway.ami import AmiGateway

    gateway = AmiGateway.from_settings()
    try:
        LiveState().apply_snapshot(gateway.snapshot())
    finally:
        gateway.close()


def status_of(api, company: str) -> str:
    return answer(api.get(f"/userStatus/201?company={company}"))["result"]["status"]


def blf_status(api, company: str) -> str:
    (row,) = [
        u for u in answer(api.get(f"/blf-users/{company}"))["result"] if u["extension"] == "201"
    ]
    return row["status"]


def test_over_the_wire_a_busy_never_shows_on_the_other_company_and_available_never_clears_it(
    api, pbx
):
    answer(api.post("/userStatus/201", {"status": "busy", "company": "beta"}))
    assert pbx.astdb[("DND", "beta-201")] == "YES"
    assert pbx.device_states()["Custom:DNDbeta-201"] == "BUSY"

    answer(api.post("/userStatus/201", {"status": "busy", "company": "alpha"}))
    assert pbx.astdb[("DND", "201")] == "YES"
    resync()
    assert (status_of(api, "alpha"), status_of(api, "beta")) == ("busy", "busy")

    answer(api.post("/userStatus/201", {"status": "available", "company": "alpha"}))
    assert ("DND", "201") not in pbx.astdb
    assert pbx.astdb[("DND", "beta-201")] == "YES"  # A's available never cleared B's DND
    assert pbx.device_states()["Custom:DNDbeta-201"] == "BUSY"
    resync()
    assert (status_of(api, "alpha"), status_of(api, "beta")) == ("available", "busy")
    assert (blf_status(api, "alpha"), blf_status(api, "beta")) == ("available", "busy")


def test_over_the_wire_a_busy_of_one_company_leaves_the_other_available(api, pbx):
    answer(api.post("/userStatus/201", {"status": "busy", "company": "alpha"}))
    resync()
    assert (status_of(api, "alpha"), status_of(api, "beta")) == ("busy", "available")
    assert blf_status(api, "beta") == "available"
    assert ("DND", "beta-201") not in pbx.astdb


def test_over_the_wire_a_shared_key_sends_nothing(api, pbx, prefixed):
    Company.objects.filter(pk=prefixed["beta"].pk).update(dnd_prefix="")
    answer(api.post("/userStatus/201", {"status": "busy", "company": "alpha"}), 409)
    assert not [key for key in pbx.astdb if key[0] == "DND"]
    assert not [device for device in pbx.device_states() if device.startswith("Custom:")]


# ----------------------------------------------------------------------------- the directory file


def _document(**beta) -> dict:
    return {
        "companies": [
            {"slug": "alpha", "name": "Alpha SL", "users": [{"extension": "201", "name": "Ana"}]},
            {
                "slug": "beta",
                "name": "Beta SL",
                **beta,
                "users": [{"extension": "201", "name": "Bo"}],
            },
        ]
    }


def test_the_directory_file_sets_and_clears_the_dnd_prefix(db):
    directory_load(_document(dnd_prefix="beta-"))
    assert Company.objects.get(slug="beta").dnd_prefix == "beta-"
    assert Company.objects.get(slug="alpha").dnd_prefix == ""
    assert not directory_load(_document(dnd_prefix="beta-")).changed
    directory_load(_document(dnd_prefix=None))
    assert Company.objects.get(slug="beta").dnd_prefix == ""


@pytest.mark.parametrize("prefix", ["beta1", "be ta", "be\nta", "b/x", 7])
def test_the_directory_file_refuses_a_bad_dnd_prefix(db, prefix):
    with pytest.raises(DirectoryError) as refused:
        directory_load(_document(dnd_prefix=prefix))
    assert "companies[1] (beta): dnd_prefix" in str(refused.value)
    assert not Company.objects.exists()


def test_the_directory_file_refuses_a_dnd_prefix_used_twice_or_by_another_company(db, make_company):
    document = _document(dnd_prefix="x-")
    document["companies"][0]["dnd_prefix"] = "X-"
    with pytest.raises(DirectoryError, match="dnd_prefix x- is listed twice"):
        directory_load(document)
    make_company(slug="gamma", name="Gamma", dnd_prefix="beta-")
    with pytest.raises(
        DirectoryError, match="dnd_prefix 'beta-' is already used by company 'gamma'"
    ):
        directory_load(_document(dnd_prefix="BETA-"))
    assert not Company.objects.filter(slug__in=["alpha", "beta"]).exists()


def test_the_directory_file_takes_one_dnd_prefix_on_two_pbxes_and_not_twice_on_one(
    db, make_company, pbx_b
):
    document = _document(dnd_prefix="x-", pbx="pbx-b")
    document["companies"][0]["dnd_prefix"] = "X-"
    directory_load(document)
    assert dict(Company.objects.values_list("slug", "dnd_prefix")) == {"alpha": "X-", "beta": "x-"}
    make_company(slug="gamma", name="Gamma", dnd_prefix="beta-", pbx=pbx_b)
    directory_load(_document(dnd_prefix="BETA-", pbx=None))  # back on the settings' PBX
    assert Company.objects.get(slug="beta").pbx_key == "default"
    with pytest.raises(
        DirectoryError,
        match="dnd_prefix 'beta-' is already used by company 'gamma' on PBX 'pbx-b'",
    ):
        directory_load(_document(dnd_prefix="BETA-", pbx="pbx-b"))
    assert Company.objects.get(slug="beta").pbx_key == "default"


def test_the_admin_edits_the_dnd_prefix(admin_client, prefixed):
    page = admin_client.get(f"/admin/pbx/company/{prefixed['beta'].pk}/change/")
    assert page.status_code == 200
    assert b'name="dnd_prefix"' in page.content
    assert b'value="beta-"' in page.content


def test_the_demo_directory_shares_no_dnd_key(db):
    """`make run` loads two companies: every user's DND key must be its own."""
    from pbx.management.commands.setup_demo import DEMO_DIRECTORY
    from pbx.models import PbxUser

    directory_load(json.loads(DEMO_DIRECTORY.read_text()))
    users = PbxUser.objects.select_related("company")
    assert users.count() > 20
    assert [user for user in users if dnd_key_sharers(user)] == []
