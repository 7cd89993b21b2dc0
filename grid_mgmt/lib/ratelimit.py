"""Rate limits in Redis, shared by every API process: fixed windows per subject, checked in one round trip (which the
concurrent requests of a process share)."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from litestar.connection import ASGIConnection
from redis.asyncio import Redis
from redis.exceptions import RedisError

from grid_mgmt.lib.errors import DomainError
from grid_mgmt.lib.groupcommit import GroupCommit
from grid_mgmt.settings import Settings

log = logging.getLogger(__name__)
KEY_PREFIX = "grid:rate:"

_COUNT = """
local out = {}
for i, key in ipairs(KEYS) do
  local hits = redis.call('INCR', key)
  local ttl = redis.call('TTL', key)
  if ttl < 0 then
    redis.call('EXPIRE', key, ARGV[i])
    ttl = tonumber(ARGV[i])
  end
  out[2 * i - 1] = hits
  out[2 * i] = ttl
end
return out
"""
"""Counts one hit on each key (a new counter's window starts now) and answers hits and seconds left per key: one
command and one reply for the limits of many requests (a MULTI/INCR/EXPIRE/TTL/EXEC pipeline per request cost the API
~60 µs more per request; one script call per request costs the API 40–42 µs of CPU, one per batch of 32 concurrent
requests 11 µs per request)."""

Counts = GroupCommit[tuple[list[str], list[int]], list[int] | None]
"""(keys, windows) of one request → [hits, seconds left] per key, or None while Redis cannot be reached."""
_COUNTERS: WeakKeyDictionary[Redis, Counts] = WeakKeyDictionary()


class RateLimited(DomainError):
    """Too many requests (429); `retry_after` seconds until the limit that was hit lets the next one through."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int, limit: str):
        super().__init__(
            detail,
            extra={"retry_after": retry_after, "limit": limit},
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `max_hits` per `window_s` seconds per subject; `name` keys it and says what it counts."""

    name: str
    max_hits: int
    window_s: int
    what: str = "requests"
    """How the 429 names what was counted ("reports from this address")."""


class RateLimiter:
    """Counts hits per (limit, subject) in Redis: a window starts with the first hit and lasts `window_s`.

    Every hit counts, refused ones too (a flood stays refused until its window ends). All limits of one request are
    counted by one script, atomically; the requests of a process that arrive while a count is on its way are
    counted together by the next call (`lib.groupcommit`): one round trip each. Redis down: the request goes through
    and a warning is logged — the limits protect the service, they must not stop it (the database is the truth).
    """

    def __init__(self, redis: Redis | None, prefix: str = KEY_PREFIX):
        self._redis = redis
        self._prefix = prefix
        self._counts = _counter(redis) if redis is not None else None

    def key(self, limit: Limit, subject: str) -> str:
        """The Redis key of a subject's counter (hashed: no addresses, phones or e-mails in Redis keys)."""
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return f"{self._prefix}{limit.name}:{digest}"

    async def hit(self, *checks: tuple[Limit, str | None]) -> None:
        """Count one hit for each (limit, subject); 429 naming the first limit over its maximum.

        A subject of None and a limit of max_hits ≤ 0 are skipped.
        """
        active = [(limit, subject) for limit, subject in checks if subject is not None and limit.max_hits > 0]
        if self._counts is None or not active:
            return
        keys = [self.key(limit, subject) for limit, subject in active]
        replies = await self._counts.submit((keys, [limit.window_s for limit, _ in active]))
        if replies is None:  # Redis is down (logged)
            return
        for i, (limit, _) in enumerate(active):
            count, ttl = int(replies[2 * i]), int(replies[2 * i + 1])
            if count > limit.max_hits:
                retry_after = ttl if ttl > 0 else limit.window_s
                raise RateLimited(
                    f"too many {limit.what}: at most {limit.max_hits} per {_span(limit.window_s)}; "
                    f"try again in {retry_after} s",
                    retry_after,
                    limit.name,
                )

    async def reset(self, limit: Limit, subject: str) -> None:
        """Forget a subject's count (tests, an operator lifting a block)."""
        if self._redis is None:
            return
        try:
            await self._redis.delete(self.key(limit, subject))
        except (RedisError, OSError) as exc:
            log.warning("rate limits unavailable (%s)", exc)


def _counter(redis: Redis) -> Counts:
    """The process's counting calls on `redis`: the limits of concurrent requests in one script call."""
    found = _COUNTERS.get(redis)
    if found is None:
        script = redis.register_script(_COUNT)

        async def count(batch: list[tuple[list[str], list[int]]]) -> list[list[int] | None]:
            try:
                replies = await script(keys=[k for keys, _ in batch for k in keys],
                                       args=[w for _, windows in batch for w in windows])  # fmt: skip
            except (RedisError, OSError) as exc:
                log.warning("rate limits unavailable (%s); letting %d request(s) through", exc, len(batch))
                return [None] * len(batch)
            out: list[list[int] | None] = []
            start = 0
            for keys, _ in batch:
                out.append([int(r) for r in replies[start : start + 2 * len(keys)]])
                start += 2 * len(keys)
            return out

        found = _COUNTERS[redis] = GroupCommit(count, max_batch=256)
    return found


class ClientAddress:
    """Who is calling: the socket's peer address, or — when that peer is a trusted reverse proxy — the client the
    proxy names in `header` (X-Forwarded-For: `client, proxy1, proxy2`).

    The header is read right to left and trusted proxies are skipped: the first other address is the one our own
    proxy saw. Entries further left were written by the client and prove nothing, so a client behind a trusted
    proxy cannot pick its address; a client talking to us directly cannot use the header at all.
    """

    def __init__(self, header: str, proxies: str):
        self.header = header.strip().lower()
        self._networks = tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies.split(",") if p.strip())

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def resolve(self, peer: str | None, header_value: str | None) -> str:
        """The client's address (or "unknown" without a peer, e.g. a Unix socket without a trusted header)."""
        client = peer or "unknown"
        if not self.header or not header_value or not self._trusted(client):
            return client
        for hop in reversed([h.strip() for h in header_value.split(",")]):
            if self._trusted(hop):
                continue
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:  # not what a proxy writes: keep the proxy's own address
                return client
        return client


@lru_cache(maxsize=8)
def client_address(header: str, proxies: str) -> ClientAddress:
    """The resolver of a settings pair (GRID_TRUSTED_PROXY_HEADER, GRID_TRUSTED_PROXIES), built once per process."""
    return ClientAddress(header, proxies)


def client_of(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """The client address of a request under the app's settings (see ClientAddress)."""
    resolver = client_address(settings.trusted_proxy_header, settings.trusted_proxies)
    peer = connection.client.host if connection.client is not None else None
    return resolver.resolve(peer, connection.headers.get(resolver.header) if resolver.header else None)


def _span(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} s"
