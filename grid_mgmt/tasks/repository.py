"""SQL of the sync that is not about cases: the versions of the cached dictionaries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.lib.sql import text

DICTIONARY_LAYERS = ("category", "region", "grid", "unit", "duty_grid", "duty_grid_grid", "duty_grid_worker")
"""Tables whose statement trigger bumps `layer_version` (migration 0001) and which a phone caches."""


async def dictionary_versions(conn: AsyncConnection) -> tuple[list[tuple[str, int, dt.datetime]], dt.datetime | None]:
    """(layer, version, changed_at) of the cached dictionaries, and the newest class change (`updated_at`)."""
    rows = (
        await conn.execute(
            text("SELECT layer, version, changed_at FROM layer_version WHERE layer = ANY(:layers) ORDER BY layer"),
            {"layers": list(DICTIONARY_LAYERS)},
        )
    ).all()
    newest = await conn.scalar(text("SELECT max(updated_at) FROM category"))
    return [(str(r.layer), int(r.version), r.changed_at) for r in rows], newest
