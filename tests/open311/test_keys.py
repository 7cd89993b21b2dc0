"""Open311 api keys: the admin API and the `grid-mgmt open311-key` command; only a key's sha256 is stored."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from grid_mgmt.open311 import cli
from grid_mgmt.open311.rules import key_digest
from grid_mgmt.settings import Settings
from seeds.open311 import DEMO_KEY

KEYS = "/api/v1/open311/keys"


async def test_admins_make_list_and_revoke_keys(
    client: AsyncTestClient, pg: asyncpg.Connection, auth_headers: Callable[..., Any]
) -> None:
    admin = await auth_headers("admin")
    r = await client.post(KEYS, json={"name": "FixMyStreet 竹山"}, headers=admin)
    assert r.status_code == 201
    made = r.json()
    key = made.pop("key")
    assert len(key) >= 40 and made["key_prefix"] == key[:8] and made["active"] and made["last_used_at"] is None
    row = await pg.fetchrow("SELECT * FROM open311_key WHERE id = $1", made["id"])
    assert row["key_sha256"] == key_digest(key) and key not in str(dict(row))  # the key itself is not stored
    listed = (await client.get(KEYS, params={"limit": 1000}, headers=admin)).json()
    mine = next(k for k in listed["items"] if k["id"] == made["id"])
    assert mine == made and all("key" not in k for k in listed["items"])
    r = await client.post(f"{KEYS}/{made['id']}/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    again = await client.post(f"{KEYS}/{made['id']}/revoke", headers=admin)
    assert again.status_code == 200 and again.json()["active"] is False  # revoking twice changes nothing


async def test_key_pages(client: AsyncTestClient, auth_headers: Callable[..., Any]) -> None:
    admin = await auth_headers("admin")
    for i in range(3):
        assert (await client.post(KEYS, json={"name": f"paged {i}"}, headers=admin)).status_code == 201
    first = (await client.get(KEYS, params={"limit": 2}, headers=admin)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await client.get(KEYS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin)).json()
    assert second["items"][0]["id"] > first["items"][-1]["id"]


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "status"),
    [
        (None, "get", KEYS, None, 401),
        ("dispatcher1", "get", KEYS, None, 403),
        ("supervisor1", "post", KEYS, {"name": "x"}, 403),
        ("worker1", "post", f"{KEYS}/1/revoke", None, 403),
        ("admin", "post", f"{KEYS}/999999/revoke", None, 404),
        ("admin", "post", KEYS, {"name": ""}, 400),
        ("admin", "post", KEYS, {"name": "   "}, 400),
        ("admin", "post", KEYS, {"name": "x" * 101}, 400),
        ("admin", "post", KEYS, {"nom": "x"}, 400),
        ("admin", "get", f"{KEYS}?limit=0", None, 422),
    ],
)
async def test_key_administration_refusals(
    client: AsyncTestClient, auth_headers: Callable[..., Any], user: str | None, method: str, path: str,
    body: dict[str, Any] | None, status: int,
) -> None:  # fmt: skip
    headers = await auth_headers(user) if user else {}
    kwargs: dict[str, Any] = {"headers": headers} | ({"json": body} if body is not None else {})
    r = await getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text


async def test_the_demo_key_is_seeded(pg: asyncpg.Connection) -> None:
    row = await pg.fetchrow("SELECT * FROM open311_key WHERE key_sha256 = $1", key_digest(DEMO_KEY))
    assert row is not None and row["active"] and row["key_prefix"] == DEMO_KEY[:8]


async def test_the_command_line(settings: Settings, pg: asyncpg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run(["create", "cli client"], settings) == 0
    out = capsys.readouterr().out
    key = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("api_key: "))
    row = await pg.fetchrow("SELECT * FROM open311_key WHERE key_sha256 = $1", key_digest(key))
    assert row["name"] == "cli client" and row["active"]
    assert await _run(["list"], settings) == 0
    listing = capsys.readouterr().out
    assert "cli client" in listing and key not in listing and key[:8] in listing
    assert await _run(["revoke", "cli client"], settings) == 0
    assert "revoked" in capsys.readouterr().out
    assert not await pg.fetchval("SELECT active FROM open311_key WHERE id = $1", row["id"])
    assert await _run(["revoke", str(row["id"])], settings) == 0
    capsys.readouterr()
    assert await _run(["revoke", "no such client"], settings) == 1
    assert "no key is named" in capsys.readouterr().err
    assert await _run(["revoke", "99999999"], settings) == 1
    assert await _run(["create"], settings) == 2  # usage: the name is missing


async def _run(argv: list[str], settings: Settings) -> int:
    """`grid-mgmt open311-key …` against the test database (in a thread: the command runs its own event loop)."""
    parser = argparse.ArgumentParser(prog="grid-mgmt")
    cli.register(parser.add_subparsers(dest="command"))
    try:
        args = parser.parse_args(["open311-key", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    args.settings = settings
    return int(await asyncio.to_thread(args.func, args))
