"""Start-up checks of settings that would otherwise fail every request."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, router

from pbx.models import Pbx
from pbx.models.directory import SECRET_ENV_NAME, SECRET_ENV_PREFIX, throttle_rate_validator


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


@register(Tags.security, deploy=True)
def fast_password_hasher_check(app_configs=None, **kwargs) -> list[Error]:
    """The test suite's fast password hasher never in production."""
    if getattr(settings, "TEST_PASSWORD_HASHER", False):
        return [
            Error(
                "SWAN_TEST_PASSWORD_HASHER is set: new passwords are hashed with MD5. It is for "
                "the test suite only; unset it.",
                id="swan.E002",
            )
        ]
    return []


@register(Tags.database)
def pbx_secret_check(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    """Each PBX's AMI secret is in this process's environment, or SWAN cannot log in to it.

    A database check: run by `check --database default` and `migrate`, not by every command,
    and silent on a database that is unreachable or not migrated yet.
    """
    warnings = []
    for alias in databases or ():
        if not router.allow_migrate_model(alias, Pbx):
            continue
        try:
            if Pbx._meta.db_table not in connections[alias].introspection.table_names():
                continue
            pbxes = list(Pbx.objects.using(alias).only("name", "secret_env").order_by("name"))
        except DatabaseError:
            continue
        warnings += [_secret_warning(pbx) for pbx in pbxes if not pbx.secret()]
    return warnings


def _secret_warning(pbx: Pbx) -> Warning:
    if not SECRET_ENV_NAME.fullmatch(pbx.secret_env):
        return Warning(
            f"PBX {pbx.name}: its AMI secret's environment variable {pbx.secret_env} does not "
            f"start with {SECRET_ENV_PREFIX}, so SWAN does not read it and cannot log in to that "
            "PBX.",
            hint=f"Put the secret in a variable named {SECRET_ENV_PREFIX}…, e.g. "
            f"{SECRET_ENV_PREFIX}{pbx.name.upper().replace('-', '_')}_SECRET, and name it in the "
            "PBX's secret_env (admin or load_directory).",
            obj=pbx,
            id="swan.W002",
        )
    return Warning(
        f"PBX {pbx.name}: its AMI secret's environment variable {pbx.secret_env} is not "
        "set (or empty) here, so SWAN cannot log in to that PBX.",
        hint=f"Set {pbx.secret_env} in the environment of pbx_listen and of the web "
        "workers; the secret is never stored in the database.",
        obj=pbx,
        id="swan.W001",
    )
