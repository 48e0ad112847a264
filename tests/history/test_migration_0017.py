"""Migration 0017: the history read so far is the settings' PBX's; keys include the PBX from then on."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from tests.history.migrating import migrate

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")
BEFORE = [("pbx", "0016_pbxes")]
AFTER = [("pbx", "0017_history_per_pbx")]
MOMENT = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_the_history_so_far_is_the_default_pbxs_and_a_re_read_adds_nothing(tmp_path):
    path = tmp_path / "queue_log"
    path.write_text("1700000000|1.1|q1|NONE|ENTERQUEUE||600|1\n")
    old = migrate(BEFORE)
    company = old.get_model("pbx", "Company").objects.create(slug="acme", name="ACME")
    logfile = old.get_model("pbx", "QueueLogFile").objects.create(
        fingerprint="f" * 64, fingerprint_length=1024, lines=1, derived_lines=1
    )
    old.get_model("pbx", "QueueEntry").objects.create(
        callid="1.1", queue_name="q1", company=company, entered_at=MOMENT, outcome="waiting"
    )
    old.get_model("pbx", "CdrRecord").objects.create(
        calldate=MOMENT, uniqueid="1.1", digest=uuid.UUID(int=1), company=company
    )
    old.get_model("pbx", "AgentEvent").objects.create(
        time=MOMENT, event="QUEUESTART", queue_name="NONE", agent="NONE"
    )
    old.get_model("pbx", "IngestCursor").objects.create(
        source=str(path.resolve()), kind="queue_log", offset=path.stat().st_size, line_number=1
    )

    new = migrate(AFTER)

    for name in ("QueueLogFile", "QueueEntry", "CdrRecord", "AgentEvent", "IngestCursor"):
        assert set(new.get_model("pbx", name).objects.values_list("pbx", flat=True)) == {
            "default"
        }, name
    assert new.get_model("pbx", "QueueLogFile").objects.get().pk == logfile.pk
    migrate()  # the ingest of today reads the schema of today
    # The cursor kept is the default PBX's: the file is not read again.
    out = io.StringIO()
    call_command("ingest_queue_log", str(path), stdout=out, stderr=io.StringIO())
    assert "0 lines read, 0 new" in out.getvalue()
    # The same row of another PBX is another row; of the same PBX, the same row.
    # (migrate() ran 0025 too, which made the stored row's digest again from its values.)
    Cdr = new.get_model("pbx", "CdrRecord")
    digest = Cdr.objects.get(pbx="default").digest
    Cdr.objects.create(pbx="pbx-b", calldate=MOMENT, uniqueid="1.1", digest=digest)
    with pytest.raises(IntegrityError), transaction.atomic():
        Cdr.objects.create(pbx="default", calldate=MOMENT, uniqueid="1.1", digest=digest)
    Cdr.objects.filter(pbx="pbx-b").delete()  # going back needs one row per digest

    back = migrate(BEFORE)
    assert back.get_model("pbx", "CdrRecord").objects.get().uniqueid == "1.1"
    assert back.get_model("pbx", "QueueEntry").objects.get().callid == "1.1"
