"""Supervisor actions from the dashboard: who may do which, and doing it through the PBX gateway.

Each action reuses the service the REST API uses for the same change (pause and unpause are
userStatus POST's `user_status_set`, logging out is user-unregister's `user_unregister`, logging
in joins the terminal's queues as terminal-register does), run on a `Transcript` of the gateway
so that the page and the audit log can show what the PBX answered.
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dashboard.action_result import ActionResult, Outcome
from dashboard.audit import audit_write
from dashboard.models import AuditEntry, Supervisor
from dashboard.transcript import PbxAnswer, Transcript
from pbx.directory.agent_matching import same_device
from pbx.errors import Conflict, DomainError, InvalidValue, message_of, status_of
from pbx.gateway import PbxActionFailed, PbxGateway, PbxUnavailable, SpyRequest
from pbx.live.presence import AVAILABLE, PAUSE
from pbx.live.services import user_status_set, user_unregister
from pbx.models import Company, LiveChannel, PbxUser
from pbx.text import has_control_character
from pbx.values import clean_extension
from terminals.services import terminal_join

logger = logging.getLogger("swan.dashboard")

Action = AuditEntry.Action
SPY_ACTIONS = (Action.LISTEN, Action.WHISPER, Action.BARGE)
# The Supervisor flag that allows each action.
PERMISSIONS = {
    Action.PAUSE: "may_pause",
    Action.UNPAUSE: "may_pause",
    Action.LOGOUT: "may_log_agents",
    Action.LOGIN: "may_log_agents",
    Action.LISTEN: "may_listen",
    Action.WHISPER: "may_whisper",
    Action.BARGE: "may_barge",
}
# What the supervisor's phone shows while it rings ("Escucha 201").
SPY_CALLER_LABELS = {
    Action.LISTEN: gettext_lazy("Listen"),
    Action.WHISPER: gettext_lazy("Whisper"),
    Action.BARGE: gettext_lazy("Barge"),
}
SPY_VERBS = {
    Action.LISTEN: gettext_lazy("listen to"),
    Action.WHISPER: gettext_lazy("whisper to"),
    Action.BARGE: gettext_lazy("barge into the call of"),
}
REASON_MAX_LENGTH = 120  # as UserPresence.pause_reason and userStatus POST's `reason`


def supervisor_of(user) -> Supervisor | None:
    if not user.is_authenticated:
        return None
    return Supervisor.objects.filter(user=user).first()


def allowed_actions(user, supervisor: Supervisor | None = None) -> list[str]:
    """The actions this login may take, in the page's order: every one for a superuser (a
    superuser may change anything in the admin anyway), else the flags of its supervisor."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return list(Action.values)
    supervisor = supervisor or supervisor_of(user)
    if supervisor is None:
        return []
    return [action for action in Action if getattr(supervisor, PERMISSIONS[action])]


class ActionRefused(Exception):
    """An action the rules refuse before the PBX is asked (403, 404, 400)."""

    def __init__(self, status_code: int, message: str, outcome: str = Outcome.REFUSED):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.outcome = outcome


def _refused_messages(answers: list[PbxAnswer]) -> str:
    return "; ".join(f"{a.target}: {a.message}" for a in answers if not a.ok)


def _pause(transcript: Transcript, user: PbxUser, reason: str, result: ActionResult) -> str:
    result.status = user_status_set(gateway=transcript, user=user, status=PAUSE, reason=reason)
    if reason:
        return _("Extension %(extension)s is paused: %(reason)s.") % {
            "extension": user.extension,
            "reason": reason,
        }
    return _("Extension %(extension)s is paused.") % {"extension": user.extension}


def _unpause(transcript: Transcript, user: PbxUser, reason: str, result: ActionResult) -> str:
    # userStatus `available`: unpaused in every queue, and do-not-disturb cleared.
    result.status = user_status_set(gateway=transcript, user=user, status=AVAILABLE)
    return _("Extension %(extension)s is available.") % {"extension": user.extension}


def _logout(transcript: Transcript, user: PbxUser, reason: str, result: ActionResult) -> str:
    if not user_unregister(gateway=transcript, user=user):
        raise Conflict(
            _("The PBX did not take extension %(extension)s out of every queue: %(answers)s")
            % {"extension": user.extension, "answers": _refused_messages(transcript.answers)}
        )
    return _("Extension %(extension)s is out of its queues.") % {"extension": user.extension}


def _login(transcript: Transcript, user: PbxUser, reason: str, result: ActionResult) -> str:
    terminal = user.terminals.order_by("-registered", "-registered_at", "pk").first()
    if terminal is None:
        raise Conflict(
            _("Extension %(extension)s has no terminal to log in with.")
            % {"extension": user.extension}
        )
    result.detail = terminal.interface
    if not terminal_join(gateway=transcript, terminal=terminal):
        raise Conflict(
            _("The PBX did not put extension %(extension)s in every queue: %(answers)s")
            % {"extension": user.extension, "answers": _refused_messages(transcript.answers)}
        )
    return _("Extension %(extension)s is in its queues on %(device)s.") % {
        "extension": user.extension,
        "device": terminal.interface,
    }


