"""The lines' earliest and latest time per block of 10,000 line numbers, instead of an index on time.

The blocks of the lines stored so far are filled from them, so the last line before a restart is
found as before; going back rebuilds the index on time. Stop the ingest services before migrating
(docs/deployment.md, "Upgrading"): lines an older ingest stores afterwards have no blocks.
"""

import django.db.models.deletion
from django.db import migrations, models


def lock_the_lines(apps, schema_editor):
    """PostgreSQL: no line is stored between the fill and the commit (it would have no block).
    SQLite's migration holds the database's write lock already."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("LOCK TABLE pbx_queuelogline IN SHARE MODE")


FILL = """
    INSERT INTO pbx_queuelogblocktimes (file_id, block, earliest, latest)
    SELECT file_id, (number - 1) / 10000, min("time"), max("time")
    FROM pbx_queuelogline GROUP BY file_id, (number - 1) / 10000
"""


class Migration(migrations.Migration):
    dependencies = [
        ("pbx", "0022_agent_spans_pending_without_constraint"),
    ]

    operations = [
        migrations.CreateModel(
            name="QueueLogBlockTimes",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "file",
                        "block",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "file",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="block_times",
                        to="pbx.queuelogfile",
                    ),
                ),
                ("block", models.BigIntegerField(help_text="(line number - 1) // 10,000")),
                ("earliest", models.DateTimeField()),
                ("latest", models.DateTimeField()),
            ],
            options={
                "verbose_name": "queue_log block times",
                "verbose_name_plural": "queue_log block times",
            },
        ),
        migrations.RunPython(lock_the_lines, migrations.RunPython.noop),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name="queuelogline",
            name="qlog_time_idx",
        ),
    ]
