"""Opens the configured PBX gateway to one PBX for one request and always closes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.module_loading import import_string

from pbx.gateway.base import PbxAddress, PbxGateway


@contextmanager
def pbx_gateway(address: PbxAddress) -> Iterator[PbxGateway]:
    """`settings.PBX_GATEWAY` names a class with `for_address()`: AMI in production.

    The gateway connects lazily, so an unreachable PBX surfaces from the first action.
    """
    gateway = import_string(settings.PBX_GATEWAY).for_address(address)
    try:
        yield gateway
    finally:
        gateway.close()
