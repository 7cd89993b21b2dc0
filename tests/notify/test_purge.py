"""Purging the outbox: finished notifications past the retention go; pending ones and recent ones stay."""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.notify.service import purge_finished
from workers import notify as notify_jobs


async def test_only_finished_rows_past_the_retention_are_purged(engine: AsyncEngine, pg: asyncpg.Connection) -> None:
    rows = await pg.fetch(
        """INSERT INTO outbox (topic, payload, delivered_at, failed_at, created_at)
           SELECT 'test.purge', '{}'::jsonb, d, f, now() - interval '90 days'
           FROM (VALUES (now() - interval '40 days', NULL::timestamptz), (NULL, now() - interval '31 days'),
                        (now() - interval '2 days', NULL), (NULL, NULL)) v(d, f)
           RETURNING id"""
    )
    old_delivered, old_failed, recent, pending = (r["id"] for r in rows)
    assert await purge_finished(engine, 30) >= 2
    left = {
        r["id"] for r in await pg.fetch("SELECT id FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
    }
    assert left == {recent, pending}
    assert old_delivered not in left and old_failed not in left
    await pg.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [recent, pending])


def test_the_purge_runs_nightly() -> None:
    [job] = [c for c in notify_jobs.CRON if c.name == "notify.purge"]
    assert job.hour == {19} and job.minute == {40}  # 03:40 in Asia/Shanghai on a worker that runs in UTC
