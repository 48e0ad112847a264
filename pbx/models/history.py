"""Call history from the PBX's files: queue_log lines, queue entries derived from them, CDR rows."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pbx.models.directory import DEFAULT_PBX, Company, PbxUser, Queue


def pbx_field() -> models.CharField:
    """The PBX a history row comes from: uniqueids and callids repeat across PBXes (and restart
    after a reboot), so every history key includes it. `default` is the settings' PBX."""
    return models.CharField(
        _("PBX"), max_length=64, default=DEFAULT_PBX, help_text=_("The PBX it was read from.")
    )


# The queue_log events that make or close a queue entry; the partial index below covers them only.
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


class QueueLogFile(models.Model):
    """One queue_log file as ingest knows it, whatever it is called now: its first bytes and how far it was read.

    A file renamed by logrotate, copied, or read again after its cursor was lost is recognised by
    its first KiB, and its lines already read are not stored again. A file belongs to one PBX's
    source: the same bytes read for two PBXes are two files (and their lines two PBXes' lines).
    """

    pbx = pbx_field()
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of the file's first bytes."))
    fingerprint_length = models.PositiveIntegerField(help_text=_("How many bytes (1024 at most)."))
    lines = models.PositiveBigIntegerField(default=0, help_text=_("Lines read from the start."))
    size = models.PositiveBigIntegerField(default=0, help_text=_("Bytes read from the start."))
    derived_lines = models.PositiveBigIntegerField(
        default=0, help_text=_("Lines whose entries and agent activity have been derived.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("queue_log file")
        verbose_name_plural = _("queue_log files")
        indexes = [
            models.Index(fields=["pbx", "fingerprint"], name="qlog_file_fingerprint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint[:12]}… ({self.lines} lines)"


class QueueLogLine(models.Model):
    """One queue_log line as Asterisk wrote it, kept so that entries can be derived again.

    Its key is where it was read: the file and the line number in it. Ingest stores each line of a
    file once, in order, and the cursor moves in the same transaction. Its PBX is its file's: what
    is derived from lines only ever combines lines of one PBX's files.
    """

    pk = models.CompositePrimaryKey("file", "number")
    # No database constraint or index of its own: the key's index starts with it, and a deferred
    # foreign-key check on every line cost more at commit than storing the line (benchmarks/).
    file = models.ForeignKey(
        QueueLogFile,
        models.CASCADE,
        related_name="lines_stored",
        db_constraint=False,
        db_index=False,
    )
    number = models.BigIntegerField(help_text=_("Line number in the file, from 1."))
    time = models.DateTimeField()
    callid = models.CharField(max_length=64)
    queue_name = models.CharField(max_length=128)
    agent = models.CharField(max_length=128)
    event = models.CharField(max_length=32)
    data = models.CharField(max_length=1024, blank=True, help_text=_("data1|data2|… as written."))

    class Meta:
        verbose_name = _("queue_log line")
        verbose_name_plural = _("queue_log lines")
        indexes = [
            models.Index(
                fields=["callid", "queue_name"],
                name="qlog_entry_key_idx",
                condition=Q(event__in=ENTRY_EVENTS),
            ),
            # No index on time: QueueLogBlockTimes finds the last line before a moment.
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.callid} {self.queue_name} {self.event}"


LINES_PER_BLOCK = 10_000


class QueueLogBlockTimes(models.Model):
    """The earliest and latest time of a file's stored lines numbered in one block of
    `LINES_PER_BLOCK` (block 0: lines 1 to 10,000), written with the lines.

    The last line before a moment (a restart's last sign of life) is found from these rows and
    the lines of the few blocks whose times straddle it (pbx/history/ingest/lines.py). An index
    on the lines' time did the same and cost a third of storing them (benchmarks/README.md).
    """

    pk = models.CompositePrimaryKey("file", "block")
    # Deleted with its file, as the lines are (no constraint, no index but the key: theirs too).
    file = models.ForeignKey(
        QueueLogFile,
        models.CASCADE,
        related_name="block_times",
        db_constraint=False,
        db_index=False,
    )
    block = models.BigIntegerField(help_text=_("(line number - 1) // 10,000"))
    earliest = models.DateTimeField()
    latest = models.DateTimeField()

    class Meta:
        verbose_name = _("queue_log block times")
        verbose_name_plural = _("queue_log block times")

    def __str__(self) -> str:
        return f"file {self.file_id} block {self.block}: {self.earliest} to {self.latest}"


class QueueEntry(models.Model):
    """One caller's stay in one queue, derived at ingest from its queue_log lines (of one PBX)."""

    class Outcome(models.TextChoices):
        WAITING = "waiting", _("no exit line yet")
        ANSWERED = "answered", _("answered")
        TRANSFERRED = "transferred", _("answered, then transferred")
        ABANDONED = "abandoned", _("caller hung up")
        TIMEOUT = "timeout", _("timeout")
        EMPTY = "empty", _("queue empty")
        KEY_PRESS = "key_press", _("key press")

    pbx = pbx_field()
    callid = models.CharField(max_length=64)
    queue_name = models.CharField(max_length=128)
    queue = models.ForeignKey(Queue, models.SET_NULL, null=True, blank=True, related_name="entries")
    company = models.ForeignKey(
        Company, models.SET_NULL, null=True, blank=True, related_name="queue_entries"
    )
    caller = models.CharField(max_length=80, blank=True)
    entered_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    wait_seconds = models.PositiveIntegerField(default=0)
    talk_seconds = models.PositiveIntegerField(default=0)
    agent = models.CharField(max_length=128, blank=True, help_text=_("As queue_log names it."))
    # Indexed by qentry_agent_day_idx, which leads with it.
    agent_user = models.ForeignKey(
        PbxUser,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="answered_entries",
        db_index=False,
    )

    class Meta:
        verbose_name = _("queue entry")
        verbose_name_plural = _("queue entries")
        constraints = [
            # Also the index of the derivation's "these calls' entries" (pbx, callid = ANY).
            models.UniqueConstraint(
                fields=["pbx", "callid", "queue_name", "entered_at"], name="queue_entry_unique"
            )
        ]
        indexes = [
            # The aggregate columns ride in the index: today's figures come from an index-only
            # scan on PostgreSQL (SQLite ignores INCLUDE and uses the key columns alone). A queue
            # name is a queue on one PBX: every read by name names the PBX too.
            models.Index(
                fields=["pbx", "queue_name", "entered_at"],
                include=["outcome", "wait_seconds", "talk_seconds"],
                name="qentry_queue_day_idx",
            ),
            models.Index(fields=["agent_user", "entered_at"], name="qentry_agent_day_idx"),
            # The waits before abandoning (reports): a tenth of the entries, index-only.
            models.Index(
                fields=["pbx", "queue_name", "entered_at"],
                include=["wait_seconds"],
                condition=Q(outcome="abandoned"),
                name="qentry_abandoned_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.callid} in {self.queue_name}: {self.outcome}"


class CdrRecord(models.Model):
    """One CDR row (Master.csv or the `cdr` table) of one PBX; one call often has several.

    Uniqueids, linkedids and device names are a PBX's own: every read by them names the PBX.
    """

    pbx = pbx_field()
    calldate = models.DateTimeField(help_text=_("Start of the call."))
    answer = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    clid = models.CharField(max_length=160, blank=True)
    src = models.CharField(max_length=80, blank=True)
    dst = models.CharField(max_length=80, blank=True)
    dcontext = models.CharField(max_length=80, blank=True)
    channel = models.CharField(max_length=160, blank=True)
    dstchannel = models.CharField(max_length=160, blank=True)
    channel_device = models.CharField(max_length=160, blank=True)
    dstchannel_device = models.CharField(max_length=160, blank=True)
    lastapp = models.CharField(max_length=80, blank=True)
    lastdata = models.CharField(max_length=255, blank=True)
    duration = models.PositiveIntegerField(default=0)
    billsec = models.PositiveIntegerField(default=0)
    disposition = models.CharField(max_length=45, blank=True)
    amaflags = models.CharField(max_length=20, blank=True)
    accountcode = models.CharField(max_length=80, blank=True)
    uniqueid = models.CharField(max_length=64, blank=True)
    linkedid = models.CharField(max_length=64, blank=True)
    sequence = models.CharField(max_length=20, blank=True)
    userfield = models.CharField(max_length=255, blank=True)
    recordingfile = models.CharField(max_length=255, blank=True)
    company = models.ForeignKey(
        Company, models.SET_NULL, null=True, blank=True, related_name="cdr_records"
    )
    digest = models.UUIDField(
        help_text=_(
            "Hash of the row: re-reading adds nothing (per PBX: the same row of two PBXes is two)."
        )
    )

    class Meta:
        verbose_name = _("CDR record")
        verbose_name_plural = _("CDR records")
        constraints = [models.UniqueConstraint(fields=["pbx", "digest"], name="cdr_digest_unique")]
        indexes = [
            models.Index(fields=["calldate"], name="cdr_calldate_idx"),
            models.Index(fields=["pbx", "uniqueid"], name="cdr_uniqueid_idx"),
            models.Index(fields=["pbx", "linkedid"], name="cdr_linkedid_idx"),
            models.Index(fields=["pbx", "channel_device", "calldate"], name="cdr_chan_dev_idx"),
            models.Index(
                fields=["pbx", "dstchannel_device", "calldate"], name="cdr_dstchan_dev_idx"
            ),
            models.Index(fields=["pbx", "src", "calldate"], name="cdr_src_idx"),
            models.Index(fields=["pbx", "dst", "calldate"], name="cdr_dst_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.calldate:%Y-%m-%d %H:%M:%S} {self.src} → {self.dst} {self.disposition}"

    @property
    def call_id(self) -> str:
        """The call this row belongs to: its linkedid, or its uniqueid in 18-column files."""
        return self.linkedid or self.uniqueid


class IngestCursor(models.Model):
    """How far an ingest source of one PBX has been read: a file's inode and offset, or a table's
    mark.

    Keyed by (PBX, source), not by the path alone: ingests of two PBXes run in two containers
    may each mount their PBX's log at the same path (/var/log/asterisk/queue_log), and one
    cursor for both would skip one PBX's lines as read.
    """

    pbx = pbx_field()
    source = models.CharField(max_length=512)
    kind = models.CharField(max_length=16)
    inode = models.BigIntegerField(null=True, blank=True)
    offset = models.BigIntegerField(default=0)
    line_number = models.BigIntegerField(default=0)
    fingerprint = models.CharField(
        max_length=64, blank=True, help_text=_("Hash of the file's first bytes: copytruncate.")
    )
    fingerprint_length = models.PositiveIntegerField(default=0)
    mark = models.CharField(
        max_length=64, blank=True, help_text=_("A table's last id or start time read.")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("ingest cursor")
        verbose_name_plural = _("ingest cursors")
        constraints = [
            models.UniqueConstraint(fields=["pbx", "source"], name="ingest_cursor_unique")
        ]

    def __str__(self) -> str:
        return f"{self.pbx}: {self.source} @ {self.offset}"
