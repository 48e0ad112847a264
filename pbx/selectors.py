"""Reads: companies and users as an API key may see them, and the directory endpoints' results."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.db.models.functions import Length
from django.utils.translation import gettext as _

from pbx.auth import ApiClient
from pbx.models import Company, Department, PbxUser, PublicNumber
from pbx.presence import UserStatus, device_states_for, user_status
from swanproject.envelope import Conflict, NotFound


def company_get(*, client: ApiClient, ident: str) -> Company:
    """The company named by slug or name (case-insensitive) that the key may see, else 404."""
    company = (
        client.companies()
        .filter(Q(slug__iexact=ident) | Q(name__iexact=ident))
        .order_by("pk")
        .first()
    )
    if company is None:
        raise NotFound(_("Company '%(company)s' not found.") % {"company": ident})
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
        raise Conflict(
            _(
                "Extension %(extension)s exists in several companies: "
                "name one with the 'company' parameter."
            )
            % {"extension": extension}
        )
    return users[0] if users else None


def user_get(*, client: ApiClient, extension: str, company: str | None = None) -> PbxUser:
    user = user_find(client=client, extension=extension, company=company)
    if user is None:
        raise NotFound(_("Extension %(extension)s not found.") % {"extension": extension})
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
            raise NotFound(
                _("Department '%(department)s' not found in company '%(company)s'.")
                % {"department": missing[0], "company": company_obj.slug}
            )
        users = users.filter(department__name__in=[known[name.lower()] for name in departments])
    users = list(
        users.select_related("presence")
        .prefetch_related("terminals")
        .order_by(Length("extension"), "extension")
    )
    device_states = device_states_for(users)
    rows = []
    for user in users:
        row: dict = dict(user_status(user, device_states))
        if with_mobile:
            row["mobile"] = user.mobile or None
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
    user = PbxUser.objects.select_related("presence").prefetch_related("terminals").get(pk=user.pk)
    return user_status(user, device_states_for([user]))
