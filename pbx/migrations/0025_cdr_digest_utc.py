"""CDR digests from the start as a UTC instant.

They were made from the start with its zone's offset, so the same call read from Master.csv in
UTC and from the CDR table in local time was stored twice. Every stored row gets the digest
ingest now gives it (pbx/history/ingest/cdr.py, cdr_digest: the function as it was here is
copied below, as migrations must be); rows that then share one are the same call read twice,
and only the first stored is kept.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC

from django.db import migrations, models

CHUNK = 5000
FIELDS = (
    "uniqueid",
    "src",
    "dst",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "disposition",
    "duration",
    "billsec",
    "sequence",
)


def _digest(calldate, values) -> uuid.UUID:
    key = "\x1f".join([calldate.astimezone(UTC).isoformat(), *(str(v) for v in values)])
    return uuid.UUID(bytes=hashlib.md5(key.encode("utf-8"), usedforsecurity=False).digest())


def recompute_digests(apps, schema_editor) -> None:
    record = apps.get_model("pbx", "CdrRecord")
    connection = schema_editor.connection
    alias = connection.alias
    table = connection.ops.quote_name(record._meta.db_table)
    field = record._meta.get_field("digest")
    rows = record.objects.using(alias).order_by("pk")
    last = 0
    while True:
        chunk = list(rows.filter(pk__gt=last).values_list("pk", "calldate", *FIELDS)[:CHUNK])
        if not chunk:
            break
        last = chunk[-1][0]
        updates = [
            (field.get_db_prep_value(_digest(calldate, values), connection), pk)
            for pk, calldate, *values in chunk
        ]
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET digest = %s WHERE id = %s", updates)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
            f"(PARTITION BY pbx, digest ORDER BY id) AS n FROM {table}) AS numbered WHERE n > 1)"
        )


class Migration(migrations.Migration):
    dependencies = [("pbx", "0024_pbx_secret_env_prefix")]

    operations = [
        # Two stored copies of one call share a digest until the second is deleted.
        migrations.RemoveConstraint(model_name="cdrrecord", name="cdr_digest_unique"),
        # Backwards the digests stay as they are: still one per call, and unique.
        migrations.RunPython(recompute_digests, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="cdrrecord",
            constraint=models.UniqueConstraint(fields=["pbx", "digest"], name="cdr_digest_unique"),
        ),
    ]
