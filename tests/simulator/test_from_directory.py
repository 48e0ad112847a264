"""The simulator built from the database, and the management command's options."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from pbx.management.commands.simulate_pbx import Command
from pbx.simulator import CallCentre
from terminals.models import Terminal


@pytest.mark.django_db
def test_it_reads_companies_queues_members_and_terminals(make_company, make_user, make_queue):
    company = make_company(slug="acme", time_zone="America/Bogota", dial_context="ctx-acme")
    ana = make_user(company, "200", "Ana")
    luis = make_user(company, "201", "Luis", terminals=["PJSIP/201", "PJSIP/201b"])
    Terminal.objects.filter(interface="PJSIP/201b").update(registered=True)
    make_user(company, "202", "Nadie", terminals=[])
    make_queue(company, "ventas", members=[ana, luis], service_level_seconds=30)

    centre = CallCentre.from_directory(seed=1)

    assert set(centre.devices) == {"PJSIP/trunk", "PJSIP/200", "PJSIP/201", "PJSIP/201b"}
    queue = centre.queues["ventas"]
    assert (queue.company, queue.service_level) == ("acme", 30)
    members = {m.interface: m.name for m in queue.members.values()}
    assert members == {"PJSIP/200": "Ana", "PJSIP/201b": "Luis"}  # registered terminal first
    assert ("200", "ctx-acme", "PJSIP/200", "NOT_INUSE") in centre.hints()
    assert centre.cdr_time_zone == settings.CDR_TIME_ZONE  # one zone for the whole PBX


def test_the_command_defaults_come_from_settings():
    options = Command().create_parser("manage.py", "simulate_pbx").parse_args([])
    assert (options.host, options.port) == (settings.AMI_HOST, settings.AMI_PORT)
    assert (options.username, options.secret) == (settings.AMI_USERNAME, settings.AMI_SECRET)
    assert options.queue_log == Path(settings.BASE_DIR) / "var" / "asterisk" / "queue_log"
    assert options.cdr.name == "Master.csv"
    assert (options.speed, options.seed, options.no_calls) == (1.0, None, False)


def test_the_command_rejects_a_speed_that_stops_time():
    err = io.StringIO()
    call_command("simulate_pbx", "--speed", "0", stderr=err)
    assert "--speed must be positive" in err.getvalue()


@pytest.mark.django_db
def test_one_pbx_of_the_directory_is_simulated_with_its_companies_only(
    make_company, make_user, make_queue
):
    from pbx.models import Pbx

    pbx_b = Pbx.objects.create(
        name="pbx-b",
        host="127.0.0.1",
        username="swan",
        secret_env="SWAN_PBX_X",
        dial_context="ctx-b",
    )
    on_default = make_company(slug="acme")
    on_b = make_company(slug="bravo", pbx=pbx_b)  # no dial context of its own: the PBX's
    make_queue(on_default, "ventas", members=[make_user(on_default, "201", "Ana")])
    make_queue(on_b, "ventas", members=[make_user(on_b, "201", "Bea", terminals=["PJSIP/301"])])

    centre_b = CallCentre.from_directory(seed=1, pbx="pbx-b")
    assert set(centre_b.devices) == {"PJSIP/trunk", "PJSIP/301"}
    assert centre_b.queues["ventas"].company == "bravo"
    assert ("201", "ctx-b", "PJSIP/301", "NOT_INUSE") in centre_b.hints()
    centre_default = CallCentre.from_directory(seed=1, pbx="default")
    assert set(centre_default.devices) == {"PJSIP/trunk", "PJSIP/201"}
    assert centre_default.queues["ventas"].company == "acme"


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_pbx():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No PBX named nowhere"):
        call_command("simulate_pbx", "--pbx", "nowhere")
