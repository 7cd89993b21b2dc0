"""Helpers of the accounts tests: users of our own with unique names (never disturb the shared demo users)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import plain

PASSWORD = "correct horse 9"


def unique(prefix: str = "acct") -> str:
    """A username no other test uses."""
    return f"{prefix}-{secrets.token_hex(5)}"


@pytest.fixture
async def cleanup(database_url: str) -> AsyncIterator[list[str]]:
    """Usernames to remove after the test, so other features' tests (routing, checkers…) only meet demo users."""
    usernames: list[str] = []
    yield usernames
    if not usernames:
        return
    conn = await asyncpg.connect(plain(database_url))
    try:
        try:
            await conn.execute("DELETE FROM app_user WHERE username = ANY($1::text[])", usernames)
        except asyncpg.ForeignKeyViolationError:  # something refers to them: take them out of service instead
            ids = "SELECT id FROM app_user WHERE username = ANY($1::text[])"
            await conn.execute(f"DELETE FROM duty_grid_worker WHERE user_id IN ({ids})", usernames)
            await conn.execute("UPDATE app_user SET active = false WHERE username = ANY($1::text[])", usernames)
    finally:
        await conn.close()


@pytest.fixture
def make_user(
    client: AsyncTestClient[Litestar], auth_headers: Callable[..., Awaitable[dict[str, str]]], cleanup: list[str]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`user = await make_user(roles=["worker"], duty_grid_codes=[...])`: created through the admin API and
    deleted after the test; the returned dict is the UserRead plus the `password`."""

    async def make(*, roles: list[str] | None = None, password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
        body = {
            "username": unique(),
            "password": password,
            "display_name": "测试用户",
            "roles": roles or ["acceptor"],
            **fields,
        }
        cleanup.append(body["username"])
        r = await client.post("/api/v1/admin/users", json=body, headers=await auth_headers("admin"))
        assert r.status_code == 201, r.text
        return {**r.json(), "password": password}

    return make


async def login_body(client: AsyncTestClient[Litestar], username: str, password: str = PASSWORD) -> dict[str, Any]:
    """The whole login answer (tokens and user)."""
    r = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
