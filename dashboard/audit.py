"""The audit log of supervisor actions: one row per action asked from the dashboard."""

from __future__ import annotations

import logging

from dashboard.action_result import ActionResult
from dashboard.models import AuditEntry
from pbx.live.writes import record_pbx_change
from pbx.models import Company

logger = logging.getLogger("swan.dashboard")


def audit_write(*, actor, company: Company, result: ActionResult) -> AuditEntry:
    """Writes who did what to whom, when, and what came of it (the PBX's answers included).

    The PBX may already have acted: a database error is retried, and if every try fails the
    entry is still in the log line below, so the action is never lost without a trace.
    """
    entry = AuditEntry(
        user=actor if actor.is_authenticated else None,
        username=actor.get_username(),
        company=company,
        company_name=company.name,
        action=result.action,
        extension=result.extension[:20],
        target_name=result.name,
        detail=result.detail[:255],
        outcome=result.outcome,
        status_code=result.status_code,
        message=result.message,
        pbx_answer="\n".join(answer.line() for answer in result.answers),
    )
    logger.info(
        "supervisor action user=%s company=%s action=%s extension=%r outcome=%s status=%s pbx=%r",
        entry.username,
        company.slug,
        entry.action,
        entry.extension,
        entry.outcome,
        entry.status_code,
        entry.pbx_answer,
    )
    record_pbx_change(entry.save, what=f"audit entry {entry.action} {entry.extension!r}")
    return entry
