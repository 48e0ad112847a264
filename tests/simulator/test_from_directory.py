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
