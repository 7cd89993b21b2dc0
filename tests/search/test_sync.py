"""GET /api/v1/sync: the first walk, only newer changes afterwards, the overlap that catches late commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from grid_mgmt.lib.pagination import encode_cursor
from grid_mgmt.tasks.service import SYNC_OVERLAP, SyncCursor
from tests.search.conftest import World

Headers = Callable[..., Awaitable[dict[str, str]]]


async def walk(
    client: AsyncTestClient, headers: dict[str, str], cursor: str | None = None, limit: int = 500
) -> tuple[list[dict[str, Any]], str, list[dict[str, Any]]]:
    """Sync until has_more is false: (every answer's cases in order, the resting cursor, the answers)."""
    cases: list[dict[str, Any]] = []
    answers = []
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/api/v1/sync", params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        answers.append(body)
        cases.extend(body["cases"])
        cursor = body["cursor"]
        if not body["has_more"]:
            return cases, body["cursor"], answers


def mine(world: World, cases: list[dict[str, Any]]) -> list[int]:
    return [c["id"] for c in cases if c["id"] in world.all]


async def test_first_sync_pages_through_the_current_state_once(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    w1 = await auth_headers("worker1")
    cases, _, answers = await walk(client, w1, limit=3)
    assert len(answers) > 3 and all(a["has_more"] for a in answers[:-1])
    assert all(len(a["cases"]) <= 3 for a in answers)
    got = [c["id"] for c in cases]
    assert len(got) == len(set(got))  # within a walk every case comes once
    expected = world.where(grid_code=world.grid_a) | world.id("closed_mine", "checking_assigned")
    assert set(mine(world, cases)) == expected
    keys = [(c["updated_at"], c["id"]) for c in cases]
    assert keys == sorted(keys)


async def test_answer_shape_tasks_and_dictionaries(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    r = await client.get("/api/v1/sync", params={"limit": 1}, headers=await auth_headers("worker1"))
    body = r.json()
    assert set(body) == {
        "cases", "tasks", "dictionaries", "categories_updated_at", "cursor", "has_more", "server_time"
    }  # fmt: skip
    tasks = {t["name"]: t for t in body["tasks"]}
    assert set(tasks) == {"verify", "check"}
    assert world.ids["verifying"] in tasks["verify"]["case_ids"]
    assert world.ids["checking_assigned"] in tasks["check"]["case_ids"]
    names = {d["name"] for d in body["dictionaries"]}
    assert {"category", "region", "grid", "unit", "duty_grid"} <= names
    assert all(isinstance(d["version"], int) for d in body["dictionaries"])
    assert body["categories_updated_at"] is not None


async def test_later_syncs_bring_only_newer_changes(
    client: AsyncTestClient, world: World, auth_headers: Headers, pg: asyncpg.Connection
) -> None:
    w1 = await auth_headers("worker1")
    _, cursor, _ = await walk(client, w1)
    again, cursor2, _ = await walk(client, w1, cursor)
    assert mine(world, again) == []  # the package's cases changed in 2021: nothing new
    await pg.execute(
        "UPDATE cases SET version = version + 1, updated_at = now() WHERE id = ANY($1::bigint[])",
        list(world.id("verifying", "checking_open")),
    )
    changed, cursor3, _ = await walk(client, w1, cursor2)
    assert sorted(mine(world, changed)) == sorted(world.id("verifying", "checking_open"))
    assert {c["version"] for c in changed if c["id"] == world.ids["verifying"]} == {2}
    # the same cursor gives the same answer (a lost response is simply asked again)
    repeated, _, _ = await walk(client, w1, cursor2)
    assert mine(world, repeated) == mine(world, changed)
    # out of scope changes do not come
    await pg.execute("UPDATE cases SET updated_at = now() WHERE id = $1", world.ids["dispatched"])
    later, _, _ = await walk(client, w1, cursor3)
    assert world.ids["dispatched"] not in mine(world, later)


async def test_a_late_commit_within_the_overlap_is_not_missed(
    client: AsyncTestClient, world: World, auth_headers: Headers, pg: asyncpg.Connection
) -> None:
    """A transaction that started 30 s ago commits only now: its updated_at lies before what we already read."""
    w1 = await auth_headers("worker1")
    await pg.execute("UPDATE cases SET updated_at = now() WHERE id = $1", world.ids["closed_mine"])
    _, cursor, _ = await walk(client, w1)
    state = SyncCursor.decode(cursor)
    assert state.walk_started is None and state.position is not None
    late = "UPDATE cases SET version = version + 1, updated_at = now() - make_interval(secs => $2) WHERE id = $1"
    await pg.execute(late, world.ids["checking_other"], SYNC_OVERLAP.total_seconds() / 2)
    changed, _, _ = await walk(client, w1, cursor)
    assert world.ids["checking_other"] in mine(world, changed)


@pytest.mark.parametrize("cursor", ["garbage!", encode_cursor("s1|1||"), encode_cursor("-received_at|1|2")])
async def test_a_foreign_cursor_is_422(client: AsyncTestClient, auth_headers: Headers, cursor: str) -> None:
    r = await client.get("/api/v1/sync", params={"cursor": cursor}, headers=await auth_headers("worker1"))
    assert r.status_code == 422 and "cursor" in r.json()["detail"]


async def test_sync_limits_and_login(client: AsyncTestClient, auth_headers: Headers) -> None:
    w1 = await auth_headers("worker1")
    assert (await client.get("/api/v1/sync", params={"limit": 501}, headers=w1)).status_code == 422
    assert (await client.get("/api/v1/sync")).status_code == 401


def test_cursor_round_trip() -> None:
    import datetime as dt

    at = dt.datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=dt.UTC)
    for state in (SyncCursor(None), SyncCursor((at, 42)), SyncCursor((at, 42), walk_started=at)):
        assert SyncCursor.decode(state.encode()) == state
