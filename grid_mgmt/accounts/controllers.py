"""HTTP endpoints of login sessions (/api/v1/auth) and user administration (/api/v1/admin/users)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post
from litestar.di import Provide
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from redis.exceptions import RedisError

from grid_mgmt.accounts import tickets
from grid_mgmt.accounts.deps import Accounts, provide_accounts
from grid_mgmt.accounts.middleware import access_token
from grid_mgmt.accounts.schemas import (
    LoginPayload,
    LogoutPayload,
    PasswordPayload,
    RefreshPayload,
    Role,
    StreamTicketRead,
    TokenRead,
    UserCreate,
    UserPage,
    UserPatch,
    UserRead,
)
from grid_mgmt.lib.auth import Principal, authenticated, current, requires
from grid_mgmt.lib.deps import AppSettings
from grid_mgmt.lib.openapi import CURSOR, LIMIT, responses

_DESCRIPTIONS = {
    401: "No valid access token (missing where required, malformed, expired or revoked) or wrong credentials.",
    403: "The caller lacks the role this needs.",
    409: "The request collides with the current state (a taken username, locking yourself out).",
    429: "Too many failed logins from this address for this username: see the Retry-After header.",
}
USER_ID = Parameter(description="the user's id")
DEPENDENCIES = {"accounts": Provide(provide_accounts, sync_to_thread=False)}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """Documented error responses, worded for logins and user management."""
    return responses(*codes, descriptions=_DESCRIPTIONS)


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client is not None else "unknown"


def _caller(request: Request[Any, Any, Any]) -> Principal | None:
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


class AuthController(Controller):
    """Log in with username and password, refresh the session, log out, and who am I."""

    path = "/api/v1/auth"
    tags = ["auth"]
    dependencies = DEPENDENCIES

    @post(
        "/login",
        summary="Log in: an access token and a refresh token",
        status_code=HTTP_200_OK,
        responses=errors(400, 401, 429),
    )
    async def login(
        self, accounts: Accounts, request: Request[Any, Any, Any], data: JSONBody[LoginPayload]
    ) -> TokenRead:
        return await accounts.login(
            data.username, data.password, address=_address(request), user_agent=request.headers.get("user-agent")
        )

    @post(
        "/refresh",
        summary="Trade a refresh token for a new pair (the old one stops working)",
        description="A refresh token works once. A phone that lost the answer may send the same token again within "
        "GRID_REFRESH_RETRY_S seconds (30) while the new token is unused: it gets another pair and the lost token is "
        "replaced. Any other second use ends that login on every device that held it (401 `already used`).",
        status_code=HTTP_200_OK,
        responses=errors(400, 401),
    )
    async def refresh(
        self, accounts: Accounts, request: Request[Any, Any, Any], data: JSONBody[RefreshPayload]
    ) -> TokenRead:
        return await accounts.refresh(data.refresh_token, user_agent=request.headers.get("user-agent"))

    @post(
        "/logout",
        summary="End a session, or every session and access token (everywhere)",
        status_code=HTTP_204_NO_CONTENT,
        responses=errors(400, 401, 422),
    )
    async def logout(self, accounts: Accounts, request: Request[Any, Any, Any], data: JSONBody[LogoutPayload]) -> None:
        caller = _caller(request)
        await accounts.logout(
            data.refresh_token, everywhere=data.everywhere, user_id=caller.user_id if caller is not None else None
        )

    @post(
        "/stream-ticket",
        summary="A short-lived ticket that opens the event stream where no header can be sent (EventSource)",
        description=tickets.__doc__,
        status_code=HTTP_201_CREATED,
        guards=[authenticated],
        responses=errors(401, 503),
    )
    async def stream_ticket(self, request: Request[Any, Any, Any], settings: AppSettings) -> StreamTicketRead:
        token = access_token(request.scope) or ""  # a ticket opens only the event stream: this came as a header
        ttl = min(settings.stream_ticket_ttl_s, int(request.scope["auth"].exp - time.time()))
        try:
            ticket = await tickets.issue(request.app.state["redis"], token, ttl)
        except RedisError:
            raise ServiceUnavailableException(tickets.REDIS_DOWN) from None
        return StreamTicketRead(ticket=ticket, expires_in=max(1, ttl))

    @get("/me", summary="The logged-in user", guards=[authenticated], responses=errors(401))
    async def me(self, accounts: Accounts, request: Request[Any, Any, Any]) -> UserRead:
        return await accounts.me(current(request).user_id)


class AdminUserController(Controller):
    """User administration (role admin): accounts, roles, units, duty grids, activation and passwords."""

    path = "/api/v1/admin/users"
    tags = ["admin"]
    guards = [requires("admin")]
    dependencies = DEPENDENCIES

    @get("/", summary="List users", responses=errors(400, 401, 403, 422))
    async def list_users(
        self,
        accounts: Accounts,
        limit: LIMIT = None,
        cursor: CURSOR = None,
        role: Annotated[Role | None, Parameter(description="users holding this role")] = None,
        unit_code: Annotated[str | None, Parameter(description="staff of this unit")] = None,
        active: Annotated[bool | None, Parameter(description="only active or only deactivated users")] = None,
        q: Annotated[str | None, Parameter(description="part of the username, display name or phone")] = None,
    ) -> UserPage:
        return await accounts.list_users(limit=limit, cursor=cursor, role=role, unit_code=unit_code, active=active, q=q)

    @post("/", summary="Create a user", status_code=HTTP_201_CREATED, responses=errors(400, 401, 403, 409, 422))
    async def create_user(self, accounts: Accounts, data: JSONBody[UserCreate]) -> UserRead:
        return await accounts.create_user(data)

    @get("/{user_id:int}", summary="One user", responses=errors(401, 403, 404))
    async def get_user(self, accounts: Accounts, user_id: Annotated[int, USER_ID]) -> UserRead:
        return await accounts.get_user(user_id)

    @patch(
        "/{user_id:int}", summary="Change a user (fields not sent stay)", responses=errors(400, 401, 403, 404, 409, 422)
    )
    async def update_user(
        self,
        accounts: Accounts,
        request: Request[Any, Any, Any],
        user_id: Annotated[int, USER_ID],
        data: JSONBody[UserPatch],
    ) -> UserRead:
        return await accounts.update_user(user_id, data, actor_id=current(request).user_id)

    @post(
        "/{user_id:int}/deactivate",
        summary="Deactivate a user: every session and token ends",
        status_code=HTTP_200_OK,
        responses=errors(401, 403, 404, 409),
    )
    async def deactivate(
        self, accounts: Accounts, request: Request[Any, Any, Any], user_id: Annotated[int, USER_ID]
    ) -> UserRead:
        return await accounts.set_active(user_id, False, actor_id=current(request).user_id)

    @post(
        "/{user_id:int}/activate",
        summary="Activate a user again",
        status_code=HTTP_200_OK,
        responses=errors(401, 403, 404),
    )
    async def activate(self, accounts: Accounts, user_id: Annotated[int, USER_ID]) -> UserRead:
        return await accounts.set_active(user_id, True)

    @post(
        "/{user_id:int}/password",
        summary="Set a user's password: every session and token ends",
        status_code=HTTP_200_OK,
        responses=errors(400, 401, 403, 404, 422),
    )
    async def set_password(
        self, accounts: Accounts, user_id: Annotated[int, USER_ID], data: JSONBody[PasswordPayload]
    ) -> UserRead:
        return await accounts.set_password(user_id, data.password)
