"""Our own writes after the PBX already acted: retried, and never turned into an error answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import DatabaseError, transaction

logger = logging.getLogger("swan.pbx")

RETRY_DELAYS = (0.05, 0.25, 1.0)  # seconds before the 2nd, 3rd and 4th attempt


def record_pbx_change(write: Callable[[], object], *, what: str) -> bool:
    """Runs `write` in a transaction, retrying on a database error; False if every try failed.

    Used once the PBX has done a change: the caller answers with what the PBX did whatever
    happens here, and the listener's event for the same change writes the row anyway.
    """
    for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
        try:
            with transaction.atomic():
                write()
            return True
        except DatabaseError as exc:
            if delay is None:
                logger.error(
                    "write lost after the pbx changed what=%s attempts=%s error=%s",
                    what,
                    attempt,
                    exc,
                )
                return False
            logger.warning("write retried what=%s attempt=%s error=%s", what, attempt, exc)
            time.sleep(delay)
    return False
