"""The connections case lists read on: plain asyncpg, tuned for lists, handed out first come first served.

A list is one autocommit statement on the driver, so SQLAlchemy's engine had nothing to add but its checkout
and check-in: 75–85 µs of the API's CPU per page (measured; the page itself costs about 600 µs). Here taking and
giving back a connection is a deque operation behind a FIFO gate.

- **Settings per connection** (`list_settings`, UTC, ISO dates) are set once when it opens; `timestamptz` is read
  as text (`text_timestamps`).
- **First come, first served**: asyncio's Semaphore hands a released slot to the longest waiter and lets no
  newcomer pass while anyone waits (SQLAlchemy's pool let newcomers barge: p99 980 ms at 64 connections).
- **Health**: a connection an error other than PostgreSQL's own (a lost socket, a cancelled request in the
  middle of a statement) passed through is closed and replaced on demand; one older than `recycle_s` is
  replaced when next taken (a restarted server, or a failover, behind the same address).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from grid_mgmt.settings import Settings


def list_settings(timeout_ms: int, *, generic: bool = False) -> dict[str, str]:
    """The session settings a case list runs with (this pool's connections carry them; `cases.search_repository
    .tune` sets them for one transaction on a connection of the main engine):

    - `plan_cache_mode = force_custom_plan`: statements are prepared, and after five runs PostgreSQL may switch to
      a generic plan that knows neither the bbox nor the statuses — measured at 1,000,000 cases it picked a plan
      100× slower; planning each time costs about a millisecond. `generic` (the pool of `ListPools.generic`):
      `force_generic_plan`, for the statements whose plan is the same whatever the values
      (`cases.search_repository.generic_plan_fits`): planned once per connection, not per page;
    - no parallel workers: starting them costs more than reading a page;
    - a statement timeout: a filter no index serves cannot hold a connection for long.
    """
    return {
        "plan_cache_mode": "force_generic_plan" if generic else "force_custom_plan",
        "max_parallel_workers_per_gather": "0",
        "statement_timeout": str(int(timeout_ms)),
    }


async def text_timestamps(conn: asyncpg.Connection) -> None:
    """`timestamptz` values travel as ISO text and become datetimes by `datetime.fromisoformat`.

    asyncpg's binary decoder builds each datetime from an epoch, a timedelta and a `replace(tzinfo=…)`: a page of 51
    cases (up to 14 timestamps each) took 640 µs of the API's CPU to decode, 360 µs so; the server's extra cost
    of writing them as text was ~15 µs. The values are equal (UTC, to the microsecond; the session's `timezone`
    and `datestyle` are fixed). PostgreSQL's `infinity` would not parse: no case time is ever infinite."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=dt.datetime.isoformat, decoder=dt.datetime.fromisoformat,
        format="text",
    )  # fmt: skip


class ListPool:
    """Up to `size` list connections to `dsn`, opened on demand (see the module docstring)."""

    def __init__(
        self, dsn: str, size: int, timeout_ms: int, *, generic: bool = False, recycle_s: float = 1800.0
    ) -> None:
        self.size = size
        self._dsn = dsn
        self._server_settings = {
            "application_name": "grid-mgmt read" + (" (generic plans)" if generic else ""),
            "timezone": "UTC",
            "datestyle": "ISO",
            **list_settings(timeout_ms, generic=generic),
        }
        self._recycle_s = recycle_s
        self._idle: deque[tuple[float, asyncpg.Connection]] = deque()
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.opened = 0
        """Connections opened since start (tests and benchmarks: a pool that reuses opens `size` at most)."""

    @classmethod
    def of(cls, settings: Settings, *, generic: bool = False) -> ListPool:
        return cls(settings.read_asyncpg_dsn, settings.read_pool_size, settings.list_timeout_ms, generic=generic)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for one list; waiters are served in arrival order."""
        async with self._fair_gate():
            born, conn = await self._take()
            try:
                yield conn
            except asyncpg.PostgresError:  # the server's answer (a timeout, a bad value): the connection is fine
                self._idle.append((born, conn))
                raise
            except BaseException:
                conn.terminate()  # it may be in the middle of a statement, or gone
                raise
            self._idle.append((born, conn))

    async def close(self) -> None:
        """Close the idle connections (at shutdown)."""
        idle, self._idle = self._idle, deque()
        await asyncio.gather(*(conn.close(timeout=5) for _, conn in idle), return_exceptions=True)

    def _fair_gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:  # a semaphore belongs to one event loop
            self._gate = (loop, asyncio.Semaphore(self.size))
        return self._gate[1]

    async def _take(self) -> tuple[float, Any]:
        now = time.monotonic()
        while self._idle:
            born, conn = self._idle.pop()  # the most recently used: its caches are warm
            if not conn.is_closed() and now - born < self._recycle_s:
                return born, conn
            conn.terminate()
        conn = await asyncpg.connect(self._dsn, server_settings=self._server_settings)
        await text_timestamps(conn)
        self.opened += 1
        return time.monotonic(), conn


@dataclass(frozen=True, slots=True)
class ListPools:
    """The two pools of an API process: `custom` plans each statement with its values; `generic` plans a statement
    once per connection, for the shapes whose best plan does not depend on the values (the dispatcher's map: a
    small box of open cases). Both open connections only on demand."""

    custom: ListPool
    generic: ListPool

    @classmethod
    def of(cls, settings: Settings) -> ListPools:
        return cls(ListPool.of(settings), ListPool.of(settings, generic=True))

    async def close(self) -> None:
        await asyncio.gather(self.custom.close(), self.generic.close())
