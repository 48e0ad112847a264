"""The demo directory and setup_demo: loads, admin login, a working demo API key, run twice."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from agenda.models import Agenda
from pbx.directory.loading import directory_load
from pbx.management.commands.setup_demo import DEMO_DIRECTORY
from pbx.models import Company, Department, PbxUser, PublicNumber, Queue
from terminals.models import Terminal


def run_setup_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("setup_demo", *args, stdout=out)
    return out.getvalue()


def printed(label: str, output: str) -> str:
    return re.search(rf"^{label}:\s+(\S+)", output, re.MULTILINE).group(1)


def blf_status(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get("/blf-users/solana").status_code


@pytest.mark.django_db
def test_the_demo_directory_loads_with_what_a_demo_needs():
    document = json.loads(DEMO_DIRECTORY.read_text(encoding="utf-8"))

    report = directory_load(document)

    assert report.companies.created >= 2
    assert 25 <= PbxUser.objects.count() <= 35
    for company in Company.objects.all():
        assert Department.objects.filter(company=company).count() >= 2
        assert PublicNumber.objects.filter(company=company, in_use=True).exists()
        assert Agenda.objects.filter(company=company, phones__isnull=False).exists()
        queues = Queue.objects.filter(company=company)
        assert queues.exists()
        assert all(queue.members.exists() for queue in queues)
    webphones = Terminal.objects.filter(type="webphone")
    assert 5 <= webphones.count() < PbxUser.objects.count()
    assert webphones.values("user").distinct().count() == webphones.count()  # one per user
    assert Terminal.objects.filter(type="desk").count() >= 25
    assert not directory_load(document).changed


@pytest.mark.django_db
def test_setup_demo_twice_keeps_the_password_and_prints_a_working_key(settings):
    settings.DEMO_ADMIN_PASSWORD = ""

    first = run_setup_demo()
    password = printed("Password", first)
    first_key = printed("API key", first)
    second = run_setup_demo()
    second_key = printed("API key", second)

    admin = get_user_model().objects.get(username="admin")
    assert (admin.is_superuser, admin.is_staff) == (True, True)
    assert admin.check_password(password)
    assert "existing password is kept" in second
    assert second_key != first_key
    assert blf_status(second_key) == 200
    assert blf_status(first_key) == 401  # rotated: only the printed key works
    assert PbxUser.objects.count() == 30
    for text in (
        "http://127.0.0.1:8000/admin/",
        "Login:    admin",
        "http://127.0.0.1:8000/api/docs/",
        f'curl -H "Authorization: Bearer {second_key}" http://127.0.0.1:8000/blf-users/solana',
        "users: 0 created, 0 updated, 30 unchanged",
    ):
        assert text in second


@pytest.mark.django_db
def test_setup_demo_takes_the_password_from_the_environment_for_a_new_admin(settings):
    settings.DEMO_ADMIN_PASSWORD = "demo-from-env-1"  # read from the environment by settings.py

    output = run_setup_demo()

    assert "demo-from-env-1" not in output
    assert get_user_model().objects.get(username="admin").check_password("demo-from-env-1")


@pytest.mark.django_db
def test_setup_demo_password_option_replaces_an_existing_password(settings):
    settings.DEMO_ADMIN_PASSWORD = ""
    run_setup_demo()

    output = run_setup_demo("--password", "a-new-demo-password")

    assert "changed" in output
    assert get_user_model().objects.get(username="admin").check_password("a-new-demo-password")


@pytest.mark.django_db
def test_setup_demo_gives_the_admin_a_phone_the_simulator_answers(settings):
    from dashboard.models import Supervisor
    from pbx.simulator.from_directory import config_from_directory

    settings.DEMO_ADMIN_PASSWORD = ""
    output = run_setup_demo()
    assert printed("Phone", output) == "PJSIP/299"
    supervisor = Supervisor.objects.get(user__username="admin")
    assert supervisor.phone == "PJSIP/299"
    assert "PJSIP/299" in {device.interface for device in config_from_directory().devices}
    supervisor.phone = "PJSIP/250"
    supervisor.save()
    run_setup_demo()
    assert Supervisor.objects.get(user__username="admin").phone == "PJSIP/250"  # kept
