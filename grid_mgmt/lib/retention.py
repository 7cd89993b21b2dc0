"""Deleting rows past their retention in short batches (nightly worker jobs): short locks, short WAL bursts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncEngine

BATCH = 10_000
"""Rows deleted per statement and transaction: no long-running transaction."""


async def purge_before(engine: AsyncEngine, statement: TextClause, older_than_days: int, *, batch: int = BATCH) -> int:
    """Run `statement` (a DELETE of at most `:batch` rows older than `:cutoff`) until it deletes fewer than a batch;
    returns how many rows went. The cutoff is fixed once, so the loop ends even while new rows age."""
    if older_than_days < 1:
        raise ValueError(f"older_than_days must be at least 1, not {older_than_days}")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = int((await conn.execute(statement, {"cutoff": cutoff, "batch": batch})).rowcount)
        total += deleted
        if deleted < batch:
            return total
