# queue_log lines keyed by where they were read (file, line number) instead of a surrogate id and
# a unique (time, digest): ingest dedupes by the file's cursor, which is exact, and no longer pays
# for a hash and a conflict check on every line (docs/history.md, benchmarks/README.md).

import django.db.models.deletion
from django.db import migrations, models

ENTRY_EVENTS = (
    "ENTERQUEUE",
    "CONNECT",
    "COMPLETEAGENT",
    "COMPLETECALLER",
    "ABANDON",
    "EXITWITHTIMEOUT",
    "EXITWITHKEY",
    "EXITEMPTY",
    "TRANSFER",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
)
LEGACY_FINGERPRINT = "migrated"  # never a SHA-256: no file on disk is ever recognised as it


def lines_to_files(apps, schema_editor):
    """The rows keep their values; they belong to one pseudo-file, numbered in their old id order.

    Each queue_log cursor becomes a file that was read up to where the cursor is, so that reading
    such a file again (cursor lost, rotated copy) skips what was already stored.
    """
    QueueLogFile = apps.get_model("pbx", "QueueLogFile")
    IngestCursor = apps.get_model("pbx", "IngestCursor")
    db = schema_editor.connection.alias
    for cursor in IngestCursor.objects.using(db).filter(kind="queue_log").exclude(fingerprint=""):
        QueueLogFile.objects.using(db).create(
            fingerprint=cursor.fingerprint,
            fingerprint_length=cursor.fingerprint_length,
            lines=cursor.line_number,
            size=cursor.offset,
            derived_lines=cursor.line_number,
        )
    with schema_editor.connection.cursor() as sql:
        sql.execute("SELECT EXISTS (SELECT 1 FROM pbx_legacyqueuelogline)")
        if not sql.fetchone()[0]:
            return
    legacy = QueueLogFile.objects.using(db).create(
        fingerprint=LEGACY_FINGERPRINT, fingerprint_length=0
    )
    with schema_editor.connection.cursor() as sql:
        sql.execute(
            "INSERT INTO pbx_queuelogline "
            '(file_id, number, "time", callid, queue_name, agent, event, data) '
            'SELECT %s, row_number() OVER (ORDER BY id), "time", callid, queue_name, agent, event, '
            "data FROM pbx_legacyqueuelogline",
            [legacy.pk],
        )
        sql.execute("SELECT count(*) FROM pbx_queuelogline WHERE file_id = %s", [legacy.pk])
        count = sql.fetchone()[0]
    QueueLogFile.objects.using(db).filter(pk=legacy.pk).update(
        lines=count, derived_lines=count
    )


def files_to_lines(apps, schema_editor):
    """Back to ids and digests. The digest is that of the line written back from its fields."""
    with schema_editor.connection.cursor() as sql:
        if schema_editor.connection.vendor == "postgresql":
            digest = (
                "md5(extract(epoch FROM \"time\")::bigint || '|' || callid || '|' || queue_name "
                "|| '|' || agent || '|' || event || CASE WHEN data = '' THEN '' ELSE '|' || data "
                "END)::uuid"
            )
        else:  # SQLite has no md5(): a random digest keeps the rows apart, and unique
            digest = "lower(hex(randomblob(16)))"
        sql.execute(
            "INSERT INTO pbx_legacyqueuelogline "
            '("time", callid, queue_name, agent, event, data, digest) '
            f'SELECT "time", callid, queue_name, agent, event, data, {digest} '
            "FROM pbx_queuelogline ORDER BY file_id, number"
        )


class Migration(migrations.Migration):

    dependencies = [
        ("pbx", "0013_live_version"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="queuelogline", name="qlog_line_unique"),
        migrations.RemoveIndex(model_name="queuelogline", name="qlog_entry_key_idx"),
        migrations.RenameModel("QueueLogLine", "LegacyQueueLogLine"),
        migrations.CreateModel(
            name="QueueLogFile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("fingerprint", models.CharField(help_text="SHA-256 of the file's first bytes.", max_length=64)),
                ("fingerprint_length", models.PositiveIntegerField(help_text="How many bytes (1024 at most).")),
                ("lines", models.PositiveBigIntegerField(default=0, help_text="Lines read from the start.")),
                ("size", models.PositiveBigIntegerField(default=0, help_text="Bytes read from the start.")),
                ("derived_lines", models.PositiveBigIntegerField(default=0, help_text="Lines whose queue entries have been derived.")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name": "queue_log file",
                "verbose_name_plural": "queue_log files",
                "indexes": [models.Index(fields=["fingerprint"], name="qlog_file_fingerprint_idx")],
            },
        ),
        migrations.CreateModel(
            name="QueueLogLine",
            fields=[
                ("pk", models.CompositePrimaryKey("file", "number", blank=True, editable=False, primary_key=True, serialize=False)),
                ("file", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="lines_stored", to="pbx.queuelogfile")),
                ("number", models.BigIntegerField(help_text="Line number in the file, from 1.")),
                ("time", models.DateTimeField()),
                ("callid", models.CharField(max_length=64)),
                ("queue_name", models.CharField(max_length=128)),
                ("agent", models.CharField(max_length=128)),
                ("event", models.CharField(max_length=32)),
                ("data", models.CharField(blank=True, help_text="data1|data2|… as written.", max_length=1024)),
            ],
            options={
                "verbose_name": "queue_log line",
                "verbose_name_plural": "queue_log lines",
                "indexes": [models.Index(condition=models.Q(("event__in", ENTRY_EVENTS)), fields=["callid", "queue_name"], name="qlog_entry_key_idx")],
            },
        ),
        migrations.RunPython(lines_to_files, files_to_lines),
        migrations.DeleteModel("LegacyQueueLogLine"),
    ]
