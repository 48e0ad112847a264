"""Builds the simulator's configuration from the companies, queues and terminals in the database."""

from __future__ import annotations

from pbx.simulator.config import (
    CentreConfig,
    CompanyConfig,
    DeviceConfig,
    MemberConfig,
    QueueConfig,
)


def config_from_directory() -> CentreConfig:
    """Each terminal and each supervisor's phone is a device; a queue member answers on their
    first terminal (registered first)."""
    from pbx.models import Company, Queue
    from terminals.models import Terminal

    companies = tuple(
        CompanyConfig(c.slug, c.name, c.time_zone, c.dial_context) for c in Company.objects.all()
    )
    devices: dict[str, DeviceConfig] = {}
    interface_of_user: dict[int, str] = {}
    for terminal in Terminal.objects.select_related("user__company").order_by("-registered", "mac"):
        if terminal.interface in devices:
            continue
        user = terminal.user
        devices[terminal.interface] = DeviceConfig(
            interface=terminal.interface,
            extension=user.extension if user else terminal.interface.split("/", 1)[-1],
            name=user.name if user else "",
            company=user.company.slug if user else "",
        )
        if user is not None:
            interface_of_user.setdefault(user.pk, terminal.interface)
    # A supervisor's own phone (the one the dashboard rings to listen in) is a PBX endpoint too.
    from dashboard.models import Supervisor

    for phone, username in Supervisor.objects.exclude(phone="").values_list(
        "phone", "user__username"
    ):
        if phone not in devices:
            devices[phone] = DeviceConfig(
                interface=phone, extension=phone.split("/", 1)[-1], name=username
            )
    queues = []
    for queue in Queue.objects.select_related("company").prefetch_related("memberships__user"):
        members = tuple(
            MemberConfig(
                interface=interface_of_user[m.user_id], name=m.user.name, penalty=m.penalty
            )
            for m in queue.memberships.all()
            if m.user_id in interface_of_user
        )
        queues.append(
            QueueConfig(
                name=queue.name,
                company=queue.company.slug,
                members=members,
                service_level=queue.service_level_seconds,
            )
        )
    return CentreConfig(companies=companies, devices=tuple(devices.values()), queues=tuple(queues))
