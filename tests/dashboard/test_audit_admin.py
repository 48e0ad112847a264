"""The admin side of the actions: each supervisor's permissions and phone, and the audit log,
which can be read and searched but never added to, changed or deleted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dashboard.models import AuditEntry, Supervisor


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def entry(company, make_supervisor) -> AuditEntry:
    marta = make_supervisor(company, username="marta")
    return AuditEntry.objects.create(
        user=marta,
        username="marta",
        company=company,
        company_name=company.name,
        action="logout",
        extension="201",
        target_name="Luis Pérez",
        outcome="refused",
        status_code=409,
        message="The PBX did not take extension 201 out of every queue",
        pbx_answer="QueueRemove q-soporte PJSIP/201: Member not dynamic",
    )


def test_the_audit_log_is_listed_and_searched_by_the_pbx_answer(admin_client, entry):
    changelist = reverse("admin:dashboard_auditentry_changelist")
    page = admin_client.get(changelist, {"q": "not dynamic"}).content.decode()
    assert "marta" in page
    assert "Luis Pérez" in page
    assert "log out of the queues" in page
    assert reverse("admin:dashboard_auditentry_add") not in page  # no "Add" button
    assert "0 results" in admin_client.get(changelist, {"q": "nothing like it"}).content.decode()


def test_the_audit_log_cannot_be_added_to_changed_or_deleted(admin_client, entry):
    assert admin_client.get(reverse("admin:dashboard_auditentry_add")).status_code == 403
    change = reverse("admin:dashboard_auditentry_change", args=[entry.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Member not dynamic" in html
    assert 'name="_save"' not in html
    admin_client.post(change, {"message": "rewritten", "outcome": "done"})
    entry.refresh_from_db()
    assert (entry.message, entry.outcome) == (
        "The PBX did not take extension 201 out of every queue",
        "refused",
    )
    delete = reverse("admin:dashboard_auditentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        reverse("admin:dashboard_auditentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_an_entry_outlives_the_login_that_made_it(entry):
    entry.user.delete()
    entry.refresh_from_db()
    assert (entry.user, entry.username) == (None, "marta")


def supervisor_form(supervisor: Supervisor, **changes) -> dict:
    data = {
        "user": supervisor.user_id,
        "companies": [c.pk for c in supervisor.companies.all()],
        "phone": "",
    }
    data.update(changes)
    return data


def test_permissions_and_phone_are_set_per_supervisor(admin_client, company, make_supervisor):
    supervisor = make_supervisor(company, username="marta").supervisor
    change = reverse("admin:dashboard_supervisor_change", args=[supervisor.pk])
    html = admin_client.get(change).content.decode()
    for name in ("may_pause", "may_log_agents", "may_listen", "may_whisper", "may_barge", "phone"):
        assert f'name="{name}"' in html
    response = admin_client.post(
        change, supervisor_form(supervisor, may_pause="on", may_listen="on", phone="PJSIP/250")
    )
    assert response.status_code == 302, response.content
    supervisor.refresh_from_db()
    assert (supervisor.may_pause, supervisor.may_listen, supervisor.may_barge) == (
        True,
        True,
        False,
    )
    assert supervisor.phone == "PJSIP/250"
    listing = admin_client.get(reverse("admin:dashboard_supervisor_changelist")).content.decode()
    assert "PJSIP/250" in listing


@pytest.mark.parametrize(
    "phone", ["250", "PJSIP/250,qB", "PJSIP/250\r\nAction: Hangup", "PJSIP/ 2"]
)
def test_a_phone_the_pbx_could_not_ring_is_refused(admin_client, company, make_supervisor, phone):
    supervisor = make_supervisor(company, username="marta").supervisor
    change = reverse("admin:dashboard_supervisor_change", args=[supervisor.pk])
    response = admin_client.post(change, supervisor_form(supervisor, phone=phone))
    assert response.status_code == 200  # the form again, with the error
    supervisor.refresh_from_db()
    assert supervisor.phone == ""


def test_the_user_page_carries_the_permissions_too(admin_client, admin_user):
    page = admin_client.get(reverse("admin:auth_user_change", args=[admin_user.pk]))
    html = page.content.decode()
    assert 'name="supervisor-0-may_listen"' in html
    assert 'name="supervisor-0-phone"' in html
