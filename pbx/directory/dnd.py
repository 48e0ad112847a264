"""Do-not-disturb keys: one per user, scoped by its company's DND prefix (docs/pbx.md)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import CharField, F
from django.db.models.functions import Concat, Lower

from pbx.models import Company, PbxUser, on_pbx

logger = logging.getLogger("swan.pbx")

DND_DEVICE_PREFIX = "custom:dnd"  # FreePBX's DND hint device, `Custom:DND<key>`, lower-cased


def dnd_key(*, prefix: str, extension: str) -> str:
    """The AstDB key under DND/ and the suffix of `Custom:DND…`: `<prefix><extension>`."""
    return f"{prefix}{extension}"


def dnd_key_of(user: PbxUser) -> str:
    return dnd_key(prefix=user.company.dnd_prefix, extension=user.extension)


def key_of_dnd_device(device: str) -> str | None:
    """`Custom:DNDacme-201` → `acme-201`; None for any other device."""
    if not device.lower().startswith(DND_DEVICE_PREFIX):
        return None
    return device[len(DND_DEVICE_PREFIX) :]


def _keyed_users():
    key = Lower(Concat(F("company__dnd_prefix"), F("extension"), output_field=CharField()))
    return PbxUser.objects.annotate(dnd_key=key)


def dnd_key_sharers(user: PbxUser) -> list[Company]:
    """The other companies on the user's PBX with a user whose DND key is this user's (keys
    ignore case; AstDB is per PBX)."""
    shared = (
        _keyed_users()
        .filter(dnd_key=dnd_key_of(user).lower())
        .filter(on_pbx(user.company.pbx_key, "company"))
        .exclude(company_id=user.company_id)
        .values_list("company_id", flat=True)
    )
    return list(Company.objects.filter(pk__in=shared).order_by("name"))


@dataclass
class DndKeys:
    """Which user each DND key stands for; a key two companies share stands for no one."""

    users: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, pbx: str | None = None) -> DndKeys:
        """Every user's key, or with `pbx` those of that PBX's companies."""
        keyed = _keyed_users() if pbx is None else _keyed_users().filter(on_pbx(pbx, "company"))
        users = defaultdict(list)
        for key, user_id, company_id in keyed.values_list("dnd_key", "pk", "company_id"):
            users[key].append((user_id, company_id))
        return cls(users=dict(users))

    def users_of(self, key: str) -> set[int]:
        candidates = self.users.get(key.lower(), [])
        if len(candidates) > 1:
            if key.lower() not in self._warned:
                self._warned.add(key.lower())
                logger.warning(
                    "dnd key shared by companies, applied to no user key=%s companies=%s",
                    key,
                    ",".join(str(company_id) for _user_id, company_id in candidates),
                )
            return set()
        return {user_id for user_id, _company_id in candidates}
