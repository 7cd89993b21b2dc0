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


async def test_every_case_is_in_exactly_one_geom_index(pg) -> None:
    """The partial GiST indexes of migration 0008 are the model's GEOM_INDEXES, and they part the statuses."""
    from grid_mgmt.db.models.case import GEOM_INDEXES, STATUSES

    rows = await pg.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'ix_cases_geom\\_%'")
    defs = {r["indexname"]: r["indexdef"] for r in rows}
    assert set(defs) == {f"ix_cases_geom_{name}" for name in GEOM_INDEXES}
    for name, statuses in GEOM_INDEXES.items():
        assert "USING gist (geom) WHERE" in defs[f"ix_cases_geom_{name}"]
        assert all(f"'{s}'" in defs[f"ix_cases_geom_{name}"] for s in statuses)
    parted = [s for statuses in GEOM_INDEXES.values() for s in statuses]
    assert sorted(parted) == sorted(STATUSES)
    assert await pg.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_cases_status_geom'") == 0
