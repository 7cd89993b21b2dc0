"""Engine and session factory, built once per process from the settings."""

from __future__ import annotations

import asyncio
import datetime as dt
import weakref
from typing import Any

from sqlalchemy import event
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


def list_settings(timeout_ms: int) -> dict[str, str]:
    """The session settings a case list runs with (the read engine's connections carry them; `cases.search_repository
    .tune` sets them for one transaction on a connection of the main engine):

    - `plan_cache_mode = force_custom_plan`: statements are prepared, and after five runs PostgreSQL may switch to
      a generic plan that knows neither the bbox nor the statuses — measured at 1,000,000 cases it picked a plan
      100× slower; planning each time costs about a millisecond;
    - no parallel workers: starting them costs more than reading a page;
    - a statement timeout: a filter no index serves cannot hold a connection for long.
    """
    return {
        "plan_cache_mode": "force_custom_plan",
        "max_parallel_workers_per_gather": "0",
        "statement_timeout": str(int(timeout_ms)),
    }


def make_read_engine(settings: Settings) -> AsyncEngine:
    """The engine case lists read from: autocommit (a list is one statement: no BEGIN/COMMIT round trips), its
    connections carrying `list_settings` once instead of setting them per request, and reading `timestamptz` as
    text (`_text_timestamps`)."""
    server_settings = {
        "application_name": "grid-mgmt read",
        "timezone": "UTC",
        "datestyle": "ISO",
        **list_settings(settings.list_timeout_ms),
    }
    engine = create_async_engine(
        settings.read_database_url or settings.database_url,
        pool_size=settings.read_pool_size,
        max_overflow=0,
        pool_recycle=1800,
        isolation_level="AUTOCOMMIT",
        connect_args={"server_settings": server_settings},
    )
    event.listen(engine.sync_engine, "connect", _text_timestamps)
    return engine


def _text_timestamps(dbapi_connection: Any, _record: Any) -> None:
    """`timestamptz` values travel as ISO text and become datetimes by `datetime.fromisoformat`.

    asyncpg's binary decoder builds each datetime from an epoch, a timedelta and a `replace(tzinfo=…)`: a page of 51
    cases (up to 14 timestamps each) took 640 µs of the API's CPU to decode, 360 µs so; the server's extra cost
    of writing them as text was ~15 µs. The values are equal (UTC, to the microsecond; the session's `timezone`
    and `datestyle` are fixed above). PostgreSQL's `infinity` would not parse: no case time is ever infinite."""
    dbapi_connection.run_async(
        lambda conn: conn.set_type_codec(
            "timestamptz",
            schema="pg_catalog",
            encoder=dt.datetime.isoformat,
            decoder=dt.datetime.fromisoformat,
            format="text",
        )
    )


_GATES: weakref.WeakKeyDictionary[AsyncEngine, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def fair_gate(engine: AsyncEngine) -> asyncio.Semaphore:
    """A first-come-first-served gate as wide as `engine`'s pool (no overflow), to pass before `engine.connect()`.

    SQLAlchemy's pool queue lets a newcomer take a connection just given back before the waiter woken for it runs;
    that waiter then queues again at the back. With more concurrent requests than connections some requests wait
    for seconds (the case list at 64 connections: p50 98 ms, p99 980 ms). asyncio's Semaphore hands a released
    slot to the longest waiter and lets no newcomer pass while anyone waits, so requests wait here in arrival order
    and the pool itself never has waiters.
    """
    loop = asyncio.get_running_loop()
    found = _GATES.get(engine)
    if found is None or found[0] is not loop:  # a semaphore belongs to one event loop
        found = _GATES[engine] = (loop, asyncio.Semaphore(engine.sync_engine.pool.size()))  # type: ignore[attr-defined]
    return found[1]


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
