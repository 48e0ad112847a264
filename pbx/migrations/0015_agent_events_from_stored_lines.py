# Agent lines (AgentEvent) are derived from the stored queue_log lines beside the queue entries,
# once per stretch of a file's lines, instead of being parsed again from every batch's text and
# deduplicated by a digest of the line and a unique (time, digest) (docs/history.md,
# benchmarks/README.md). The stored lines hold everything: the agent activity already derived is
# dropped and every file is marked underived, so the next ingest run derives entries, agent lines
# and spans again from the lines (a stretch derived per batch by the old code and still pending
# would otherwise be kept twice). The lines get an index on time again: the last line before a
# restart is looked up by it (0014 dropped the one that led with time). The agent lines' user and
# company keep no database constraint or index of their own: checking each at commit and keeping
# two more indexes cost more than storing the line.

import django.db.models.deletion
from django.db import migrations, models


def derive_again(apps, schema_editor):
    db = schema_editor.connection.alias
    for name in ("AgentEvent", "AgentSession", "AgentPause"):
        apps.get_model("pbx", name).objects.using(db).all().delete()
    apps.get_model("pbx", "QueueLogFile").objects.using(db).update(derived_lines=0)


def forget_agent_activity(apps, schema_editor):
    """Back: the old code cannot derive agent lines from stored ones, nor give them a digest."""
    db = schema_editor.connection.alias
    for name in ("AgentEvent", "AgentSession", "AgentPause"):
        apps.get_model("pbx", name).objects.using(db).all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("pbx", "0014_queue_log_lines_by_position"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="agentevent",
            name="agent_event_unique",
        ),
        migrations.RemoveField(
            model_name="agentevent",
            name="digest",
        ),
        migrations.AlterField(
            model_name="agentevent",
            name="agent_user",
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="agent_events", to="pbx.pbxuser"),
        ),
        migrations.AlterField(
            model_name="agentevent",
            name="company",
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="agent_events", to="pbx.company"),
        ),
        migrations.AddIndex(
            model_name="queuelogline",
            index=models.Index(fields=["time"], name="qlog_time_idx"),
        ),
        migrations.AlterField(
            model_name="queuelogfile",
            name="derived_lines",
            field=models.PositiveBigIntegerField(default=0, help_text="Lines whose entries and agent activity have been derived."),
        ),
        migrations.RunPython(derive_again, forget_agent_activity),
    ]
