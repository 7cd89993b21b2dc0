"""Per-process cache of who a user is now (active, token version, data scope), dropped on change via Redis.

An access token proves who signed in and when; whether it still counts depends on the user's current
`token_version` and `active` flag. Reading them from PostgreSQL on every request would cost a round trip, so
each API process keeps them for `GRID_AUTH_CACHE_SECONDS` (default 5 s) and one query refills a user on a miss.
A change (logout everywhere, deactivation, role/unit/duty-grid change, password) drops the entry at once in the
process that made it and publishes the user id on the Redis channel below, which every other process listens
to; when Redis is unreachable the TTL still bounds how long a revoked token keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.accounts import repository as repo
from grid_mgmt.lib.auth import Principal

log = logging.getLogger(__name__)
CHANNEL = "grid:accounts:invalidate"
ALL = "*"
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class UserFacts:
    """What decides whether a token counts, and the principal it becomes."""

    active: bool
    token_version: int
    principal: Principal


async def publish(redis: Redis | None, user_id: int | None) -> None:
    """Tell every API process to forget a user (None: everyone); best effort, the TTL is the fallback."""
    if redis is None:
        return
    try:
        await redis.publish(CHANNEL, ALL if user_id is None else str(user_id))
    except (RedisError, OSError) as exc:
        log.warning("could not publish an account invalidation (%s); processes catch up within the cache TTL", exc)


class PrincipalCache:
    """user id → UserFacts for `ttl` seconds; concurrent misses for one user share one query."""

    def __init__(self, engine: AsyncEngine, ttl: float, redis: Redis | None = None):
        self._engine = engine
        self.ttl = ttl
        self._redis = redis
        self._entries: dict[int, tuple[float, UserFacts | None]] = {}
        self._loading: dict[int, asyncio.Future[UserFacts | None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._generation = 0

    async def get(self, user_id: int) -> UserFacts | None:
        """The user's current facts; None when no such user exists."""
        entry = self._entries.get(user_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        pending = self._loading.get(user_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(user_id))
            self._loading[user_id] = pending
            pending.add_done_callback(lambda _: self._loading.pop(user_id, None))
        return await asyncio.shield(pending)

    async def _load(self, user_id: int) -> UserFacts | None:
        generation = self._generation
        async with self._engine.connect() as conn:
            row = await repo.scope_facts(conn, user_id)
        facts = None
        if row is not None:
            principal = Principal(
                user_id=row.id,
                username=row.username,
                roles=frozenset(row.roles),
                unit_code=row.unit_code,
                district_code=row.district_code,
                unit_codes=frozenset(row.unit_codes),
                duty_grid_codes=frozenset(row.grid_codes),
                token_version=row.token_version,
            )
            facts = UserFacts(active=row.active, token_version=row.token_version, principal=principal)
        if generation == self._generation and self.ttl > 0:  # not invalidated while we were reading
            now = time.monotonic()
            if len(self._entries) >= MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            self._entries[user_id] = (now + self.ttl, facts)
        return facts

    def drop(self, user_id: int | None = None) -> None:
        """Forget one user (None: everyone) in this process."""
        self._generation += 1
        if user_id is None:
            self._entries.clear()
        else:
            self._entries.pop(user_id, None)

    async def invalidate(self, user_id: int | None) -> None:
        """Forget a user here at once and in every other process via Redis."""
        self.drop(user_id)
        await publish(self._redis, user_id)

    # ---- the Redis listener ----

    async def start(self) -> None:
        if self._redis is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(self._redis), name="accounts-invalidation-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self, redis: Redis) -> None:
        while True:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.drop()  # anything may have changed while we were not subscribed
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._on_message(message.get("data"))
            except (RedisError, OSError) as exc:
                log.warning("account invalidation listener lost Redis (%s); retrying", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _on_message(self, data: object) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        if text == ALL:
            self.drop()
        elif text.isdigit():
            self.drop(int(text))
