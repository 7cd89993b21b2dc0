"""Stream tickets: a short-lived stand-in for the access token where a browser cannot send a header.

A browser's `EventSource` opens `GET /api/v1/events` with no way to add `Authorization`. A console first asks
`POST /api/v1/auth/stream-ticket` (with its bearer token) for a ticket, then opens
`/api/v1/events?ticket=<ticket>`. The ticket is random, stored in Redis only as its sha256 with the access token it
stands for, lives GRID_STREAM_TICKET_TTL_S (60 s, never longer than the token) and is accepted only on
TICKET_PATHS, so one seen in a proxy's access log opens nothing else and soon nothing at all. It stays valid for
its whole life (EventSource reconnects with the same URL); the token behind it is checked as usual on every use,
so logging out everywhere, a password change or deactivating the account ends it too.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.parse

from litestar.types import Scope
from redis.asyncio import Redis

TICKET_PATHS = frozenset({"/api/v1/events", "/api/v1/events/"})
"""The paths where `?ticket=` may stand in for the Authorization header."""
_KEY = "grid:stream-ticket:"
REDIS_DOWN = "stream tickets are kept in Redis, which does not answer: retry"
"""The 503 when Redis is down (a ticket can be neither issued nor redeemed)."""


def _key(ticket: str) -> str:
    return _KEY + hashlib.sha256(ticket.encode()).hexdigest()


async def issue(redis: Redis, access_token: str, ttl_s: int) -> str:
    """A new ticket for `access_token`, valid `ttl_s` seconds."""
    ticket = secrets.token_urlsafe(24)
    await redis.set(_key(ticket), access_token, ex=max(1, ttl_s))
    return ticket


async def redeem(redis: Redis, ticket: str) -> str | None:
    """The access token a ticket stands for; None when it is unknown or has expired."""
    if not 16 <= len(ticket) <= 64:
        return None
    found = await redis.get(_key(ticket))
    return found.decode() if isinstance(found, bytes) else found


def ticket_of(scope: Scope) -> str | None:
    """The `ticket` query parameter of a request to a TICKET_PATHS path, else None."""
    if scope["path"] not in TICKET_PATHS or not scope.get("query_string"):
        return None
    values = urllib.parse.parse_qs(scope["query_string"].decode("latin-1")).get("ticket")
    return values[0] if values else None
