"""Engine and session factory, built once per process from the settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from grid_mgmt.settings import Settings


def make_engine(settings: Settings) -> AsyncEngine:
    """An asyncpg engine; statements are prepared and cached per connection by asyncpg."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": "grid-mgmt", "timezone": "UTC"}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
