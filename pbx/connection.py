"""Opens the configured PBX gateway for one request and always closes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.module_loading import import_string

from pbx.gateway import PbxGateway, PbxUnavailable
from pbx.services import pbx_unavailable


@contextmanager
def pbx_gateway() -> Iterator[PbxGateway]:
    """`settings.PBX_GATEWAY` names a class with `from_settings()`: AMI in production."""
    try:
        gateway = import_string(settings.PBX_GATEWAY).from_settings()
    except PbxUnavailable as exc:
        raise pbx_unavailable(exc) from exc
    try:
        yield gateway
    finally:
        gateway.close()
