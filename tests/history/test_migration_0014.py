"""Migration 0014: queue_log lines keep their values under (file, number); cursors become files."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from pbx.models.history import IngestCursor
from tests.history.migrating import migrate

pytestmark = pytest.mark.usefixtures("latest_schema_afterwards")
BEFORE = [("pbx", "0013_live_version")]
AFTER = [("pbx", "0014_queue_log_lines_by_position")]
LINES = [
    "1700000000|1.1|q1|NONE|ENTERQUEUE||600|1",
    "1700000030|1.1|q1|NONE|ABANDON|1|1|30",
]


@pytest.mark.django_db(transaction=True)
def test_lines_and_cursors_survive_the_migration_and_the_file_is_not_read_twice(tmp_path):
    path = tmp_path / "queue_log"
    path.write_text("".join(line + "\n" for line in LINES))
    content = path.read_bytes()
    old = migrate(BEFORE)
    OldLine = old.get_model("pbx", "QueueLogLine")
    for n, line in enumerate(LINES):
        stamp, callid, queue, agent, event, data = line.split("|", 5)
        OldLine.objects.create(
            time=datetime.fromtimestamp(int(stamp), UTC),
            callid=callid,
            queue_name=queue,
            agent=agent,
            event=event,
            data=data,
            digest=uuid.UUID(int=n + 1),
        )
    old.get_model("pbx", "IngestCursor").objects.create(
        source=str(path.resolve()),
        kind="queue_log",
        inode=path.stat().st_ino,
        offset=len(content),
        line_number=2,
        fingerprint=hashlib.sha256(content).hexdigest(),
        fingerprint_length=len(content),
    )

    new = migrate(AFTER)

    NewLine = new.get_model("pbx", "QueueLogLine")
    stored = list(NewLine.objects.order_by("number").values_list("number", "event", "data", "time"))
    assert stored == [
        (1, "ENTERQUEUE", "|600|1", datetime.fromtimestamp(1700000000, UTC)),
        (2, "ABANDON", "1|1|30", datetime.fromtimestamp(1700000030, UTC)),
    ]
    legacy = NewLine.objects.first().file
    assert (legacy.fingerprint, legacy.lines, legacy.derived_lines) == ("migrated", 2, 2)
    read = new.get_model("pbx", "QueueLogFile").objects.exclude(pk=legacy.pk).get()
    assert (read.lines, read.size, read.fingerprint_length) == (2, len(content), len(content))
    migrate()  # the ingest of today reads the schema of today

    IngestCursor.objects.all().delete()  # the file read again from the start: nothing new
    out = io.StringIO()
    call_command("ingest_queue_log", str(path), stdout=out, stderr=io.StringIO())
    assert "2 lines read, 0 new, 2 already stored" in out.getvalue()

    back = migrate(BEFORE)
    rows = back.get_model("pbx", "QueueLogLine").objects.order_by("id")
    assert [row.event for row in rows] == ["ENTERQUEUE", "ABANDON"]
    assert len({row.digest for row in rows}) == 2
    migrate()
