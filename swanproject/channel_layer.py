"""channels-redis whose receive outlives a Redis hiccup instead of ending the consumer (1011)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("swan.channel_layer")

# What receive() hands the consumer instead of raising: it then rejoins its groups and catches
# up (`recovered`), or closes with a code the client resumes from (`unavailable`).
RECOVERED = "channel_layer.recovered"
UNAVAILABLE = "channel_layer.unavailable"
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class ResilientRedisChannelLayer(RedisChannelLayer):
    """A receive that fails on Redis waits for Redis (ping, with backoff) instead of raising."""

    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, *args, recovery_limit: float = 60.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.recovery_limit = recovery_limit  # seconds without Redis before consumers close

    async def receive(self, channel: str) -> dict:
        try:
            return await super().receive(channel)
        except REDIS_ERRORS as exc:
            logger.warning(
                "channel layer receive failed channel=%s error=%s: %s",
                channel,
                type(exc).__name__,
                exc,
            )
        return {"type": await self._wait_for_redis(channel)}

    async def _wait_for_redis(self, channel: str) -> str:
        """RECOVERED once Redis answers a PING again, UNAVAILABLE after `recovery_limit`."""
        index = self.consistent_hash(self.non_local_name(channel)) if "!" in channel else 0
        started = time.monotonic()
        for attempt in itertools.count(1):
            await asyncio.sleep(self.retry_delays[min(attempt, len(self.retry_delays)) - 1])
            try:
                await self.connection(index).ping()
            except REDIS_ERRORS as exc:
                waited = time.monotonic() - started
                if waited < self.recovery_limit:
                    continue
                logger.error(
                    "channel layer gave up channel=%s seconds=%.1f error=%s",
                    channel,
                    waited,
                    type(exc).__name__,
                )
                return UNAVAILABLE
            logger.info(
                "channel layer recovered channel=%s seconds=%.1f attempts=%d",
                channel,
                time.monotonic() - started,
                attempt,
            )
            return RECOVERED
        raise AssertionError("unreachable")
