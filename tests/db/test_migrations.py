"""Migrations go up and down cleanly, and the models match the head revision (nothing left to autogenerate)."""

from __future__ import annotations

import asyncio
import secrets

from alembic import command

from grid_mgmt.db.migrate import alembic_config, head_revision, upgrade
from tests.conftest import create_database, drop_database, plain


async def test_upgrade_downgrade_upgrade_and_models_match() -> None:
    import asyncpg

    name = f"grid_test_mig_{secrets.token_hex(3)}"
    url = await create_database(name)
    try:
        await asyncio.to_thread(upgrade, url)
        await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
        conn = await asyncpg.connect(plain(url))
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'"
                " AND tablename <> 'alembic_version'"
            )
            assert tables == []
        finally:
            await conn.close()
        await asyncio.to_thread(upgrade, url)
        await asyncio.to_thread(command.check, alembic_config(url))  # raises if the models drifted
        conn = await asyncpg.connect(plain(url))
        try:
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
        finally:
            await conn.close()
    finally:
        await drop_database(name)
