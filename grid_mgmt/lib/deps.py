"""Request dependencies shared by every controller: the engine, settings and the parsed list parameters."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.lib.layers import ListQuery
from grid_mgmt.lib.openapi import BBOX, CURSOR, LIMIT
from grid_mgmt.settings import Settings


def provide_db(state: State) -> AsyncEngine:
    """The engine; readers open a pooled connection only for the statement they run.

    (Not a per-request generator: a connection checked out before another dependency fails would leak.)
    """
    engine: AsyncEngine = state.engine
    return engine


def provide_settings(state: State) -> Settings:
    """The settings the app was built with."""
    settings: Settings = state.settings
    return settings


DB = NamedDependency[AsyncEngine]
"""A handler parameter `db: DB` receives the database engine."""

AppSettings = NamedDependency[Settings]
"""A handler parameter `settings: AppSettings` receives the app's settings."""


async def provide_geo_list(
    db: DB, settings: AppSettings, limit: LIMIT = None, cursor: CURSOR = None, bbox: BBOX = None
) -> ListQuery:
    """`limit`, `cursor` and `bbox` of a layer list."""
    return ListQuery.parse(db, settings, limit=limit, cursor=cursor, bbox=bbox)


async def provide_item_list(db: DB, settings: AppSettings, limit: LIMIT = None, cursor: CURSOR = None) -> ListQuery:
    """`limit` and `cursor` of a list without geometry."""
    return ListQuery.parse(db, settings, limit=limit, cursor=cursor, bbox=None)


GeoList = NamedDependency[ListQuery]
"""A handler parameter `geo_list: GeoList` receives the checked list parameters with bbox."""

ItemList = NamedDependency[ListQuery]
"""A handler parameter `item_list: ItemList` receives the checked list parameters without bbox."""
