"""Failed-login counting in Redis per username and client address: too many failures answer 429 for a while."""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
KEY_PREFIX = "grid:login-failures:"


class LoginThrottle:
    """A fixed window per (username, address) that starts with the first failure; success clears it.

    Redis being down lets logins through (logged): the throttle protects passwords, it must not lock everyone out.
    """

    def __init__(self, redis: Redis | None, max_failures: int, window_s: int):
        self._redis = redis
        self.max_failures = max_failures
        self.window_s = window_s

    @staticmethod
    def key(username: str, address: str) -> str:
        digest = hashlib.sha256(f"{username.casefold()}\n{address}".encode()).hexdigest()[:32]
        return KEY_PREFIX + digest

    async def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until the next attempt is allowed, or None when it is allowed now."""
        if self._redis is None or self.max_failures <= 0:
            return None
        key = self.key(username, address)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.ttl(key)
                count, ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("login throttle unavailable (%s); letting the attempt through", exc)
            return None
        if count is None or int(count) < self.max_failures:
            return None
        return max(int(ttl), 1) if ttl is not None and int(ttl) > 0 else self.window_s

    async def failed(self, username: str, address: str) -> None:
        """Count one failure; the window starts at the first."""
        if self._redis is None:
            return
        key = self.key(username, address)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_s, nx=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("login throttle unavailable (%s); failure not counted", exc)

    async def succeeded(self, username: str, address: str) -> None:
        """A successful login forgets the failures of this username from this address."""
        if self._redis is None:
            return
        try:
            await self._redis.delete(self.key(username, address))
        except (RedisError, OSError) as exc:
            log.warning("login throttle unavailable (%s)", exc)
