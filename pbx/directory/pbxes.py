"""Which PBX a company is on, where that PBX is, and a gateway to it.

A company names its PBX (`Company.pbx`); one that names none is on the settings' PBX (AMI_*),
called `default`. A PBX's AMI secret is read from the environment variable it names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from pbx.gateway import PbxAddress, PbxGateway, PbxUnavailable
from pbx.gateway.connection import pbx_gateway
from pbx.models import DEFAULT_PBX, Company, Pbx
from pbx.models.directory import SECRET_ENV_NAME, SECRET_ENV_PREFIX

logger = logging.getLogger("swan.pbx")


class UnknownPbx(LookupError):
    """No PBX of that name."""


def default_address() -> PbxAddress:
    return PbxAddress(
        name=DEFAULT_PBX,
        host=settings.AMI_HOST,
        port=settings.AMI_PORT,
        username=settings.AMI_USERNAME,
        secret=settings.AMI_SECRET,
        timeout=settings.AMI_TIMEOUT,
    )


def address_of(pbx: Pbx) -> PbxAddress:
    """Raises PbxUnavailable (503 to an API client) when the secret's variable is not set."""
    secret = pbx.secret()
    if secret is None and not SECRET_ENV_NAME.fullmatch(pbx.secret_env):
        raise PbxUnavailable(
            f"the AMI secret of PBX {pbx.name} is not read: environment variable "
            f"{pbx.secret_env} does not start with {SECRET_ENV_PREFIX}"
        )
    if secret is None:
        raise PbxUnavailable(
            f"the AMI secret of PBX {pbx.name} is not set: "
            f"environment variable {pbx.secret_env} is missing or empty"
        )
    return PbxAddress(
        name=pbx.name,
        host=pbx.host,
        port=pbx.port,
        username=pbx.username,
        secret=secret,
        timeout=settings.AMI_TIMEOUT,
    )


def pbx_address(key: str) -> PbxAddress:
    if key == DEFAULT_PBX:
        return default_address()
    try:
        return address_of(Pbx.objects.get(name=key))
    except Pbx.DoesNotExist:
        raise UnknownPbx(key) from None


def served_pbx_keys() -> list[str]:
    """The PBXes a listener serves when told none: every PBX defined, and the settings' one
    while no PBX is defined or some company is on it."""
    names = list(Pbx.objects.order_by("name").values_list("name", flat=True))
    if not names or Company.objects.filter(pbx__isnull=True).exists():
        names.insert(0, DEFAULT_PBX)
    return names


def known_pbx_keys() -> set[str]:
    return {DEFAULT_PBX, *Pbx.objects.values_list("name", flat=True)}


def dial_context_of(company: Company) -> str:
    """Click-to-call's context: the company's, else its PBX's default."""
    if company.dial_context:
        return company.dial_context
    pbx = company.pbx
    return settings.PBX_DIAL_CONTEXT if pbx is None else pbx.dial_context


@contextmanager
def gateway_for(company: Company) -> Iterator[PbxGateway]:
    """A gateway to the company's own PBX, closed on exit."""
    with pbx_gateway(pbx_address(company.pbx_key)) as gateway:
        yield gateway
