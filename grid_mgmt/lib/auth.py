"""Who is calling: the authenticated principal, role guards, and the data-scope facts every feature uses.

The accounts feature authenticates (bearer JWT) and puts a `Principal` on `request.user`; features only read it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

CENTRE_ROLES = frozenset({"acceptor", "leader", "dispatcher"})
ALL_SEEING = frozenset({"supervisor", "admin", "system"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user with what data scope needs.

    `unit_codes` is the user's unit and all its descendants (unit staff see cases of their unit's subtree);
    `duty_grid_codes` are the unit grids of the worker's duty grids; `district_code` bounds centre roles.
    """

    user_id: int
    username: str
    roles: frozenset[str]
    unit_code: str | None = None
    district_code: str | None = None
    unit_codes: frozenset[str] = field(default_factory=frozenset)
    duty_grid_codes: frozenset[str] = field(default_factory=frozenset)
    token_version: int = 0

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def sees_all(self) -> bool:
        return bool(self.roles & ALL_SEEING)


SYSTEM = Principal(user_id=0, username="system", roles=frozenset({"system"}))
"""The workers and sweeps acting on their own (auto-dispatch, duplicates, deadlines); no user row behind it."""


def current(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller; 401 when the request carries no valid token."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("log in first: send Authorization: Bearer <access_token>")
    return user


def requires(
    *roles: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Coroutine[Any, Any, None]]:
    """A Litestar guard: 401 without a token, 403 unless the caller holds one of `roles`.

    A coroutine function: Litestar runs a plain function guard in a worker thread on every request."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        holding(connection, *roles)

    return guard


def holding(connection: ASGIConnection[Any, Any, Any, Any], *roles: str) -> Principal:
    """The caller, who holds one of `roles` (any role when none is named): 401 without a token, 403 without the
    role. What `requires` checks, for a hot handler to check itself (Litestar copies the handler for every guard
    it runs)."""
    principal = current(connection)
    if roles and not principal.has(*roles):
        raise PermissionDeniedException(f"this needs one of the roles: {', '.join(roles)}")
    return principal


authenticated = requires()
"""Guard: any logged-in user."""
