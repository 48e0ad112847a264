"""Live state as the PBX listener last saw it: devices, presence, queue members and callers, channels."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from pbx.models.directory import DEFAULT_PBX, PbxUser, Queue


class DeviceState(models.Model):
    """Live state of a PBX device (`PJSIP/200`), as the listener last saw it."""

    class State(models.TextChoices):
        UNKNOWN = "UNKNOWN"
        NOT_INUSE = "NOT_INUSE"
        INUSE = "INUSE"
        BUSY = "BUSY"
        INVALID = "INVALID"
        UNAVAILABLE = "UNAVAILABLE"
        RINGING = "RINGING"
        RINGINUSE = "RINGINUSE"
        ONHOLD = "ONHOLD"

    pbx = models.CharField(
        max_length=64, default=DEFAULT_PBX, help_text=_("The PBX that reports it.")
    )
    interface = models.CharField(max_length=128)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    changed_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(help_text=_("When the PBX last confirmed this state."))

    class Meta:
        verbose_name = _("device state")
        verbose_name_plural = _("device states")
        constraints = [
            models.UniqueConstraint(fields=["pbx", "interface"], name="live_device_unique")
        ]

    def __str__(self) -> str:
        return f"{self.interface}: {self.state}"


class UserPresence(models.Model):
    """Live per-user flags the PBX reports: do-not-disturb and queue pause, with reasons."""

    user = models.OneToOneField(PbxUser, models.CASCADE, related_name="presence")
    dnd = models.BooleanField(default=False)
    dnd_reason = models.CharField(max_length=120, blank=True)
    paused = models.BooleanField(default=False)
    pause_reason = models.CharField(max_length=120, blank=True)
    changed_at = models.DateTimeField()
    confirmed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("user presence")
        verbose_name_plural = _("user presences")

    def __str__(self) -> str:
        return f"{self.user}: dnd={self.dnd} paused={self.paused}"


class QueueMemberState(models.Model):
    """A member logged in to a queue now (`QueueStatus` row / `QueueMember*` events)."""

    pbx = models.CharField(
        max_length=64, default=DEFAULT_PBX, help_text=_("The PBX that reports it.")
    )
    queue_name = models.CharField(max_length=128)
    queue = models.ForeignKey(
        Queue, models.CASCADE, null=True, blank=True, related_name="live_members"
    )
    interface = models.CharField(max_length=128)
    member_name = models.CharField(max_length=128, blank=True)
    state_interface = models.CharField(max_length=128, blank=True)
    user = models.ForeignKey(
        PbxUser, models.SET_NULL, null=True, blank=True, related_name="live_memberships"
    )
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=120, blank=True)
    in_call = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField(default=0, help_text=_("AST_DEVICE_* number."))
    calls_taken = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField()
    confirmed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("queue member (live)")
        verbose_name_plural = _("queue members (live)")
        constraints = [
            models.UniqueConstraint(
                fields=["pbx", "queue_name", "interface"], name="live_member_unique"
            )
        ]
        indexes = [models.Index(fields=["user"], name="live_member_user_idx")]

    def __str__(self) -> str:
        return f"{self.interface} in {self.queue_name}"


class QueueCallerState(models.Model):
    """A caller waiting in a queue now (`QueueEntry` row / `QueueCaller*` events)."""

    pbx = models.CharField(
        max_length=64, default=DEFAULT_PBX, help_text=_("The PBX that reports it.")
    )
    queue_name = models.CharField(max_length=128)
    queue = models.ForeignKey(
        Queue, models.CASCADE, null=True, blank=True, related_name="live_callers"
    )
    unique_id = models.CharField(max_length=64)
    channel = models.CharField(max_length=128, blank=True)
    caller_id_num = models.CharField(max_length=64, blank=True)
    position = models.PositiveIntegerField(default=0)
    entered_at = models.DateTimeField()
    confirmed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("queue caller (live)")
        verbose_name_plural = _("queue callers (live)")
        constraints = [
            models.UniqueConstraint(
                fields=["pbx", "queue_name", "unique_id"], name="live_caller_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.caller_id_num or self.unique_id} in {self.queue_name}"


class LiveChannel(models.Model):
    """A channel up on the PBX now (`CoreShowChannel` row / `Newchannel`…`Hangup` events)."""

    pbx = models.CharField(
        max_length=64, default=DEFAULT_PBX, help_text=_("The PBX that reports it.")
    )
    unique_id = models.CharField(max_length=64)
    linked_id = models.CharField(max_length=64, blank=True, db_index=True)
    channel = models.CharField(max_length=128)
    interface = models.CharField(
        max_length=128, db_index=True, help_text=_("The device: PJSIP/200 for PJSIP/200-0000001a.")
    )
    state = models.CharField(max_length=32, blank=True)
    caller_id_num = models.CharField(max_length=64, blank=True)
    connected_line_num = models.CharField(max_length=64, blank=True)
    exten = models.CharField(max_length=64, blank=True)
    context = models.CharField(max_length=80, blank=True)
    started_at = models.DateTimeField()
    confirmed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("live channel")
        verbose_name_plural = _("live channels")
        constraints = [
            models.UniqueConstraint(fields=["pbx", "unique_id"], name="live_channel_unique")
        ]

    def __str__(self) -> str:
        return self.channel


class ListenerLease(models.Model):
    """Which listener is active for a PBX, and what it last saw of the connection.

    A listener holds the lease while it renews it; a standby takes over once it expires.
    Works the same on PostgreSQL and SQLite (no advisory locks needed).
    """

    name = models.CharField(max_length=64, unique=True, help_text=_("The PBX's name."))
    holder = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField()
    connected = models.BooleanField(default=False)
    connection_changed_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_resync_at = models.DateTimeField(null=True, blank=True)
    events_processed = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("listener lease")
        verbose_name_plural = _("listener leases")

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or '-'}"


class LiveVersion(models.Model):
    """One row: the number of the latest change of what the web workers' read caches hold.

    Writers bump it at the end of their transaction (pbx/live/version.py), so changes are
    numbered in commit order: the row's lock makes a second writer wait for the first's commit.
    """

    version = models.BigIntegerField(default=0)
    reset = models.BigIntegerField(
        default=0, help_text=_("The latest change that invalidated everything (the directory).")
    )

    class Meta:
        verbose_name = _("live version")
        verbose_name_plural = _("live versions")

    def __str__(self) -> str:
        return f"v{self.version} (reset v{self.reset})"


class LiveChange(models.Model):
    """What one numbered change touched, so that a read cache drops only that (docs/api.md)."""

    version = models.BigIntegerField(primary_key=True)
    changed = models.TextField(help_text=_("JSON: users, devices, queues, history."))

    class Meta:
        verbose_name = _("live change")
        verbose_name_plural = _("live changes")

    def __str__(self) -> str:
        return f"v{self.version}"
