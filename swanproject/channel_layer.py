"""channels-redis with one reader per process, a bounded connection pool, and Redis hiccups survived.

- **One reader.** channels-redis lets every consumer of a process take turns at a lock to read
  the process's messages, and every consumer creates two tasks and a queue per message to wait
  for its own: with 500 sockets, most of daphne's time per message. Here one task per process
  reads (BZPOPMIN) and puts each message into the inboxes of the channels it names; a consumer's
  `receive` is a plain `Queue.get`.
- **Hiccups.** When that read fails on Redis (timeout, dropped connection), the reader waits for
  Redis (ping, with backoff) and tells every consumer: `RECOVERED` (it rejoins its group and
  catches up) or, after `recovery_limit` seconds, `UNAVAILABLE` (it closes with a code the client
  resumes from). No consumer ever sees the exception (1011).
- **One command per group send.** channels-redis sends to a group in four round trips
  (expire members, read them, expire each process's queue, push): a fifth of the listener's
  time at 1,000 events/s. Here one script does all four and pushes one message per process,
  addressed to the group; each process's reader hands it to its own channels that joined it.
  Every process must run this layer (all of SWAN's do); a plain channels-redis reader would
  drop such a message.
- **Pool.** redis-py's asyncio pool refuses the 101st concurrent command ("Too many
  connections"): 200 sockets reconnecting at once failed their `group_add`. The pool here has
  `pool_size` connections and makes the others wait for one (`pool_timeout` seconds at most).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from channels_redis.core import BoundedQueue, RedisChannelLayer
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("swan.channel_layer")

# What receive() hands the consumer instead of raising: it then rejoins its groups and catches
# up (`recovered`), or closes with a code the client resumes from (`unavailable`).
RECOVERED = "channel_layer.recovered"
UNAVAILABLE = "channel_layer.unavailable"
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)

# KEYS[1]: the group. ARGV: members joined before this leave it; messages queued before this
# leave a process's queue; now; the message; a queue's capacity; its expiry; the key prefix.
# Returns how many processes' queues were full, and the members that are not a process's.
_GROUP_SEND_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
local done, others, full = {}, {}, 0
for _, channel in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local bang = string.find(channel, '!', 1, true)
  if bang == nil then
    table.insert(others, channel)
  else
    local queue = ARGV[7] .. string.sub(channel, 1, bang)
    if not done[queue] then
      done[queue] = true
      redis.call('ZREMRANGEBYSCORE', queue, 0, ARGV[2])
      if redis.call('ZCARD', queue) < tonumber(ARGV[5]) then
        redis.call('ZADD', queue, ARGV[3], ARGV[4])
        redis.call('EXPIRE', queue, ARGV[6])
      else
        full = full + 1
      end
    end
  end
end
return {full, others}
"""
GROUP_KEY = "__asgi_group__"  # a message addressed to a group, not to channels


