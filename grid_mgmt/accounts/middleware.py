"""Bearer-token authentication: turns `Authorization: Bearer <access token>` into the request's `Principal`.

No header: the request passes with no user (features guard with `requires(...)`). A header that is not a
genuine, unexpired, unrevoked access token of an active user: 401. The hot path is one HMAC, one msgspec decode
and a dict lookup in the per-process principal cache (see `principals.py`); no database round trip on a hit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, ServiceUnavailableException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.exceptions import RedisError

from grid_mgmt.accounts import tickets
from grid_mgmt.accounts.principals import PrincipalCache
from grid_mgmt.accounts.tokens import AccessClaims, TokenCodec, TokenError
from grid_mgmt.lib.auth import Principal

PUBLIC_PREFIXES = ("/health", "/docs", "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/public/", "/open311/")
"""Paths that never look at the Authorization header (/docs covers /docs-assets)."""

STATE_KEY = "authenticator"


VERIFIED_MAX = 10_000
"""How many verified access tokens a process remembers (a phone sends its token with every request; the HMAC and
the decode are done once per token, not per request)."""


@dataclass(frozen=True, slots=True)
class Authenticator:
    """The token codec and principal cache of one app (kept in `app.state.authenticator`)."""

    codec: TokenCodec
    cache: PrincipalCache
    verified: dict[str, AccessClaims] = field(default_factory=dict)
    """Tokens whose signature was checked → their claims (expiry is checked on every use)."""

    async def principal(self, token: str) -> tuple[Principal, AccessClaims]:
        """The caller behind an access token; NotAuthorizedException (401) saying why not."""
        claims = self.verified.get(token)
        try:
            if claims is None:
                claims = self.codec.verify(token)
                if len(self.verified) >= VERIFIED_MAX:
                    self.verified.clear()
                self.verified[token] = claims
            elif claims.exp <= time.time():
                raise TokenError("the access token has expired: refresh it")
        except TokenError as exc:
            raise NotAuthorizedException(str(exc)) from None
        facts = await self.cache.get(claims.user_id)
        if facts is None or not facts.active:
            raise NotAuthorizedException("this account does not exist or is deactivated")
        if facts.token_version != claims.tv:
            raise NotAuthorizedException("the access token was revoked (logout, password or role change): refresh it")
        return facts.principal, claims


def bearer_token(scope: Scope) -> str | None:
    """The raw Authorization header value, or None without one."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


def access_token(scope: Scope) -> str | None:
    """The access token of an `Authorization: Bearer <token>` header; None without a header, 401 for another
    scheme or an empty token."""
    header = bearer_token(scope)
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("send Authorization: Bearer <access_token>")
    return token.strip()


class AuthMiddleware(ASGIMiddleware):
    """Sets `scope["user"]` (a Principal) and `scope["auth"]` (its AccessClaims) from a bearer token, or from a
    stream ticket on the paths that take one."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = await _credential(scope)
        if token is not None:
            authenticator: Authenticator = scope["litestar_app"].state[STATE_KEY]
            scope["user"], scope["auth"] = await authenticator.principal(token)
        await next_app(scope, receive, send)


async def _credential(scope: Scope) -> str | None:
    """The access token a request authenticates with: its bearer header (ignored on PUBLIC_PREFIXES), else the
    token behind its stream ticket; None for an anonymous request."""
    if bearer_token(scope) is None:
        ticket = tickets.ticket_of(scope)
        return None if ticket is None else await _redeemed(scope, ticket)
    if scope["path"].startswith(PUBLIC_PREFIXES):
        return None
    return access_token(scope)


async def _redeemed(scope: Scope, ticket: str) -> str:
    """The access token behind a stream ticket: 401 when unknown or expired, 503 when Redis does not answer."""
    try:
        token = await tickets.redeem(scope["litestar_app"].state["redis"], ticket)
    except RedisError:
        raise ServiceUnavailableException(tickets.REDIS_DOWN) from None
    if token is None:
        raise NotAuthorizedException(
            "the stream ticket is unknown or has expired: ask POST /api/v1/auth/stream-ticket for a new one"
        )
    return token
