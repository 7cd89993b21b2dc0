"""Loading the demo city into a throwaway `seed_` database, twice, and the `grid-mgmt seed` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from argon2 import PasswordHasher

from grid_mgmt.db.migrate import upgrade
from grid_mgmt.settings import Settings
from seeds.cli import register
from seeds.generator import generate_city
from seeds.load import TABLES, SeedError, is_loaded, load_city

SERVER = os.environ.get("GRID_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/grid_mgmt").rsplit("/", 1)[0]
DB = f"seed_test_{os.getpid()}_{secrets.token_hex(3)}"
URL = f"{SERVER}/{DB}"
DSN = URL.replace("postgresql+asyncpg://", "postgresql://", 1)

# grid_mgmt/db/migrations/alembic.ini has no path_separator yet (Alembic 1.16+ warns about it)
pytestmark = pytest.mark.filterwarnings("ignore:No path_separator found:DeprecationWarning")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(SERVER.replace("postgresql+asyncpg://", "postgresql://", 1) + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def seed_db() -> AsyncIterator[str]:
    await _admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{DB}"')
    try:
        await asyncio.to_thread(upgrade, URL)
        yield DSN
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


async def test_load_demo_city(seed_db: str) -> None:
    assert not await is_loaded(seed_db)
    city = generate_city("demo")
    stages: set[str] = set()
    counts = await load_city(seed_db, city, progress=lambda stage, done, total: stages.add(stage.split(":")[0]))
    assert counts == city.counts()
    assert set(counts) == set(TABLES)
    assert {"categories", "regions", "units", "grids", "pipelines", "components", "users"} <= stages
    assert await is_loaded(seed_db)

    conn = await asyncpg.connect(seed_db)
    try:
        outside = await conn.fetchval(
            "SELECT count(*) FROM component c JOIN grid g ON g.code = c.grid_code WHERE NOT ST_Within(c.geom, g.geom)"
        )
        assert outside == 0
        low, high = await conn.fetchrow("SELECT min(area_m2), max(area_m2) FROM grid")
        assert 9_500 < low <= high < 10_500
        limits = await conn.fetchval("SELECT time_limits::text FROM category WHERE code = 'C0102'")
        assert '"handle": {"normal": {"unit": "work_day", "value": 2}' in limits
        kinds = await conn.fetchval("SELECT pipeline_kinds FROM category WHERE code = 'E0402'")
        assert kinds == ["water"]
        hashes = await conn.fetch("SELECT DISTINCT password_hash FROM app_user")
        assert len(hashes) == 1 and PasswordHasher().verify(hashes[0][0], "demo")
        worker = await conn.fetchval(
            "SELECT count(*) FROM duty_grid_worker w JOIN app_user u ON u.id = w.user_id WHERE u.username = 'worker1'"
        )
        assert worker == 1
        routed = await conn.fetchval(
            "SELECT p.owner_unit_code FROM pipeline p WHERE p.kind = 'gas'"
            " ORDER BY p.geom <-> (SELECT geom FROM component WHERE category_code = 'C0111' LIMIT 1) LIMIT 1"
        )
        assert routed == "U07"
    finally:
        await conn.close()

    assert await load_city(seed_db, city, replace=False) == counts  # loading twice changes nothing


async def test_replace_when_other_tables_reference_the_city(seed_db: str) -> None:
    city = generate_city(0.003)
    conn = await asyncpg.connect(seed_db)
    try:
        await conn.execute("CREATE TABLE seed_ref (grid_code varchar(15) REFERENCES grid (code))")
        assert await load_city(seed_db, city) == city.counts()  # replaces the demo city; cannot TRUNCATE: deletes
        await conn.execute("INSERT INTO seed_ref VALUES ($1)", city.grids.columns["code"][0])
        with pytest.raises(SeedError, match="cannot replace the city"):
            await load_city(seed_db, city)
        assert await load_city(seed_db, city, replace=False) == city.counts()
    finally:
        await conn.execute("DROP TABLE IF EXISTS seed_ref")
        await conn.close()


def test_cli_seed(seed_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("grid_mgmt.settings.get_settings", lambda: Settings(database_url=URL))
    parser = argparse.ArgumentParser(prog="grid-mgmt")
    register(parser.add_subparsers())

    args = parser.parse_args(["seed", "--if-empty"])
    assert args.func(args) == 0
    assert "already loaded" in capsys.readouterr().out

    args = parser.parse_args(["seed", "--scale", "0.003"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "component" in out and "worker1" in out

    tiny = generate_city(0.003).counts()

    async def counts() -> dict[str, int]:
        conn = await asyncpg.connect(seed_db)
        try:
            return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}
        finally:
            await conn.close()

    assert asyncio.run(counts()) == tiny  # the previous city was replaced: nothing of it is left

    with pytest.raises(SystemExit):
        parser.parse_args(["seed", "--scale", "huge"])
