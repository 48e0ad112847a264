"""One active listener per PBX: a lease row that the holder renews and a standby takes over."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from pbx.models import ListenerLease

logger = logging.getLogger("swan.listener")


class Lease:
    def __init__(self, *, name: str, holder: str, seconds: float = 20.0):
        self.name = name
        self.holder = holder
        self.seconds = seconds

    def acquire(self) -> bool:
        """Takes or renews the lease; False while another live holder has it."""
        now = timezone.now()
        expires = now + timedelta(seconds=self.seconds)
        taken = ListenerLease.objects.filter(
            Q(holder=self.holder) | Q(expires_at__lt=now) | Q(holder=""), name=self.name
        ).update(holder=self.holder, expires_at=expires)
        if taken:
            return True
        try:
            with transaction.atomic():
                ListenerLease.objects.create(name=self.name, holder=self.holder, expires_at=expires)
        except IntegrityError:
            return False  # another listener holds it (or created it this instant)
        return True

    def release(self) -> None:
        ListenerLease.objects.filter(name=self.name, holder=self.holder).update(
            holder="", expires_at=timezone.now(), connected=False
        )

    def record(self, **fields) -> None:
        """Keeps what the active listener knows of the PBX link on the lease row."""
        ListenerLease.objects.filter(name=self.name, holder=self.holder).update(**fields)
