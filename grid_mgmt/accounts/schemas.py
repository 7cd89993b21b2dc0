"""Request and response structs of login sessions and user administration."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from grid_mgmt.lib.schemas import ItemPage, Schema

Role = Literal["worker", "acceptor", "leader", "dispatcher", "unit_staff", "supervisor", "admin"]
"""The roles a user can hold (the same list as `grid_mgmt.db.models.user.ROLES`)."""

Username = Annotated[str, Meta(description="2–64 characters: letters, digits and _ . @ -", examples=["worker1"])]
Password = Annotated[str, Meta(description="8–256 characters, not the username")]
DisplayName = Annotated[str, Meta(description="1–100 characters, the name shown to others")]
Phone = Annotated[str, Meta(description="up to 30 characters: digits, spaces and + - ( )")]
DutyGrids = Annotated[list[str], Meta(description="codes of the duty grids a worker patrols (workers only)")]


class UserRead(Schema):
    """A user; `duty_grid_codes` are the duty grids (责任网格) a worker is assigned to."""

    id: int
    username: str
    display_name: str
    roles: list[Role]
    unit_code: str | None
    district_code: str | None
    phone: str | None
    active: bool
    duty_grid_codes: list[str]
    created_at: dt.datetime


class UserCreate(Schema):
    """A new user. Unit staff need an existing `unit_code`; only workers take `duty_grid_codes`."""

    username: Username
    password: Password
    display_name: DisplayName
    roles: Annotated[list[Role], Meta(description="at least one role")]
    unit_code: str | None = None
    district_code: str | None = None
    phone: Phone | None = None
    duty_grid_codes: DutyGrids = msgspec.field(default_factory=list)


class UserPatch(Schema):
    """Fields to change; a field not sent stays as it is, `null` clears it. Role and unit changes log the user
    out of every access token (they refresh to get the new ones)."""

    display_name: DisplayName | UnsetType = UNSET
    roles: list[Role] | UnsetType = UNSET
    unit_code: str | UnsetType | None = UNSET
    district_code: str | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    duty_grid_codes: DutyGrids | UnsetType = UNSET


class UserPage(ItemPage[UserRead]):
    """A page of users ordered by username."""


class PasswordPayload(Schema):
    """The new password; every session of the user ends."""

    password: Password


class LoginPayload(Schema):
    """Username and password."""

    username: Annotated[str, Meta(max_length=200)]
    password: Annotated[str, Meta(max_length=1024)]


class RefreshPayload(Schema):
    """The refresh token of the session to continue; it is replaced by the one in the answer."""

    refresh_token: Annotated[str, Meta(max_length=200)]


class LogoutPayload(Schema):
    """End the session of `refresh_token`; `everywhere` ends every session and access token of the user."""

    refresh_token: Annotated[str, Meta(max_length=200)] | None = None
    everywhere: bool = False


class StreamTicketRead(Schema):
    """Open `GET /api/v1/events?ticket=<ticket>` (e.g. with a browser's EventSource) within `expires_in` seconds;
    the ticket opens nothing else."""

    ticket: str
    expires_in: int


class TokenRead(Schema):
    """A login: send `Authorization: Bearer <access_token>`; before `expires_in` seconds pass, trade
    `refresh_token` at /api/v1/auth/refresh for a new pair (each refresh token works once)."""

    access_token: str
    refresh_token: str
    expires_in: int
    user: UserRead
    token_type: Literal["bearer"] = "bearer"
