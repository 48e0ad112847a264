"""Writes that go through the PBX: status changes, click-to-call, leaving the queues."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.directory.agent_matching import extension_in, same_device
from pbx.directory.dnd import dnd_key_of, dnd_key_sharers
from pbx.directory.pbxes import dial_context_of
from pbx.errors import Conflict
from pbx.gateway import OriginateRequest, PbxActionFailed, PbxActions, PbxGateway
from pbx.live.presence import AVAILABLE, BUSY, PAUSE, STATUS_LABELS, UserStatus
from pbx.live.selectors import user_status_get
from pbx.live.state_tables import member_pause
from pbx.live.version import live_changed
from pbx.live.writes import record_pbx_change
from pbx.models import PbxUser, Queue, QueueMemberState, UserPresence

logger = logging.getLogger("swan.pbx")

SETTABLE_STATUSES = (AVAILABLE, BUSY, PAUSE)
# Asterisk's answers when a member already is, or already is not, where we want it.
_ALREADY_THERE = "already there"
_NOT_THERE = "not there"
_NOT_FOUND = "not found"


def queue_member_add(gateway: PbxActions, *, queue: str, interface: str, user: PbxUser) -> bool:
    """Adds the member; True when the PBX has it afterwards (already being there counts)."""
    try:
        gateway.queue_add(
            queue=queue, interface=interface, member_name=user.name, state_interface=interface
        )
    except PbxActionFailed as exc:
        if _ALREADY_THERE in exc.message.lower():
            return True
        logger.warning("queue add failed queue=%s interface=%s error=%s", queue, interface, exc)
        return False
    return True


def queue_member_remove(gateway: PbxActions, *, queue: str, interface: str) -> bool:
    """Removes the member; True when the PBX no longer has it (not being there counts)."""
    try:
        gateway.queue_remove(queue=queue, interface=interface)
    except PbxActionFailed as exc:
        if _NOT_THERE in exc.message.lower():
            return True
        logger.warning("queue remove failed queue=%s interface=%s error=%s", queue, interface, exc)
        return False
    return True


def user_queue_names(user: PbxUser) -> list[str]:
    return list(Queue.objects.filter(memberships__user=user).values_list("name", flat=True))


def _members_changed_since(user: PbxUser, moment: datetime | None) -> bool:
    if moment is None:
        return False
    return QueueMemberState.objects.filter(
        pbx=user.company.pbx_key, user=user, changed_at__gt=moment
    ).exists()


def _save_presence(user: PbxUser, *, asked_at: datetime | None = None, **flags) -> None:
    """Stores what the PBX just did. A pause asked at `asked_at` is superseded by member rows the
    listener changed since: the PBX's later events (another client re-adding the phone
    unpaused, say) are newer than this answer, and the rows already hold them."""
    now = timezone.now()
    presence, created = UserPresence.objects.select_for_update().get_or_create(
        user=user, defaults={**flags, "changed_at": now, "confirmed_at": now}
    )
    if "paused" in flags and _members_changed_since(user, asked_at):
        flags["paused"], flags["pause_reason"] = member_pause(user.pk)
        created = False  # the row may need the rows' pause rather than the defaults
    if not created:
        for name, value in flags.items():
            setattr(presence, name, value)
        presence.changed_at = now
        presence.save()
    live_changed(users=[user.pk])


def member_interfaces(user: PbxUser) -> list[str]:
    """The interfaces by which the PBX has the user in its queues (FreePBX's
    `Local/201@from-queue/n`, `PJSIP/201`, dynamic members), as the listener last saw them, and
    the user's own devices: a member added a moment ago may not have reached the listener yet
    (the PBX answers "Interface not found" for a device that is no member)."""
    live = set(
        QueueMemberState.objects.filter(pbx=user.company.pbx_key, user=user)
        .values_list("interface", flat=True)
        .distinct()
    )
    return sorted(live | {terminal.interface for terminal in user.terminals.all()})


def members_on_device(*, user: PbxUser, device: str) -> dict[str, set[str]]:
    """Queue → the user's member interfaces the PBX reports there that ring `device`: by the
    member's interface or state interface (`/n` or not), or a FreePBX `Local/203@…` member or
    `hint:203@…` state interface of the device's own extension."""
    wanted = same_device(device).lower()
    extension = extension_in(device)
    members: dict[str, set[str]] = {}
    for queue, interface, state_interface in QueueMemberState.objects.filter(
        pbx=user.company.pbx_key, user=user
    ).values_list("queue_name", "interface", "state_interface"):
        if any(
            _rings(name, device=wanted, extension=extension)
            for name in (interface, state_interface)
        ):
            members.setdefault(queue, set()).add(interface)
    return members


def _rings(member: str, *, device: str, extension: str | None) -> bool:
    if not member:
        return False
    if same_device(member).lower() == device:
        return True
    name = member.lower()
    if extension is None or not name.startswith(("local/", "hint:")):
        return False
    return name.partition(":" if name.startswith("hint:") else "/")[2].split("@")[0] == extension


def _pause_everywhere(gateway: PbxActions, user: PbxUser, *, paused: bool, reason: str) -> int:
    """QueuePause without a queue acts on every queue of the member; returns interfaces done."""
    done = 0
    for interface in member_interfaces(user):
        try:
            gateway.queue_pause(interface=interface, paused=paused, reason=reason)
        except PbxActionFailed as exc:
            if _NOT_FOUND not in exc.message.lower():
                raise
            continue  # this device is not a member of any queue
        done += 1
    return done


