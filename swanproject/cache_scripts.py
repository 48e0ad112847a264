"""Lua scripts on the Redis cache, registered once per cache backend (Django keeps one per thread).

Django builds a redis-py client for every cache call, and redis-py its table of response
callbacks with it. A hot path that uses the cache (the API throttle, the dashboard's buffer)
runs its commands as a script registered here once, on the client Django uses for writes; the
values it writes are the ones Django's RedisCache writes and reads.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache


def redis_cache() -> RedisCache | None:
    """This thread's default cache when it is Redis, else None."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    return backend if isinstance(backend, RedisCache) else None


def cache_script(backend: RedisCache, source: str) -> Any:
    """The script of this source on the backend's client for writes (a redis-py Script)."""
    scripts = backend.__dict__.setdefault("_swan_scripts", {})
    script = scripts.get(source)
    if script is None:
        script = scripts[source] = backend._cache.get_client(write=True).register_script(source)
    return script


def loads(backend: RedisCache, value: bytes) -> Any:
    """A value Django's RedisCache wrote, as it reads it."""
    return backend._cache._serializer.loads(value)


def raw_get_many(backend: RedisCache, keys: list[str]) -> list[bytes | None]:
    """The stored bytes of these cache keys, in order (values a script wrote as they are)."""
    client = backend._cache.get_client()
    return client.mget([backend.make_and_validate_key(key) for key in keys])
