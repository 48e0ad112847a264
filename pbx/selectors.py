"""Reads: companies and users as an API key may see them, and the directory endpoints' results."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.agents import same_device
from pbx.auth import ApiClient
from pbx.errors import Conflict, NotFound
from pbx.local_time import local_time
from pbx.models import (
    Company,
    Department,
    DeviceState,
    LiveChannel,
    PbxUser,
    PublicNumber,
)
from pbx.presence import UNREACHABLE_DEVICE_STATES, UserStatus, presence_rows


def company_not_found(ident: str) -> NotFound:
    return NotFound(_("Company '%(company)s' not found.") % {"company": ident})


def extension_not_found(extension: str) -> NotFound:
    return NotFound(_("Extension %(extension)s not found.") % {"extension": extension})


def extension_ambiguous(extension: str) -> Conflict:
    return Conflict(
        _(
            "Extension %(extension)s exists in several companies: "
            "name one with the 'company' parameter."
        )
        % {"extension": extension}
    )


def department_not_found(department: str, company: Company) -> NotFound:
    return NotFound(
        _("Department '%(department)s' not found in company '%(company)s'.")
        % {"department": department, "company": company.slug}
    )


def company_get(*, client: ApiClient, ident: str) -> Company:
    """The company named by slug or name (case-insensitive) that the key may see, else 404."""
    company = (
        client.companies()
        .filter(Q(slug__iexact=ident) | Q(name__iexact=ident))
        .order_by("pk")
        .first()
    )
    if company is None:
        raise company_not_found(ident)
    return company


def users_by_extension(
    *, client: ApiClient, extension: str, company: str | None = None
) -> QuerySet[PbxUser]:
    users = PbxUser.objects.filter(extension=extension, company__in=client.companies())
    if company is not None:
        users = users.filter(company=company_get(client=client, ident=company))
    return users


def user_find(*, client: ApiClient, extension: str, company: str | None = None) -> PbxUser | None:
    """The user with this extension among the key's companies; None if none, 409 if ambiguous."""
    users = list(
        users_by_extension(client=client, extension=extension, company=company).select_related(
            "company"
        )[:2]
    )
    if len(users) > 1:
        raise extension_ambiguous(extension)
    return users[0] if users else None


def user_get(*, client: ApiClient, extension: str, company: str | None = None) -> PbxUser:
    user = user_find(client=client, extension=extension, company=company)
    if user is None:
        raise extension_not_found(extension)
    return user


def user_name_for_extension(
    *, client: ApiClient, extension: str, company: str | None
) -> str | None:
    user = user_find(client=client, extension=extension, company=company)
    return user.name if user else None


def blf_users(
    *,
    client: ApiClient,
    company: str,
    departments: list[str] | None = None,
    with_mobile: bool = False,
) -> list[dict]:
    """Every user of the company (optionally of some departments) with live status, in 4 queries."""
    company_obj = company_get(client=client, ident=company)
    users = PbxUser.objects.filter(company=company_obj)
    if departments:
        known = {
            name.lower(): name
            for name in Department.objects.filter(company=company_obj).values_list(
                "name", flat=True
            )
        }
        missing = [name for name in departments if name.lower() not in known]
        if missing:
            raise department_not_found(missing[0], company_obj)
        users = users.filter(department__name__in=[known[name.lower()] for name in departments])
    rows = []
    for presence in presence_rows(users):
        row: dict = dict(presence.as_user_status())
        if with_mobile:
            row["mobile"] = presence.mobile or None
        rows.append(row)
    return rows


def company_numbers(*, client: ApiClient, company: str, in_use_only: bool) -> list[dict]:
    company_obj = company_get(client=client, ident=company)
    numbers = PublicNumber.objects.filter(company=company_obj).order_by("name", "number")
    if in_use_only:
        numbers = numbers.filter(in_use=True)
    return [
        {
            "id": number.pk,
            "name": f"{number.name} - {number.number}",
            "alias": number.alias,
            "value": number.number,
        }
        for number in numbers
    ]


def user_status_get(*, user: PbxUser) -> UserStatus:
    """The live status of one user (userStatus GET and the answer of userStatus POST)."""
    (row,) = presence_rows(PbxUser.objects.filter(pk=user.pk))
    return row.as_user_status()


def _local(moment: datetime, company: Company) -> str:
    return local_time(moment, company.time_zone)


def current_calls(*, user: PbxUser, now: datetime | None = None) -> list[dict]:
    """Calls up now on the user's devices, newest first (contract.md, current-calls)."""
    now = now or timezone.now()
    interfaces = {same_device(t.interface) for t in user.terminals.all()}
    if not interfaces:
        return []
    rows = []
    seen: set[str] = set()
    for channel in LiveChannel.objects.filter(interface__in=interfaces).order_by(
        "-started_at", "-pk"
    ):
        call_id = channel.linked_id or channel.unique_id
        if call_id in seen:  # one row per call, even with several legs on the user's devices
            continue
        seen.add(call_id)
        outgoing = channel.linked_id in ("", channel.unique_id)
        other = channel.connected_line_num
        if outgoing and other in ("", "<unknown>", user.extension):
            other = channel.exten
        rows.append(
            {
                "uniqueid": call_id,
                "calldate": _local(channel.started_at, user.company),
                "duration": max(0, int((now - channel.started_at).total_seconds())),
                "number": "" if other == "<unknown>" else other,
                "direction": "outgoing" if outgoing else "incoming",
            }
        )
    return rows


def web_phone(*, user: PbxUser) -> dict:
    """The MAC of the user's webphone, and whether the PBX sees it registered now."""
    from terminals.models import Terminal

    terminal = (
        user.terminals.filter(type=Terminal.Type.WEBPHONE).order_by("-registered", "pk").first()
    )
    if terminal is None:
        return {"username": None, "is_registered": False}
    state = (
        DeviceState.objects.filter(interface=terminal.interface)
        .values_list("state", flat=True)
        .first()
    )
    return {
        "username": terminal.mac,
        "is_registered": state is not None and state not in UNREACHABLE_DEVICE_STATES,
    }
