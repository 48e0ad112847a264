"""Builds the simulator's configuration from the companies, queues and terminals in the database."""

from __future__ import annotations

from pbx.simulator.config import (
    CentreConfig,
    CompanyConfig,
    DeviceConfig,
    MemberConfig,
    QueueConfig,
)


def config_from_directory(pbx: str | None = None) -> CentreConfig:
    """Each terminal and each supervisor's phone is a device; a queue member answers on their
    first terminal (registered first). With `pbx`, only that PBX's companies and their
    supervisors' phones."""
    from pbx.directory.pbxes import dial_context_of
    from pbx.models import Company, Queue, on_pbx
    from terminals.models import Terminal

    company_rows = Company.objects.select_related("pbx")
    queue_rows = Queue.objects.select_related("company")
    terminal_rows = Terminal.objects.select_related("user__company")
    if pbx is not None:
        company_rows = company_rows.filter(on_pbx(pbx))
        queue_rows = queue_rows.filter(pbx=pbx)
        terminal_rows = terminal_rows.filter(on_pbx(pbx, "user__company"))
    companies = tuple(
        CompanyConfig(c.slug, c.name, c.time_zone, dial_context_of(c)) for c in company_rows
    )
    devices: dict[str, DeviceConfig] = {}
    interface_of_user: dict[int, str] = {}
    for terminal in terminal_rows.order_by("-registered", "mac"):
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

    supervisors = Supervisor.objects.exclude(phone="")
    if pbx is not None:  # their phone rings on the PBX of the company they listen to
        supervisors = supervisors.filter(companies__in=company_rows).distinct()
    for phone, username in supervisors.values_list("phone", "user__username"):
        if phone not in devices:
            devices[phone] = DeviceConfig(
                interface=phone, extension=phone.split("/", 1)[-1], name=username
            )
    queues = []
    for queue in queue_rows.prefetch_related("memberships__user"):
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
