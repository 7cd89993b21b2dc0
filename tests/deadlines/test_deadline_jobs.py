"""Deadline jobs through the real worker: warnings, overdue steps and escalation, once per round; pauses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.routing.conftest import file_report, spot

Headers = Callable[..., Awaitable[dict[str, str]]]


async def _dispatched_case(client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection,
                           drain: Any, n: int) -> int:  # fmt: skip
    lon, lat = await spot(pg, n)
    case = await file_report(client, await auth_headers("worker1"), "E0501", lon, lat)  # auto-dispatched to U0104
    await drain()
    row = await pg.fetchrow("SELECT status, unit_code, deadline, deadline_round FROM cases WHERE id = $1", case["id"])
    assert row["status"] == "dispatched" and row["unit_code"] == "U0104" and row["deadline"] is not None
    return int(case["id"])


async def _time_passes(pg: asyncpg.Connection, case_id: int, *, warn_ago: int, due_ago: int | None) -> None:
    """Move the current round's warning and deadline into the past (as if the hours had gone by)."""
    await pg.execute(
        "UPDATE cases SET warn_at = now() - make_interval(mins => $2),"
        " deadline = CASE WHEN $3::int IS NULL THEN now() + interval '1 hour'"
        " ELSE now() - make_interval(mins => $3::int) END WHERE id = $1",
        case_id, warn_ago, due_ago,
    )  # fmt: skip


async def _system_rows(pg: asyncpg.Connection, case_id: int) -> list[str]:
    rows = await pg.fetch(
        "SELECT action FROM case_activity WHERE case_id = $1 AND actor_role = 'system' "
        "AND action IN ('deadline_warning', 'overdue') ORDER BY seq",
        case_id,
    )
    return [r["action"] for r in rows]


async def test_warning_then_overdue_with_escalation_once_per_round(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any, arq_pool: Any
) -> None:
    case_id = await _dispatched_case(client, auth_headers, pg, drain, 1701)
    rnd = await pg.fetchval("SELECT deadline_round FROM cases WHERE id = $1", case_id)
    await _time_passes(pg, case_id, warn_ago=5, due_ago=None)
    await arq_pool.enqueue_job("system.recover", older_than_s=0)
    await drain()
    assert await _system_rows(pg, case_id) == ["deadline_warning"]
    await _time_passes(pg, case_id, warn_ago=60, due_ago=3)
    before = await pg.fetchrow("SELECT updated_at, row_version FROM cases WHERE id = $1", case_id)
    await arq_pool.enqueue_job("system.recover", older_than_s=0)
    await arq_pool.enqueue_job("sla.check", case_id=case_id, deadline_round=rnd)  # the same job twice
    await drain()
    assert await _system_rows(pg, case_id) == ["deadline_warning", "overdue"]
    row = await pg.fetchrow(
        "SELECT flags, warned_round, overdue_round, status, updated_at, row_version FROM cases WHERE id = $1", case_id
    )
    assert "overdue" in row["flags"] and row["warned_round"] == row["overdue_round"] == rnd
    # the new flag is a change a phone's sync and the list's cache of encoded cases must see
    assert row["updated_at"] > before["updated_at"] and row["row_version"] > before["row_version"]
    assert row["status"] == "dispatched"  # a flag and a timeline row, not a transition
    payload = await pg.fetchval("SELECT payload FROM case_activity WHERE case_id = $1 AND action = 'overdue'", case_id)
    assert '"escalated_to": "U01"' in payload  # the enforcement brigade's bureau hears of it
    topics = await pg.fetch("SELECT topic, unit_code FROM outbox WHERE case_id = $1 ORDER BY id", case_id)
    pairs = [(r["topic"], r["unit_code"]) for r in topics]
    assert ("case.overdue", "U0104") in pairs and ("case.escalated", "U01") in pairs
    assert sum(1 for t, _ in pairs if t == "case.overdue") == 1


async def test_a_job_of_an_older_round_does_nothing(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any, arq_pool: Any
) -> None:
    case_id = await _dispatched_case(client, auth_headers, pg, drain, 1711)
    old = await pg.fetchval("SELECT deadline_round FROM cases WHERE id = $1", case_id)
    r = await client.post(f"/api/v1/cases/{case_id}/actions/acknowledge", json={},
                          headers=await auth_headers("unit-U0104"))  # fmt: skip
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/cases/{case_id}/actions/request_postpone", json={"minutes": 60, "note": "等待"},
                          headers=await auth_headers("unit-U0104"))  # fmt: skip
    assert r.status_code == 200, r.text
    paused = await pg.fetchrow("SELECT paused_at, deadline_round FROM cases WHERE id = $1", case_id)
    assert paused["paused_at"] is not None and paused["deadline_round"] == old + 1
    await _time_passes(pg, case_id, warn_ago=60, due_ago=10)
    await arq_pool.enqueue_job("sla.check", case_id=case_id, deadline_round=old)
    await arq_pool.enqueue_job("sla.check", case_id=case_id, deadline_round=old + 1)  # paused: no clock runs
    await arq_pool.enqueue_job("system.recover", older_than_s=0)
    await drain()
    assert await _system_rows(pg, case_id) == []


async def test_approval_resumes_the_clock_with_the_time_left_plus_the_granted_minutes(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    case_id = await _dispatched_case(client, auth_headers, pg, drain, 1721)
    staff = await auth_headers("unit-U0104")
    await client.post(f"/api/v1/cases/{case_id}/actions/acknowledge", json={}, headers=staff)
    await client.post(f"/api/v1/cases/{case_id}/actions/request_postpone", json={"minutes": 90, "note": "等待"},
                      headers=staff)  # fmt: skip
    # the request waited a week for an answer: the clock stood still meanwhile
    before = await pg.fetchrow("SELECT deadline, paused_at FROM cases WHERE id = $1", case_id)
    week = dt.timedelta(days=7)
    await pg.execute("UPDATE cases SET paused_at = paused_at - $2::interval, deadline = deadline - $2::interval WHERE id = $1",
                     case_id, week)  # fmt: skip
    r = await client.post(f"/api/v1/cases/{case_id}/actions/approve_postpone", json={},
                          headers=await auth_headers("dispatcher1"))  # fmt: skip
    assert r.status_code == 200, r.text
    after = dt.datetime.fromisoformat(r.json()["deadline"])
    assert r.json()["paused_at"] is None
    # granted again: what was left (deadline − paused_at) in working time, from now, plus 90 working minutes
    assert after > before["deadline"]
    timeline = await pg.fetch("SELECT action, payload FROM case_activity WHERE case_id = $1 ORDER BY seq", case_id)
    assert [t["action"] for t in timeline][-2:] == ["request_postpone", "approve_postpone"]
