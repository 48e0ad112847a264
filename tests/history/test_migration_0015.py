"""Migration 0015: agent activity is derived again from the stored lines by the next run."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from pbx.models import AgentEvent, AgentSession
from pbx.models.history import QueueLogFile
from tests.history.migrating import migrate

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")
BEFORE = [("pbx", "0014_queue_log_lines_by_position")]
AFTER = [("pbx", "0015_agent_events_from_stored_lines")]
LINES = [
    (1700000000, "MANAGER", "q1", "PJSIP/201", "ADDMEMBER", ""),
    (1700000010, "1.1", "q1", "NONE", "ENTERQUEUE", "|600|1"),
    (1700000600, "MANAGER", "q1", "PJSIP/201", "REMOVEMEMBER", ""),
]


@pytest.mark.django_db(transaction=True)
def test_agent_activity_of_stored_lines_is_derived_again_once(tmp_path):
    old = migrate(BEFORE)
    company = old.get_model("pbx", "Company").objects.create(slug="acme", name="ACME")
    old.get_model("pbx", "Queue").objects.create(company=company, name="q1")
    user = old.get_model("pbx", "PbxUser").objects.create(
        company=company, extension="201", name="Ana"
    )
    logfile = old.get_model("pbx", "QueueLogFile").objects.create(
        fingerprint="f" * 64, fingerprint_length=1024, lines=3, derived_lines=3
    )
    OldLine = old.get_model("pbx", "QueueLogLine")
    OldEvent = old.get_model("pbx", "AgentEvent")
    for number, (stamp, callid, queue, agent, event, data) in enumerate(LINES, start=1):
        moment = datetime.fromtimestamp(stamp, UTC)
        OldLine.objects.create(
            file=logfile,
            number=number,
            time=moment,
            callid=callid,
            queue_name=queue,
            agent=agent,
            event=event,
            data=data,
        )
        if event != "ENTERQUEUE":  # as the old ingest kept them, with the line's digest
            OldEvent.objects.create(
                time=moment,
                digest=uuid.UUID(int=number),
                event=event,
                queue_name=queue,
                agent=agent,
                agent_user_id=user.pk,
                company=company,
            )

    new = migrate(AFTER)

    assert not new.get_model("pbx", "AgentEvent").objects.exists()
    assert new.get_model("pbx", "QueueLogFile").objects.get().derived_lines == 0
    migrate()  # the ingest of today reads the schema of today
    path = tmp_path / "queue_log"
    path.write_text("")  # any run derives what is pending first
    call_command("ingest_queue_log", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    assert list(AgentEvent.objects.order_by("time").values_list("event", "agent_user_id")) == [
        ("ADDMEMBER", user.pk),
        ("REMOVEMEMBER", user.pk),
    ]
    assert list(AgentSession.objects.values_list("started_at", "ended_at")) == [
        (datetime.fromtimestamp(1700000000, UTC), datetime.fromtimestamp(1700000600, UTC))
    ]
    assert QueueLogFile.objects.get().derived_lines == 3

    back = migrate(BEFORE)
    assert not back.get_model("pbx", "AgentEvent").objects.exists()
