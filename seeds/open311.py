"""Demo Open311 client: the api_key `demo-open311-key` (only its sha256 is stored, as for every key)."""

from __future__ import annotations

import asyncpg

from grid_mgmt.open311.rules import KEY_PREFIX_LENGTH, key_digest

DEMO_KEY = "demo-open311-key"
DEMO_KEY_NAME = "demo Open311 client"


async def load_open311(conn: asyncpg.Connection) -> int:
    """Add the demo api_key unless it is there (a revoked demo key stays revoked); returns the number of keys."""
    await conn.execute(
        "INSERT INTO open311_key (name, key_sha256, key_prefix) VALUES ($1, $2, $3)"
        " ON CONFLICT (key_sha256) DO NOTHING",
        DEMO_KEY_NAME,
        key_digest(DEMO_KEY),
        DEMO_KEY[:KEY_PREFIX_LENGTH],
    )
    return int(await conn.fetchval("SELECT count(*) FROM open311_key"))
