"""Purging idempotency records past their retention, in short batches (a nightly worker job)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

BATCH = 10_000
"""Rows deleted per statement and transaction: short locks, short WAL bursts, no long-running transaction."""

_PURGE = text("""
DELETE FROM idempotency_key k
USING (SELECT user_id, key FROM idempotency_key WHERE created_at < :cutoff LIMIT :batch) old
WHERE k.user_id = old.user_id AND k.key = old.key
""")


async def purge_idempotency(engine: AsyncEngine, older_than_days: int, *, batch: int = BATCH) -> int:
    """Delete the idempotency records created more than `older_than_days` ago; returns how many went.

    A request resent after that long is filed again instead of replayed: the retention has to outlast the time a
    phone may stay offline between sending a request and hearing the answer.
    """
    if older_than_days < 1:
        raise ValueError(f"older_than_days must be at least 1, not {older_than_days}")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)  # fixed once: the loop ends
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = (await conn.execute(_PURGE, {"cutoff": cutoff, "batch": batch})).rowcount
        total += deleted
        if deleted < batch:
            return total
