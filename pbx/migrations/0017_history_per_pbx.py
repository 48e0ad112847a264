# History keyed per PBX (issue 15, item 5): uniqueids and callids repeat across PBXes.
# Existing rows were read from the settings' PBX, `default` (the column's default).
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pbx', '0016_pbxes'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='queueentry',
            name='queue_entry_unique',
        ),
        migrations.RemoveIndex(
            model_name='cdrrecord',
            name='cdr_uniqueid_idx',
        ),
        migrations.RemoveIndex(
            model_name='cdrrecord',
            name='cdr_linkedid_idx',
        ),
        migrations.RemoveIndex(
            model_name='cdrrecord',
            name='cdr_chan_dev_idx',
        ),
        migrations.RemoveIndex(
            model_name='cdrrecord',
            name='cdr_dstchan_dev_idx',
        ),
        migrations.RemoveIndex(
            model_name='cdrrecord',
            name='cdr_src_idx',
        ),
        migrations.RemoveIndex(
            model_name='cdrrecord',
            name='cdr_dst_idx',
        ),
        migrations.RemoveIndex(
            model_name='queueentry',
            name='qentry_queue_day_idx',
        ),
        migrations.RemoveIndex(
            model_name='queueentry',
            name='qentry_abandoned_idx',
        ),
        migrations.RemoveIndex(
            model_name='queuelogfile',
            name='qlog_file_fingerprint_idx',
        ),
        migrations.AddField(
            model_name='agentevent',
            name='pbx',
            field=models.CharField(default='default', help_text='The PBX it was read from.', max_length=64, verbose_name='PBX'),
        ),
        migrations.AddField(
            model_name='cdrrecord',
            name='pbx',
            field=models.CharField(default='default', help_text='The PBX it was read from.', max_length=64, verbose_name='PBX'),
        ),
        migrations.AddField(
            model_name='ingestcursor',
            name='pbx',
            field=models.CharField(default='default', help_text='The PBX it was read from.', max_length=64, verbose_name='PBX'),
        ),
        migrations.AddField(
            model_name='queueentry',
            name='pbx',
            field=models.CharField(default='default', help_text='The PBX it was read from.', max_length=64, verbose_name='PBX'),
        ),
        migrations.AddField(
            model_name='queuelogfile',
            name='pbx',
            field=models.CharField(default='default', help_text='The PBX it was read from.', max_length=64, verbose_name='PBX'),
        ),
        migrations.AlterField(
            model_name='cdrrecord',
            name='digest',
            field=models.UUIDField(help_text='Hash of the row: re-reading adds nothing (per PBX: the same row of two PBXes is two).'),
        ),
        migrations.AlterField(
            model_name='ingestcursor',
            name='source',
            field=models.CharField(max_length=512),
        ),
        migrations.AddIndex(
            model_name='cdrrecord',
            index=models.Index(fields=['pbx', 'uniqueid'], name='cdr_uniqueid_idx'),
        ),
        migrations.AddIndex(
            model_name='cdrrecord',
            index=models.Index(fields=['pbx', 'linkedid'], name='cdr_linkedid_idx'),
        ),
        migrations.AddIndex(
            model_name='cdrrecord',
            index=models.Index(fields=['pbx', 'channel_device', 'calldate'], name='cdr_chan_dev_idx'),
        ),
        migrations.AddIndex(
            model_name='cdrrecord',
            index=models.Index(fields=['pbx', 'dstchannel_device', 'calldate'], name='cdr_dstchan_dev_idx'),
        ),
        migrations.AddIndex(
            model_name='cdrrecord',
            index=models.Index(fields=['pbx', 'src', 'calldate'], name='cdr_src_idx'),
        ),
        migrations.AddIndex(
            model_name='cdrrecord',
            index=models.Index(fields=['pbx', 'dst', 'calldate'], name='cdr_dst_idx'),
        ),
        migrations.AddIndex(
            model_name='queueentry',
            index=models.Index(fields=['pbx', 'queue_name', 'entered_at'], include=('outcome', 'wait_seconds', 'talk_seconds'), name='qentry_queue_day_idx'),
        ),
        migrations.AddIndex(
            model_name='queueentry',
            index=models.Index(condition=models.Q(('outcome', 'abandoned')), fields=['pbx', 'queue_name', 'entered_at'], include=('wait_seconds',), name='qentry_abandoned_idx'),
        ),
        migrations.AddIndex(
            model_name='queuelogfile',
            index=models.Index(fields=['pbx', 'fingerprint'], name='qlog_file_fingerprint_idx'),
        ),
        migrations.AddConstraint(
            model_name='cdrrecord',
            constraint=models.UniqueConstraint(fields=('pbx', 'digest'), name='cdr_digest_unique'),
        ),
        migrations.AddConstraint(
            model_name='ingestcursor',
            constraint=models.UniqueConstraint(fields=('pbx', 'source'), name='ingest_cursor_unique'),
        ),
        migrations.AddConstraint(
            model_name='queueentry',
            constraint=models.UniqueConstraint(fields=('pbx', 'callid', 'queue_name', 'entered_at'), name='queue_entry_unique'),
        ),
    ]
