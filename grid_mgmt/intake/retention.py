"""Purging idempotency records past their retention, in short batches (a nightly worker job)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.lib.retention import BATCH, purge_before
from grid_mgmt.lib.sql import text

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
    return await purge_before(engine, _PURGE, older_than_days, batch=batch)
