"""The schema guards its data: code formats, SRID, geometry validity, and spatial queries use indexes."""

from __future__ import annotations

import asyncpg
import pytest

SQUARE = "ST_GeomFromText('POLYGON((110.2 32.2, 110.201 32.2, 110.201 32.201, 110.2 32.201, 110.2 32.2))', 4326)"
BOWTIE = "ST_GeomFromText('POLYGON((110.2 32.2, 110.201 32.201, 110.201 32.2, 110.2 32.201, 110.2 32.2))', 4326)"


async def _rejects(pg: asyncpg.Connection, sql: str, exc: type[Exception], needle: str) -> None:
    tr = pg.transaction()
    await tr.start()
    try:
        with pytest.raises(exc) as info:
            await pg.execute(sql)
        assert needle in str(info.value)
    finally:
        await tr.rollback()


async def test_grid_code_must_be_15_digits_in_its_community(pg: asyncpg.Connection) -> None:
    community = await pg.fetchval("SELECT code FROM region WHERE level = 'community' LIMIT 1")
    base = f"INSERT INTO grid (code, name, community_code, geom, area_m2) VALUES ('{{code}}', 'x', '{community}', {SQUARE}, 1)"
    await _rejects(pg, base.format(code=community + "99"), asyncpg.CheckViolationError, "code_format")
    await _rejects(pg, base.format(code=community[:-1] + "9999"), asyncpg.CheckViolationError, "in_community")
    await _rejects(pg, base.format(code=community + "99A"), asyncpg.CheckViolationError, "code_format")


async def test_invalid_polygon_is_refused(pg: asyncpg.Connection) -> None:
    community = await pg.fetchval("SELECT code FROM region WHERE level = 'community' LIMIT 1")
    sql = (
        f"INSERT INTO grid (code, name, community_code, geom, area_m2) VALUES ('{community}998', 'x',"
        f" '{community}', {BOWTIE}, 1)"
    )
    await _rejects(pg, sql, asyncpg.CheckViolationError, "geom_valid")


async def test_wrong_srid_is_refused(pg: asyncpg.Connection) -> None:
    community = await pg.fetchval("SELECT code FROM region WHERE level = 'community' LIMIT 1")
    sql = (
        f"INSERT INTO grid (code, name, community_code, geom, area_m2) VALUES ('{community}997', 'x',"
        f" '{community}', ST_SetSRID({SQUARE}, 3857), 1)"
    )
    await _rejects(pg, sql, asyncpg.exceptions.InvalidParameterValueError, "SRID")


async def test_component_code_and_status(pg: asyncpg.Connection) -> None:
    point = "ST_SetSRID(ST_MakePoint(110.23, 32.22), 4326)"
    base = "INSERT INTO component (code, category_code, name, geom, status) VALUES ('{code}', 'C0101', 'x', {geom}, '{status}')"
    await _rejects(
        pg, base.format(code="42032301010001", geom=point, status="intact"), asyncpg.CheckViolationError, "code_format"
    )
    await _rejects(
        pg, base.format(code="4203230101999999", geom=point, status="melted"), asyncpg.CheckViolationError, "status"
    )


async def test_region_code_matches_level(pg: asyncpg.Connection) -> None:
    sql = (
        "INSERT INTO region (code, name, level, parent_code, geom, area_m2) VALUES ('4203231', 'x', 'street',"
        f" '420323', ST_Multi({SQUARE}), 1)"
    )
    await _rejects(pg, sql, asyncpg.CheckViolationError, "code_format")


async def test_user_roles_are_checked(pg: asyncpg.Connection) -> None:
    await _rejects(
        pg,
        "INSERT INTO app_user (username, password_hash, display_name, roles) VALUES"
        " ('bad', 'x', 'x', ARRAY['emperor'])",
        asyncpg.CheckViolationError,
        "roles",
    )
    await _rejects(
        pg,
        "INSERT INTO app_user (username, password_hash, display_name, roles) VALUES"
        " ('bad', 'x', 'x', ARRAY['unit_staff'])",
        asyncpg.CheckViolationError,
        "staff_unit",
    )


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        (
            "SELECT code FROM grid WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(110.23, 32.22), 4326))",
            "idx_grid_geom",
        ),
        (
            "SELECT code FROM component WHERE ST_DWithin(geom::geography,"
            " ST_SetSRID(ST_MakePoint(110.23, 32.22), 4326)::geography, 5)",
            "ix_component_geog",
        ),
        (
            "SELECT code FROM pipeline WHERE ST_DWithin(geom::geography,"
            " ST_SetSRID(ST_MakePoint(110.23, 32.22), 4326)::geography, 30)",
            "ix_pipeline_geog",
        ),
        (
            "SELECT code FROM component WHERE geom && ST_MakeEnvelope(110.2, 32.2, 110.21, 32.21, 4326)",
            "idx_component_geom",
        ),
    ],
)
async def test_spatial_queries_use_an_index(pg: asyncpg.Connection, sql: str, index: str) -> None:
    await pg.execute("ANALYZE")
    plan = "\n".join(r[0] for r in await pg.fetch("EXPLAIN " + sql))
    assert index in plan, plan


async def test_changes_bump_the_layer_version(pg: asyncpg.Connection) -> None:
    before = await pg.fetchval("SELECT version FROM layer_version WHERE layer = 'grid'")
    await pg.execute("UPDATE grid SET land_use = land_use WHERE code = (SELECT min(code) FROM grid)")
    assert await pg.fetchval("SELECT version FROM layer_version WHERE layer = 'grid'") == before + 1
