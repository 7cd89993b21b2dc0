"""Request dependencies shared by every controller: a database connection and the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.settings import Settings


async def provide_db(state: State) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the request; read-only requests never open a transaction they keep."""
    async with state.engine.connect() as conn:
        yield conn


def provide_settings(state: State) -> Settings:
    """The settings the app was built with."""
    settings: Settings = state.settings
    return settings


DB = NamedDependency[AsyncConnection]
"""A handler parameter `db: DB` receives the request's connection."""

AppSettings = NamedDependency[Settings]
"""A handler parameter `settings: AppSettings` receives the app's settings."""