class ResilientRedisChannelLayer(RedisChannelLayer):
    """A RedisChannelLayer whose process-local channels are fed by one reader task."""

    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)

    def __init__(
        self,
        *args,
        recovery_limit: float = 60.0,
        pool_size: int = 50,
        pool_timeout: float = 10.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.recovery_limit = recovery_limit  # seconds without Redis before consumers close
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self._inboxes: dict[str, asyncio.Queue] = {}
        self._reader: asyncio.Task | None = None
        self._joined: dict[str, set[str]] = {}  # group → this process's channels in it
        self._group_send_script = None

    def create_pool(self, index: int) -> aioredis.ConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels and the like: channels-redis's own pool
            return super().create_pool(index)
        return aioredis.BlockingConnectionPool.from_url(
            host.pop("address"), max_connections=self.pool_size, timeout=self.pool_timeout, **host
        )

    async def new_channel(self, prefix: str = "specific") -> str:
        channel = await super().new_channel(prefix)
        self._inboxes[channel] = BoundedQueue(self.capacity)
        return channel

    async def receive(self, channel: str) -> dict:
        if "!" not in channel:  # a channel shared between processes: channels-redis reads it
            try:
                return await super().receive(channel)
            except REDIS_ERRORS as exc:
                self._log_failure(channel, exc)
            return {"type": await self._wait_for_redis(channel)}
        assert self.non_local_name(channel).endswith(self.client_prefix + "!"), "Wrong prefix"
        inbox = self._inboxes.get(channel)
        if inbox is None:
            inbox = self._inboxes[channel] = BoundedQueue(self.capacity)
        self._ensure_reader()
        try:
            return await inbox.get()
        except asyncio.CancelledError:
            # The consumer is gone (channels cancels its receive when it ends).
            if self._inboxes.get(channel) is inbox:
                del self._inboxes[channel]
                self._leave_all(channel)
            if not self._inboxes and self._reader is not None:
                self._reader.cancel()  # nothing left to read for; BZPOPMIN loses nothing
                self._reader = None
            raise

    # -- groups --------------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        # Known here before Redis has it: a message sent in between must find it.
        if self._is_ours(channel):
            self._joined.setdefault(group, set()).add(channel)
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await super().group_discard(group, channel)
        members = self._joined.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._joined[group]

    def _is_ours(self, channel: str) -> bool:
        return "!" in channel and self.non_local_name(channel).endswith(self.client_prefix + "!")

    def _leave_all(self, channel: str) -> None:
        for group in [g for g, members in self._joined.items() if channel in members]:
            self._joined[group].discard(channel)
            if not self._joined[group]:
                del self._joined[group]

    async def group_send(self, group: str, message: dict) -> None:
        if self.ring_size != 1 or self.channel_capacity:
            # Sharded, or capacities per channel: channels-redis's own way.
            await super().group_send(group, message)
            return
        assert self.require_valid_group_name(group), "Group name not valid"
        connection = self.connection(0)
        if self._group_send_script is None:
            self._group_send_script = connection.register_script(_GROUP_SEND_SCRIPT)
        now = time.time()
        full, others = await self._group_send_script(
            keys=[self._group_key(group)],
            args=[
                int(now) - self.group_expiry,
                int(now) - int(self.expiry),
                now,
                self.serialize({**message, GROUP_KEY: group}),
                self.capacity,
                int(self.expiry),
                self.prefix,
            ],
            client=connection,
        )
        if full:
            logger.info("channel layer: %s process queue(s) full in group %s", full, group)
        for channel in others:  # a general channel in a group: rare, sent on its own
            await self.send(channel.decode(), message)

    def _ensure_reader(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reader is None or self._reader.done() or self._reader.get_loop() is not loop:
            self._reader = loop.create_task(self._read(), name="channel-layer-reader")

    async def _pop(self, local: str) -> list[bytes]:
        """The process's waiting messages, oldest first: one blocking pop, then all the rest.

        channels-redis pops one message per three round trips (a backup queue guards against
        a cancelled receive). This reader is cancelled only when no consumer is left to give
        a message to, so it pops plainly, and everything waiting in one more round trip.
        """
        connection = self.connection(self.consistent_hash(local))
        key = self.prefix + local
        first = await connection.bzpopmin(key, timeout=self.brpop_timeout)
        if first is None:
            return []
        rest = await connection.zpopmin(key, count=self.capacity)
        return [first[1], *(member for member, _score in rest)]

    async def _read(self) -> None:
        local = f"specific.{self.client_prefix}!"
        while True:
            try:
                popped = await self._pop(local)
            except REDIS_ERRORS as exc:
                self._log_failure(local, exc)
                self._tell_everyone({"type": await self._wait_for_redis(local)})
                continue
            except Exception:  # the reader must outlive anything, or every stream stops
                logger.exception("channel layer read failed channel=%s", local)
                await asyncio.sleep(0.5)
                continue
            for member in popped:
                try:
                    message = self.deserialize(member)
                    group = message.pop(GROUP_KEY, None)
                    target = (
                        sorted(self._joined.get(group, ()))
                        if group is not None
                        else message.pop("__asgi_channel__")
                    )
                except Exception:
                    logger.exception("channel layer dropped an unreadable message")
                    continue
                self._deliver(target, message)

    def _deliver(self, target: str | list[str], message: dict) -> None:
        for channel in [target] if isinstance(target, str) else target:
            inbox = self._inboxes.get(channel)
            if inbox is not None:  # else its consumer is gone
                inbox.put_nowait(message)

    def _tell_everyone(self, message: dict) -> None:
        for inbox in self._inboxes.values():
            inbox.put_nowait(dict(message))

    @staticmethod
    def _log_failure(channel: str, exc: Exception) -> None:
        logger.warning(
            "channel layer receive failed channel=%s error=%s: %s",
            channel,
            type(exc).__name__,
            exc,
        )

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
