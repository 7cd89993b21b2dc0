"""Login sessions (login, refresh with rotation, logout) and user administration; used by the API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from msgspec import UNSET
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.accounts import repository as repo
from grid_mgmt.accounts import rules
from grid_mgmt.accounts.passwords import hash_password, verify_password
from grid_mgmt.accounts.principals import PrincipalCache, publish
from grid_mgmt.accounts.rules import BAD_CREDENTIALS, AuthFailed, Throttled
from grid_mgmt.accounts.schemas import TokenRead, UserCreate, UserPage, UserPatch, UserRead
from grid_mgmt.accounts.throttle import LoginThrottle
from grid_mgmt.accounts.tokens import TokenCodec, hash_refresh_token, new_refresh_token
from grid_mgmt.lib.errors import Conflict, InvalidInput, NotFound
from grid_mgmt.lib.pagination import check_limit, decode_cursor, encode_cursor
from grid_mgmt.settings import Settings

SCOPE_FIELDS = ("roles", "unit_code", "district_code")
"""Changing one of these re-issues access tokens (token_version + 1): the token's claims must not lie."""


class AccountService:
    """Everything about users and sessions. After a change that affects authentication, the user is dropped from
    the principal cache of this process (`cache`) and of every other process (published on `redis`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        redis: Redis | None = None,
        cache: PrincipalCache | None = None,
        codec: TokenCodec | None = None,
    ):
        self.engine = engine
        self.settings = settings
        self.redis = redis
        self.cache = cache
        self.codec = codec or TokenCodec.from_settings(settings)
        self.throttle = LoginThrottle(redis, settings.login_max_failures, settings.login_failure_window_s)

    async def _changed(self, user_id: int) -> None:
        if self.cache is not None:
            await self.cache.invalidate(user_id)
        else:
            await publish(self.redis, user_id)

    # ---- sessions ----

    async def login(self, username: str, password: str, *, address: str, user_agent: str | None = None) -> TokenRead:
        """A new session; 401 with one message for every failure, 429 after too many from this address."""
        retry_after = await self.throttle.retry_after(username, address)
        if retry_after is not None:
            raise Throttled(f"too many failed logins: try again in {retry_after} s", retry_after)
        async with self.engine.connect() as conn:
            row = await repo.login_row(conn, username)
        ok, rehash = await verify_password(row.password_hash if row is not None else None, password)
        if row is None or not ok or not row.active:
            await self.throttle.failed(username, address)
            raise AuthFailed(BAD_CREDENTIALS)
        new_hash = await hash_password(password) if rehash else None
        async with self.engine.begin() as conn:
            if new_hash is not None:
                await repo.update_user(conn, row.id, {"password_hash": new_hash})
            tokens = await self._start_session(conn, row.id, row.token_version, user_agent)
        await self.throttle.succeeded(username, address)
        return tokens

    async def _start_session(
        self, conn: AsyncConnection, user_id: int, token_version: int, user_agent: str | None,
        family_id: int | None = None,
    ) -> TokenRead:  # fmt: skip
        """A new pair: a login's first refresh token, or (with `family_id`) the next of its chain."""
        user = await repo.get_user(conn, user_id)
        assert user is not None
        refresh, refresh_hash = new_refresh_token()
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.settings.refresh_token_days)
        await repo.insert_session(
            conn, user_id, refresh_hash, expires_at, (user_agent or "")[:200] or None, family_id=family_id
        )
        access, _ = self.codec.issue(
            user_id=user_id,
            roles=user.roles,
            unit=user.unit_code,
            district=user.district_code,
            token_version=token_version,
        )
        return TokenRead(access_token=access, refresh_token=refresh, expires_in=self.codec.lifetime_s, user=user)

    async def refresh(self, refresh_token: str, *, user_agent: str | None = None) -> TokenRead:
        """Trade a live refresh token for a new pair of the same login; the old one is revoked.

        A phone that lost the answer sends the old token again: within GRID_REFRESH_RETRY_S of the rotation, and
        while the token it made is unused, that token is replaced by a new pair (once; it counts as reused if it
        shows up later). Otherwise presenting a rotated token means two parties hold it (one copied it): that
        login's chain ends (its newest refresh token too, whoever holds it) and every access token of the user dies
        at once, so a thief's is useless; the user's other logins (other devices) keep their refresh tokens and get
        new access tokens by refreshing.
        """
        token_hash = hash_refresh_token(refresh_token)
        reused_by: int | None = None
        session = None
        async with self.engine.begin() as conn:
            rotated = await repo.rotate_session(conn, token_hash)
            if rotated is None:
                session = await repo.find_session(conn, token_hash)
                if session is not None and session.rotated and self.settings.refresh_retry_s > 0:
                    rotated = await repo.rotate_unused_successor(conn, session, self.settings.refresh_retry_s)
            if rotated is None:
                if session is not None and session.rotated:
                    reused_by = session.user_id
                    await repo.end_family(conn, session.family_id)
                    await repo.bump_token_version(conn, session.user_id)
                tokens = None
            else:
                row = await repo.login_row(conn, user_id=rotated.user_id)
                if row is not None and row.active:
                    tokens = await self._start_session(
                        conn, rotated.user_id, row.token_version, user_agent, family_id=rotated.family_id
                    )
                else:
                    tokens = None
        if reused_by is not None:
            await self._changed(reused_by)
            raise AuthFailed(
                "this refresh token was already used: this login has ended on every device that held it; log in"
                " again (other logins refresh as usual)"
            )
        if tokens is None:
            raise AuthFailed("the refresh token is unknown, expired or revoked: log in again")
        return tokens

    async def logout(self, refresh_token: str | None, *, everywhere: bool = False, user_id: int | None = None) -> int:
        """End the session of `refresh_token`; with `everywhere` every session and access token of the user
        (the caller's, or the token owner's). Idempotent; returns how many sessions ended."""
        if refresh_token is None and not everywhere:
            raise InvalidInput("send the refresh_token to end, or everywhere: true", extra={"field": "refresh_token"})
        ended = 0
        async with self.engine.begin() as conn:
            if refresh_token is not None:
                owner = await repo.end_session(conn, hash_refresh_token(refresh_token))
                ended += owner is not None
                user_id = user_id if user_id is not None else owner
            if everywhere:
                if user_id is None:
                    raise AuthFailed("log in first, or send a live refresh_token, to log out everywhere")
                ended += await repo.end_all_sessions(conn, user_id)
                await repo.bump_token_version(conn, user_id)
        if everywhere and user_id is not None:
            await self._changed(user_id)
        return ended

    async def me(self, user_id: int) -> UserRead:
        return await self.get_user(user_id)

    # ---- administration ----

    async def list_users(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        role: str | None = None,
        unit_code: str | None = None,
        active: bool | None = None,
        q: str | None = None,
    ) -> UserPage:
        size = check_limit(limit, default=self.settings.default_page_size, maximum=self.settings.max_page_size)
        after = decode_cursor(cursor)
        async with self.engine.connect() as conn:
            users = await repo.list_users(
                conn, after=after, limit=size + 1, role=role, unit_code=unit_code, active=active, q=q
            )
        more = len(users) > size
        users = users[:size]
        return UserPage(items=users, next_cursor=encode_cursor(users[-1].username) if more and users else None)

    async def get_user(self, user_id: int) -> UserRead:
        async with self.engine.connect() as conn:
            user = await repo.get_user(conn, user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        return user

    async def find_user(self, username: str) -> UserRead:
        """The user with this username (exact); 404 naming it."""
        async with self.engine.connect() as conn:
            user_id = await repo.user_id_by_username(conn, username)
            user = await repo.get_user(conn, user_id) if user_id is not None else None
        if user is None:
            raise NotFound(f"no user named {username!r}")
        return user

    async def create_user(self, data: UserCreate) -> UserRead:
        """A new user; 409 when the username (ignoring case) exists, 422 for anything unacceptable."""
        username = rules.check_username(data.username)
        rules.check_password(data.password, username)
        values: dict[str, Any] = {
            "username": username,
            "display_name": rules.check_display_name(data.display_name),
            "roles": rules.check_roles(data.roles),
            "unit_code": data.unit_code,
            "district_code": data.district_code,
            "phone": rules.check_phone(data.phone),
        }
        duty = list(dict.fromkeys(data.duty_grid_codes))
        rules.check_scope(values["roles"], data.unit_code, duty)
        async with self.engine.connect() as conn:
            await _check_references(conn, data.unit_code, data.district_code, duty)
            if await repo.username_taken(conn, username):
                raise Conflict(f"the username {username!r} is taken", extra={"field": "username"})
        values["password_hash"] = await hash_password(data.password)
        async with self.engine.begin() as conn:
            user_id = await repo.insert_user(conn, values)
            if user_id is None:
                raise Conflict(f"the username {username!r} is taken", extra={"field": "username"})
            if duty:
                await repo.set_duty_grids(conn, user_id, duty)
            user = await repo.get_user(conn, user_id)
        assert user is not None
        return user

    async def update_user(self, user_id: int, patch: UserPatch, *, actor_id: int | None = None) -> UserRead:
        """Change the fields sent; changes of roles, unit or district end every access token of the user."""
        async with self.engine.begin() as conn:
            user = await _locked(conn, user_id)
            wanted: dict[str, Any] = {}
            if patch.display_name is not UNSET:
                wanted["display_name"] = rules.check_display_name(patch.display_name)
            if patch.roles is not UNSET:
                wanted["roles"] = rules.check_roles(patch.roles)
            if patch.unit_code is not UNSET:
                wanted["unit_code"] = patch.unit_code
            if patch.district_code is not UNSET:
                wanted["district_code"] = patch.district_code
            if patch.phone is not UNSET:
                wanted["phone"] = rules.check_phone(patch.phone)
            duty = list(dict.fromkeys(patch.duty_grid_codes)) if patch.duty_grid_codes is not UNSET else None
            roles = wanted.get("roles", user.roles)
            if actor_id == user_id and "admin" not in roles:
                raise Conflict("you cannot take the admin role from yourself", extra={"field": "roles"})
            rules.check_scope(
                roles, wanted.get("unit_code", user.unit_code), user.duty_grid_codes if duty is None else duty
            )
            changes = {k: v for k, v in wanted.items() if _differs(v, getattr(user, k))}
            await _check_references(conn, changes.get("unit_code"), changes.get("district_code"), duty or [])
            bump = any(k in changes for k in SCOPE_FIELDS)
            await repo.update_user(conn, user_id, changes, bump=bump)
            if duty is not None and sorted(duty) != sorted(user.duty_grid_codes):
                await repo.set_duty_grids(conn, user_id, duty)
            updated = await repo.get_user(conn, user_id)
        assert updated is not None
        await self._changed(user_id)
        return updated

    async def set_active(self, user_id: int, active: bool, *, actor_id: int | None = None) -> UserRead:
        """Activate, or deactivate (every session and access token of the user ends)."""
        if not active and actor_id == user_id:
            raise Conflict("you cannot deactivate yourself")
        async with self.engine.begin() as conn:
            user = await _locked(conn, user_id)
            if user.active != active:
                await repo.update_user(conn, user_id, {"active": active}, bump=not active)
            if not active:
                await repo.end_all_sessions(conn, user_id)
            updated = await repo.get_user(conn, user_id)
        assert updated is not None
        await self._changed(user_id)
        return updated

    async def set_password(self, user_id: int, password: str) -> UserRead:
        """A new password; every session and access token of the user ends."""
        user = await self.get_user(user_id)
        rules.check_password(password, user.username)
        password_hash = await hash_password(password)
        async with self.engine.begin() as conn:
            await _locked(conn, user_id)
            await repo.update_user(conn, user_id, {"password_hash": password_hash}, bump=True)
            await repo.end_all_sessions(conn, user_id)
        await self._changed(user_id)
        return user


def _differs(new: Any, old: Any) -> bool:
    return set(new) != set(old) if isinstance(new, list) else bool(new != old)


async def _locked(conn: AsyncConnection, user_id: int) -> UserRead:
    user = await repo.get_user(conn, user_id, lock=True)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


async def _check_references(
    conn: AsyncConnection, unit_code: str | None, district_code: str | None, duty_grid_codes: list[str]
) -> None:
    """422 naming the unknown unit, district or duty grids."""
    if unit_code is not None and not await repo.unit_exists(conn, unit_code):
        raise InvalidInput(f"no unit with code {unit_code!r}", extra={"field": "unit_code"})
    if district_code is not None and not await repo.district_exists(conn, district_code):
        raise InvalidInput(f"no district with code {district_code!r}", extra={"field": "district_code"})
    if duty_grid_codes:
        missing = await repo.missing_duty_grids(conn, duty_grid_codes)
        if missing:
            raise InvalidInput(
                f"no duty grid with code {', '.join(missing)}", extra={"field": "duty_grid_codes", "missing": missing}
            )
