"""Start-up checks of settings that would otherwise fail every request."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ValidationError

from pbx.models.directory import throttle_rate_validator


@register()
def throttle_rate_check(app_configs=None, **kwargs) -> list[Error]:
    """SWAN_THROTTLE_RATE in DRF's format, or every API request would be a 500."""
    rate = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get("api_key")
    if rate is None:
        return []
    try:
        throttle_rate_validator(rate)
    except ValidationError:
        return [
            Error(
                f"SWAN_THROTTLE_RATE {rate!r} is not a rate such as 60000/min, 1000/s or 5000/h.",
                id="swan.E001",
            )
        ]
    return []
