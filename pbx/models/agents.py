"""Agent activity from queue_log: the lines about agents, and login and pause intervals derived."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from pbx.models.directory import DEFAULT_PBX, Company, PbxUser

# The queue_log events kept as agent lines: logins, pauses, rings not answered, and restarts.
SESSION_EVENTS = (
    "ADDMEMBER",
    "REMOVEMEMBER",
    "AGENTLOGIN",
    "AGENTLOGOFF",
    "AGENTCALLBACKLOGIN",
    "AGENTCALLBACKLOGOFF",
)
PAUSE_EVENTS = ("PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL")
RESTART_EVENT = "QUEUESTART"
RING_NO_ANSWER = "RINGNOANSWER"
AGENT_EVENTS = (*SESSION_EVENTS, *PAUSE_EVENTS, RESTART_EVENT, RING_NO_ANSWER)


class AgentEvent(models.Model):
    """A queue_log line about an agent (or a restart), with the user it names, derived from the
    stored lines once each (pbx/history/ingest/derive.py moves the file's mark with them).

    Its PBX is its line's: a restart (QUEUESTART) names no company, and only ends the spans of
    the agents on the PBX that restarted.
    """

    pbx = models.CharField(
        _("PBX"), max_length=64, default=DEFAULT_PBX, help_text=_("The PBX it was read from.")
    )
    time = models.DateTimeField()
    event = models.CharField(max_length=32)
    queue_name = models.CharField(max_length=128)
    agent = models.CharField(max_length=128, help_text=_("As queue_log names it."))
    # No database constraints and no index of their own: a deferred check of every agent line
    # at commit, and two more indexes to keep, cost more than storing it (benchmarks/README.md).
    # Deleting a user or company through Django nulls them; the user's rows are found by
    # agent_event_user_idx, a company's (only when it is deleted) by a scan.
    agent_user = models.ForeignKey(
        PbxUser,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="agent_events",
        db_constraint=False,
        db_index=False,
    )
    company = models.ForeignKey(
        Company,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="agent_events",
        db_constraint=False,
        db_index=False,
    )
    data = models.CharField(max_length=1024, blank=True)

    class Meta:
        verbose_name = _("agent event")
        verbose_name_plural = _("agent events")
        # Every read of agent lines names a user, except the restarts': a line of an agent who
        # is nobody in the directory is kept (the lines as read) but in no index, which would
        # cost more to keep than the line itself (benchmarks/README.md, stop 26).
        indexes = [
            models.Index(
                fields=["agent_user", "time"],
                name="agent_event_user_idx",
                condition=Q(agent_user__isnull=False),
            ),
            # Ring-no-answer counts per company and range; restarts by time.
            models.Index(
                fields=["event", "company", "time"],
                include=["agent_user", "queue_name"],
                name="agent_event_kind_idx",
                condition=Q(agent_user__isnull=False) | Q(event=RESTART_EVENT),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.agent} {self.event} {self.queue_name}"


class AgentSession(models.Model):
    """A span in which an agent was logged in to at least one queue; open while `ended_at` is null."""

    # Indexed by the two indexes below, which lead with them (and serve Django's cascades too).
    agent_user = models.ForeignKey(
        PbxUser, models.CASCADE, related_name="agent_sessions", db_index=False
    )
    company = models.ForeignKey(
        Company, models.CASCADE, related_name="agent_sessions", db_index=False
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("agent session")
        verbose_name_plural = _("agent sessions")
        indexes = [
            # Ingest reads an agent's spans open or ending after a moment (derivation anchors).
            models.Index(fields=["agent_user", "ended_at"], name="agent_session_user_idx"),
            # A range's spans are those ending after its start (or open): the scan starts there.
            models.Index(
                fields=["company", "ended_at"],
                include=["agent_user", "started_at"],
                name="agent_session_company_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_user_id} logged in {self.started_at} to {self.ended_at or '…'}"


class AgentPause(models.Model):
    """A span in which an agent was paused, with the reason it gave; open while `ended_at` is null."""

    # As AgentSession's: indexed by the indexes below.
    agent_user = models.ForeignKey(
        PbxUser, models.CASCADE, related_name="agent_pauses", db_index=False
    )
    company = models.ForeignKey(
        Company, models.CASCADE, related_name="agent_pauses", db_index=False
    )
    reason = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("agent pause")
        verbose_name_plural = _("agent pauses")
        indexes = [
            models.Index(fields=["agent_user", "ended_at"], name="agent_pause_user_idx"),
            models.Index(
                fields=["company", "ended_at"],
                include=["agent_user", "started_at", "reason"],
                name="agent_pause_company_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_user_id} paused ({self.reason}) {self.started_at} to {self.ended_at or '…'}"


class AgentSpansPending(models.Model):
    """An agent of a PBX whose login and pause spans are to be derived again from `since` on.

    A bulk read keeps each stretch's agent lines as it goes but derives the spans they change
    once for many stretches (pbx/history/ingest/derive.py): every stretch would otherwise derive
    again the same agents' spans from the same anchors. The row is written in the transaction
    that keeps the lines, so a crash before the spans are derived leaves it for the next run.

    The user is not a database constraint, and deleting one leaves its row: each span pass drops
    all the PBX's rows and skips users that no longer exist. A constraint failed a stretch whose
    user the admin deleted before its commit, and a cascade locked the row the pass locks last.
    """

    pbx = models.CharField(
        _("PBX"), max_length=64, default=DEFAULT_PBX, help_text=_("The PBX it was read from.")
    )
    agent_user = models.ForeignKey(
        PbxUser, models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    since = models.DateTimeField()

    class Meta:
        verbose_name = _("agent spans pending")
        verbose_name_plural = _("agent spans pending")
        constraints = [
            models.UniqueConstraint(fields=["pbx", "agent_user"], name="agent_spans_pending_unique")
        ]

    def __str__(self) -> str:
        return f"{self.agent_user_id} on {self.pbx} from {self.since}"
