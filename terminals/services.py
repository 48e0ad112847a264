"""Terminal registration: the terminal's user joins (or leaves) its queues on that device."""

from __future__ import annotations

import logging

from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.directory.agent_matching import same_device
from pbx.directory.api_keys import CompanyScope
from pbx.errors import Conflict, NotFound
from pbx.gateway import PbxActions
from pbx.live.services import (
    members_on_device,
    queue_member_add,
    queue_member_remove,
    user_queue_names,
)
from pbx.live.writes import record_pbx_change
from pbx.models import PbxUser
from terminals.locking import terminal_changing
from terminals.models import Terminal

logger = logging.getLogger("swan.terminals")


def terminal_get(*, client: CompanyScope, mac: str) -> Terminal:
    terminal = Terminal.objects.select_related("user__company").filter(mac=mac).first()
    owner = terminal.user.company_id if terminal is not None and terminal.user else None
    if terminal is None or not client.sees_company(owner):
        raise NotFound(_("Terminal %(mac)s not found.") % {"mac": mac})
    if terminal.user is None:
        raise Conflict(_("Terminal %(mac)s has no user.") % {"mac": mac})
    return terminal


class _Membership:
    """Which of the user's queues this terminal's device is in, as the PBX reported step by step.

    A queue where the PBX already has the user on a member that rings this device (FreePBX's
    static `Local/203@from-queue/n` with state interface `PJSIP/203`) counts as joined: adding
    the device beside it would ring the phone twice. Leaving removes those members too."""

    def __init__(self, gateway: PbxActions, terminal: Terminal):
        if terminal.user is None:  # every caller checks first (terminal_get, the admin)
            raise Conflict(_("Terminal %(mac)s has no user.") % {"mac": terminal.mac})
        self.gateway = gateway
        self.terminal = terminal
        self.user: PbxUser = terminal.user
        self.queues = user_queue_names(self.user)
        self.joined = set(self.queues) if terminal.registered else set()
        device = same_device(terminal.interface)
        # Only members by another name: the device's own membership is always asked of the PBX
        # (the listener may not have seen a QueueMemberRemoved of a moment ago yet).
        self.members = {
            queue: others
            for queue, interfaces in members_on_device(
                user=self.user, device=terminal.interface
            ).items()
            if (others := {i for i in interfaces if same_device(i) != device})
        }

    def join_all(self) -> bool:
        for queue in self.queues:
            if self.members.get(queue) or queue_member_add(
                self.gateway,
                queue=queue,
                interface=self.terminal.interface,
                user=self.user,
            ):
                self.joined.add(queue)
        return self.joined == set(self.queues)

    def leave_all(self) -> bool:
        for queue in self.queues:
            interfaces = {self.terminal.interface, *self.members.get(queue, ())}
            removed = [
                queue_member_remove(self.gateway, queue=queue, interface=interface)
                for interface in sorted(interfaces)
            ]
            if all(removed):
                self.joined.discard(queue)
                self.members.pop(queue, None)
        return not self.joined

    def store(self, *, registered_without_queues: bool) -> None:
        """Saves what the PBX did: registered while the device is in at least one queue."""
        registered = bool(self.joined) if self.queues else registered_without_queues
        if self.terminal.registered == registered:
            return
        self.terminal.registered = registered
        self.terminal.registered_at = timezone.now() if registered else None
        record_pbx_change(
            lambda: self.terminal.save(update_fields=["registered", "registered_at"]),
            what=f"terminal {self.terminal.mac} registered={registered}",
        )


def terminal_register(*, gateway: PbxActions, terminal: Terminal) -> bool:
    """Unregisters first if registered, then adds the user to each of its queues on this device.

    Returns True only when the PBX did every step. No transaction spans the PBX calls: whatever
    happens, even the PBX going away half-way, the stored state says what the PBX really did.
    """
    with terminal_changing(terminal):
        membership = _Membership(gateway, terminal)
        success = False
        try:
            left = membership.leave_all() if terminal.registered else True
            success = membership.join_all() and left
        finally:
            membership.store(registered_without_queues=success or terminal.registered)
    logger.info("terminal registered mac=%s success=%s", terminal.mac, success)
    return success


def terminal_unregister(*, gateway: PbxActions, terminal: Terminal) -> bool:
    """Registers first if it was not registered, then removes the user from every queue."""
    with terminal_changing(terminal):
        membership = _Membership(gateway, terminal)
        success = False
        try:
            joined = membership.join_all() if not terminal.registered else True
            success = membership.leave_all() and joined
        finally:
            membership.store(registered_without_queues=terminal.registered and not success)
    logger.info("terminal unregistered mac=%s success=%s", terminal.mac, success)
    return success


def terminal_join(*, gateway: PbxActions, terminal: Terminal) -> bool:
    """Adds the user to each of its queues on this device without leaving any first (a
    supervisor's "log in"; terminal-register POST leaves first). Already being there, on this
    device or on a member that rings it, counts. True when the PBX has it in every queue."""
    with terminal_changing(terminal):
        membership = _Membership(gateway, terminal)
        success = False
        try:
            success = membership.join_all()
        finally:
            membership.store(registered_without_queues=success or terminal.registered)
    logger.info("terminal joined mac=%s success=%s", terminal.mac, success)
    return success
