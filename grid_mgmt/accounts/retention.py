"""Deleting dead refresh tokens in short batches (a nightly worker job).

Every refresh writes a row (a phone refreshes every GRID_ACCESS_TOKEN_MINUTES), so without this the table grows by
about 50 rows per active user per day for ever. A row is dead once it has expired: a logout or a deactivation moves
its expiry to that moment, and a rotated row keeps its own expiry, so a copied token is still recognised as reused
(and ends its login) for the whole GRID_REFRESH_TOKEN_DAYS it was issued for.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.lib.retention import BATCH, purge_before
from grid_mgmt.lib.sql import text

_PURGE = text("""
DELETE FROM refresh_token t
USING (SELECT id FROM refresh_token WHERE expires_at < :cutoff LIMIT :batch) dead
WHERE t.id = dead.id
""")


async def purge_sessions(engine: AsyncEngine, *, expired_days: int = 1, batch: int = BATCH) -> int:
    """Delete the refresh tokens that expired (or were ended) more than `expired_days` ago; how many went. Such a
    token presented later is refused as unknown (401), as it was refused as expired before."""
    return await purge_before(engine, _PURGE, expired_days, batch=batch)
