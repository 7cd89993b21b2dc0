"""Alembic environment: async engine, GeoAlchemy2 helpers so PostGIS's own tables are left alone."""

from __future__ import annotations

import asyncio

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from grid_mgmt.db import models  # noqa: F401  (registers every table)
from grid_mgmt.db.base import Base
from grid_mgmt.settings import Settings

config = context.config
target_metadata = Base.metadata
POSTGIS_TABLES = {"spatial_ref_sys", "topology", "layer", "geometry_columns", "geography_columns"}
UNMAPPED_TABLES = {"layer_version"}  # kept by triggers (migration 0001), not by the ORM


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    if type_ == "table" and name in POSTGIS_TABLES | UNMAPPED_TABLES:
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))


def _url() -> str:
    return config.attributes.get("url") or Settings().database_url


def _configure(connection: Connection | None = None) -> None:
    context.configure(
        connection=connection,
        url=None if connection is not None else _url(),
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )


def run_offline() -> None:
    _configure()
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    engine = create_async_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
