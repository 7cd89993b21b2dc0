"""Fixtures for importer tests: a throwaway imp_* database with a small district, units and classes."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from grid_mgmt.db.migrate import upgrade
from tests.importer.importer_synth import BASE_SQL, LATTICE

SERVER_URL = os.environ.get("GRID_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/grid_mgmt")
BASE = SERVER_URL.rsplit("/", 1)[0]


def dsn_of(name: str) -> str:
    return f"{BASE}/{name}".replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
async def imp_db() -> AsyncIterator[str]:
    """A migrated `imp_<random>` database holding the regions of LATTICE, three units and three classes."""
    name = f"imp_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn_of("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        await asyncio.to_thread(upgrade, f"{BASE}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1))
        conn = await asyncpg.connect(dsn_of(name))
        try:
            regions = LATTICE.regions()
            rows = [
                (
                    code,
                    nm,
                    {6: "district", 9: "street", 12: "community"}[len(code)],
                    code[:-3] if len(code) > 6 else None,
                    g.wkt,
                )
                for code, nm, g in zip(
                    regions.columns["code"], regions.columns["name"], regions.geometries, strict=True
                )
            ]
            await conn.executemany(
                "INSERT INTO region (code, name, level, parent_code, geom, area_m2) VALUES"
                " ($1, $2, $3, $4, ST_Multi(ST_GeomFromText($5, 4326)), ST_Area(ST_GeomFromText($5, 4326)::geography))",
                rows,
            )
            await conn.execute(BASE_SQL)
        finally:
            await conn.close()
        yield dsn_of(name)
    finally:
        admin = await asyncpg.connect(dsn_of("postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def dsn(imp_db: str) -> AsyncIterator[str]:
    """The database DSN, with the layers the tests import emptied first (base regions, units, classes stay)."""
    conn = await asyncpg.connect(imp_db)
    try:
        await conn.execute("TRUNCATE component, pipeline, duty_grid_grid, grid CASCADE")
        await conn.execute("DELETE FROM unit WHERE code NOT IN ('CGJ', 'SW01', 'LD01') AND level = 3")
        await conn.execute("DELETE FROM unit WHERE code NOT IN ('CGJ', 'SW01', 'LD01') AND level = 2")
        await conn.execute("DELETE FROM unit WHERE code NOT IN ('CGJ', 'SW01', 'LD01')")
        await conn.execute(
            "DELETE FROM region WHERE code NOT IN (SELECT unnest($1::text[])) AND level = 'community'",
            LATTICE.regions().columns["code"],
        )
    finally:
        await conn.close()
    yield imp_db


@pytest.fixture
async def pg(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection for asserting on rows."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
