"""Opens the configured PBX gateway for one request and always closes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.module_loading import import_string

from pbx.gateway import PbxGateway


@contextmanager
def pbx_gateway() -> Iterator[PbxGateway]:
    """`settings.PBX_GATEWAY` names a class with `from_settings()`: AMI in production.

    The gateway connects lazily, so an unreachable PBX surfaces from the first action.
    """
    gateway = import_string(settings.PBX_GATEWAY).from_settings()
    try:
        yield gateway
    finally:
        gateway.close()
