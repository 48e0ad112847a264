"""How one supervisor action ended: what the page shows and the audit log keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard.models import AuditEntry
from dashboard.transcript import PbxAnswer
from pbx.live.presence import UserStatus

Outcome = AuditEntry.Outcome


@dataclass
class ActionResult:
    """How one action ended: what the page shows and the audit log keeps."""

    action: str
    extension: str
    name: str = ""
    outcome: str = Outcome.DONE
    status_code: int = 200
    message: str = ""
    detail: str = ""
    answers: list[PbxAnswer] = field(default_factory=list)
    status: UserStatus | None = None  # the agent's status after a pause or unpause

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.DONE

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "extension": self.extension,
            "name": self.name,
            "ok": self.ok,
            "outcome": self.outcome,
            "message": self.message,
            "pbx": [answer.as_dict() for answer in self.answers],
            "status": self.status,
        }
