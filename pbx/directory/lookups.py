"""Reads: companies and users as an API key may see them, and the public numbers."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from pbx.directory.api_keys import CompanyScope
from pbx.errors import Conflict, NotFound
from pbx.models import (
    Company,
    PbxUser,
    PublicNumber,
)


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


def company_get(*, client: CompanyScope, ident: str) -> Company:
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
    *, client: CompanyScope, extension: str, company: str | None = None
) -> QuerySet[PbxUser]:
    users = PbxUser.objects.filter(extension=extension, company__in=client.companies())
    if company is not None:
        users = users.filter(company=company_get(client=client, ident=company))
    return users


def user_find(
    *, client: CompanyScope, extension: str, company: str | None = None
) -> PbxUser | None:
    """The user with this extension among the key's companies; None if none, 409 if ambiguous."""
    users = list(
        users_by_extension(client=client, extension=extension, company=company).select_related(
            "company"
        )[:2]
    )
    if len(users) > 1:
        raise extension_ambiguous(extension)
    return users[0] if users else None


def user_get(*, client: CompanyScope, extension: str, company: str | None = None) -> PbxUser:
    user = user_find(client=client, extension=extension, company=company)
    if user is None:
        raise extension_not_found(extension)
    return user


def user_name_for_extension(
    *, client: CompanyScope, extension: str, company: str | None
) -> str | None:
    user = user_find(client=client, extension=extension, company=company)
    return user.name if user else None


def company_numbers(*, client: CompanyScope, company: str, in_use_only: bool) -> list[dict]:
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