def _unshared_dnd_key(user: PbxUser) -> str:
    """The user's DND key; a 409 when another company's user has the same one (docs/pbx.md)."""
    sharers = dnd_key_sharers(user)
    if sharers:
        logger.warning(
            "dnd refused, key shared extension=%s company=%s others=%s",
            user.extension,
            user.company_id,
            ",".join(str(company.pk) for company in sharers),
        )
        raise Conflict(
            _(
                "Extension %(extension)s shares its do-not-disturb key with company "
                "%(companies)s; give one of the companies a DND prefix."
            )
            % {
                "extension": user.extension,
                "companies": ", ".join(company.name for company in sharers),
            }
        )
    return dnd_key_of(user)


def user_status_set(
    *, gateway: PbxActions, user: PbxUser, status: str, reason: str = ""
) -> UserStatus:
    """available: unpause everywhere and clear DND; pause: pause everywhere; busy: set DND.

    The stored state changes only after the PBX did the change. A DND key shared with another
    company is refused before anything is sent.
    """
    key = _unshared_dnd_key(user) if status in (AVAILABLE, BUSY) else ""
    asked_at = timezone.now()
    try:
        if status == AVAILABLE:
            # DND first: it is all or nothing (pbx.gateway.ami.set_dnd), so a refusal leaves
            # the pause as it was too, and the answer "refused" is the whole truth.
            gateway.set_dnd(key=key, enabled=False)
            try:
                _pause_everywhere(gateway, user, paused=False, reason="")
            except PbxActionFailed as exc:
                # DND is off on the PBX all the same: stored so, and said in the refusal.
                record_pbx_change(
                    lambda: _save_presence(user, asked_at=asked_at, dnd=False, dnd_reason=""),
                    what=f"presence {user.extension}",
                )
                raise PbxActionFailed(
                    exc.action, f"{exc.message}; do-not-disturb was cleared before it"
                ) from exc
            flags = {"paused": False, "pause_reason": "", "dnd": False, "dnd_reason": ""}
        elif status == PAUSE:
            if not _pause_everywhere(gateway, user, paused=True, reason=reason):
                raise Conflict(
                    _("Extension %(extension)s is not a member of any queue on the PBX.")
                    % {"extension": user.extension}
                )
            flags = {"paused": True, "pause_reason": reason}
        else:
            gateway.set_dnd(key=key, enabled=True, reason=reason)
            flags = {"dnd": True, "dnd_reason": reason}
    except PbxActionFailed as exc:
        logger.warning("status change refused extension=%s error=%s", user.extension, exc)
        raise Conflict(
            _("The PBX refused the change: %(message)s") % {"message": exc.message}
        ) from exc
    logger.info("status set extension=%s status=%s", user.extension, status)
    if record_pbx_change(
        lambda: _save_presence(user, asked_at=asked_at, **flags), what=f"presence {user.extension}"
    ):
        try:
            return user_status_get(user=user)
        except DatabaseError as exc:
            logger.error(
                "status read failed after the change extension=%s error=%s", user.extension, exc
            )
    return _status_done_by_pbx(user, status, reason)


def _status_done_by_pbx(user: PbxUser, status: str, reason: str) -> UserStatus:
    """The answer when our database cannot tell: what the PBX was just asked to do and did."""
    return {
        "extension": user.extension,
        "id": user.pk,
        "name": user.name,
        "status": status,
        "description": reason or str(STATUS_LABELS[status]),
    }


def call_place(*, gateway: PbxGateway, user: PbxUser, destination: str) -> bool:
    """Rings the user's device and, once answered, dials `destination` in the company's context."""
    terminal = user.terminals.order_by("-registered", "-registered_at", "pk").first()
    if terminal is None:
        raise Conflict(
            _("Extension %(extension)s has no terminal to ring.") % {"extension": user.extension}
        )
    request = OriginateRequest(
        channel=terminal.interface,
        context=dial_context_of(user.company),
        exten=destination,
        caller_id=f"{destination} <{destination}>",
    )
    try:
        success = bool(gateway.originate(request))
    except PbxActionFailed as exc:
        logger.warning("originate refused extension=%s error=%s", user.extension, exc)
        success = False
    logger.info(
        "call placed extension=%s destination=%s success=%s", user.extension, destination, success
    )
    return success


def _user_memberships(user: PbxUser) -> set[tuple[str, str]]:
    """(queue, interface) pairs to leave: what the PBX reports for the user, and its configured
    queues on each of its devices (a member the listener has not seen yet)."""
    pairs = set(
        QueueMemberState.objects.filter(pbx=user.company.pbx_key, user=user).values_list(
            "queue_name", "interface"
        )
    )
    interfaces = {terminal.interface for terminal in user.terminals.all()}
    pairs |= {(queue, interface) for queue in user_queue_names(user) for interface in interfaces}
    return pairs


def user_unregister(*, gateway: PbxActions, user: PbxUser) -> bool:
    """Removes the user's devices from its queues and marks its webphone unregistered."""
    from terminals.models import Terminal

    success = True
    for queue, interface in sorted(_user_memberships(user)):
        removed = queue_member_remove(gateway, queue=queue, interface=interface)
        success = success and removed
    if success:
        record_pbx_change(
            lambda: Terminal.objects.filter(user=user, type=Terminal.Type.WEBPHONE).update(
                registered=False, registered_at=None
            ),
            what=f"webphone unregistered {user.extension}",
        )
    logger.info("user unregistered extension=%s success=%s", user.extension, success)
    return success