def agent_call_channel(user: PbxUser) -> str | None:
    """The channel of the agent's call now (answered, on one of its devices), newest first."""
    devices = {same_device(terminal.interface) for terminal in user.terminals.all()}
    channel = (
        LiveChannel.objects.filter(pbx=user.company.pbx_key, interface__in=devices, state="Up")
        .order_by("-started_at", "-pk")
        .values_list("channel", flat=True)
        .first()
    )
    return channel


def _spy(
    transcript: Transcript,
    user: PbxUser,
    *,
    action: str,
    supervisor: Supervisor | None,
    result: ActionResult,
) -> str:
    phone = supervisor.phone if supervisor is not None else ""
    if not phone:
        raise Conflict(
            _(
                "You have no phone to join calls with: an administrator sets it in your supervisor profile."
            )
        )
    channel = agent_call_channel(user)
    if channel is None:
        raise Conflict(
            _("Extension %(extension)s is not in a call.") % {"extension": user.extension}
        )
    result.detail = f"{phone} → {channel}"
    label = f"{SPY_CALLER_LABELS[Action(action)]} {user.extension}"
    request = SpyRequest(
        device=phone, channel=channel, mode=action, caller_id=f'"{label}" <{user.extension}>'
    )
    try:
        transcript.spy(request)
    except ValueError as exc:  # a channel or phone name ChanSpy could not take as it is
        logger.warning("spy refused channel=%s phone=%s error=%s", channel, phone, exc)
        raise Conflict(
            _("%(channel)s cannot be joined from %(phone)s.") % {"channel": channel, "phone": phone}
        ) from exc
    except PbxActionFailed as exc:
        raise Conflict(
            _("The PBX refused the call: %(message)s") % {"message": exc.message}
        ) from exc
    return _("Your phone %(phone)s rings: answer it to %(action)s extension %(extension)s.") % {
        "phone": phone,
        "action": SPY_VERBS[Action(action)],
        "extension": user.extension,
    }


_HANDLERS = {
    Action.PAUSE: _pause,
    Action.UNPAUSE: _unpause,
    Action.LOGOUT: _logout,
    Action.LOGIN: _login,
}


def _check(action: str, *, actor, supervisor, company: Company, extension: str, reason: str):
    """The agent the action is for; ActionRefused for anything the rules do not allow."""
    if action not in allowed_actions(actor, supervisor):
        raise ActionRefused(
            403,
            _("You may not “%(action)s”: an administrator allows it in your supervisor profile.")
            % {"action": Action(action).label},
            Outcome.DENIED,
        )
    try:
        clean_extension(extension)
    except InvalidValue as exc:
        raise ActionRefused(400, message_of(exc)) from None
    if has_control_character(reason):
        raise ActionRefused(
            400, _("The reason may not hold line breaks or other control characters.")
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise ActionRefused(
            400, _("The reason is longer than %(max)s characters.") % {"max": REASON_MAX_LENGTH}
        )
    user = PbxUser.objects.filter(company=company, extension=extension).first()
    if user is None:
        raise ActionRefused(
            404,
            _("Extension %(extension)s not found in %(company)s.")
            % {"extension": extension, "company": company.name},
        )
    return user


def action_run(
    *,
    gateway: PbxGateway,
    actor,
    company: Company,
    action: str,
    extension: str,
    reason: str = "",
) -> ActionResult:
    """Does one action for `actor` (a login that may watch `company`) and writes it to the audit
    log, whatever the result; what the rules or the PBX refuse is a result, not an exception."""
    supervisor = supervisor_of(actor)
    result = ActionResult(action=action, extension=extension)
    transcript = Transcript(gateway)
    try:
        user = _check(
            action,
            actor=actor,
            supervisor=supervisor,
            company=company,
            extension=extension,
            reason=reason,
        )
        result.name = user.name
        if action == Action.PAUSE:
            result.detail = reason
        if action in SPY_ACTIONS:
            result.message = _spy(
                transcript, user, action=action, supervisor=supervisor, result=result
            )
        else:
            result.message = _HANDLERS[Action(action)](transcript, user, reason, result)
    except ActionRefused as exc:
        result.outcome, result.status_code, result.message = (
            exc.outcome,
            exc.status_code,
            exc.message,
        )
    except (DomainError, PbxUnavailable) as exc:  # refused, not possible, or the PBX is down
        if isinstance(exc, PbxUnavailable):
            logger.warning("pbx unavailable error=%s", exc)
        result.status_code, result.message = status_of(exc) or 500, message_of(exc)
        result.outcome = Outcome.UNAVAILABLE if result.status_code == 503 else Outcome.REFUSED
    result.answers = transcript.answers
    audit_write(actor=actor, company=company, result=result)
    return result
