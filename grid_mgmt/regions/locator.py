"""An in-process spatial index of the unit grids for /grids/locate, kept correct by the database.

Every API process holds an STRtree of the valid grids and the encoded answer for each. The database bumps
`layer_version` and NOTIFYs `grid_mgmt_changes` on every change to the tables the answer depends on; the
locator listens, marks itself stale at once (requests fall back to the database) and rebuilds in the
background. A periodic version check covers a dropped listener connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

import asyncpg
import msgspec
import numpy as np
import shapely
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.regions import repository as repo
from grid_mgmt.regions.schemas import Place

log = logging.getLogger(__name__)
CHANNEL = "grid_mgmt_changes"


class _Index:
    """An immutable snapshot: tree over grid polygons, codes, and the answer parts per grid."""

    def __init__(self, rows: list[Any], workers: dict[str, list[Any]], version: int):
        self.version = version
        self.codes = np.array([r.code for r in rows], dtype=object)
        self.rows = rows
        self.workers = workers
        geoms = shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], dtype=object)) if rows else np.array([])
        self.tree = shapely.STRtree(geoms)
        self.geoms = geoms
        self.places = [(r.code, r.c_code, r.s_code, r.d_code) for r in rows]

    def find(self, lon: float, lat: float) -> int | None:
        hits = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        if len(hits) == 1:
            return int(hits[0])
        return int(min(hits, key=lambda i: self.codes[i]))  # shared edge/vertex: smallest code wins

    def place(self, i: int, lon: float, lat: float) -> Place:
        return Place(lon, lat, *self.places[i])

    def answer(self, i: int, lon: float, lat: float) -> bytes:
        row = self.rows[i]
        read = repo.locate_read(row, lon, lat, self.workers.get(row.dg_code, []) if row.dg_code else [])
        return msgspec.json.encode(read)


class GridLocator:
    """Answers locate from memory while fresh; `lookup` returns None when the caller must ask the database."""

    def __init__(self, engine: AsyncEngine, dsn: str, *, poll_seconds: float = 5.0):
        self._engine = engine
        self._dsn = dsn
        self._poll = poll_seconds
        self._index: _Index | None = None
        self._stale = True
        self._reload = asyncio.Event()
        self._fresh = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None

    @property
    def fresh(self) -> bool:
        return self._index is not None and not self._stale

    async def start(self) -> None:
        """Begin listening and build the first index in the background."""
        self._reload.set()
        self._tasks = [asyncio.create_task(self._rebuild_loop()), asyncio.create_task(self._watch_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    async def wait_fresh(self, within: float = 30.0) -> bool:
        """For tests and warm-up: wait until the index is built and current."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._fresh.wait(), within)
        return self.fresh

    def lookup(self, lon: float, lat: float) -> bytes | bool | None:
        """Encoded answer; False when no grid covers the point; None when stale (ask the database)."""
        index = self._index
        if index is None or self._stale:
            return None
        i = index.find(lon, lat)
        return False if i is None else index.answer(i, lon, lat)

    def place(self, lon: float, lat: float) -> Place | bool | None:
        """`lookup` for a report: the grid's codes only."""
        index = self._index
        if index is None or self._stale:
            return None
        i = index.find(lon, lat)
        return False if i is None else index.place(i, lon, lat)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, table: str) -> None:
        if table in repo.TRACKED_LAYERS:  # units, classes … change nothing locate answers
            self._mark_stale()

    def _mark_stale(self, *_: Any) -> None:
        self._stale = True
        self._fresh.clear()
        self._reload.set()

    async def _rebuild_loop(self) -> None:
        while True:
            await self._reload.wait()
            await asyncio.sleep(0.05)  # coalesce a burst of notifications into one rebuild
            self._reload.clear()
            try:
                async with self._engine.connect() as conn:
                    version = await repo.layers_version(conn)
                    rows = await repo.all_grids_for_index(conn)
                    workers = await repo.duty_workers(conn)
                index = await asyncio.to_thread(_Index, rows, workers, version)
            except Exception:
                log.exception("grid index rebuild failed; answering from the database")
                await asyncio.sleep(1.0)
                self._reload.set()
                continue
            self._index = index
            gc.freeze()  # the index's ~300k objects leave the collector's scans: no 60 ms full-GC stalls
            if not self._reload.is_set():  # nothing changed while we were building
                self._stale = False
                self._fresh.set()
            log.info("grid index ready: %d grids (version %d)", len(rows), version)

    async def _check_version(self) -> None:
        index = self._index
        if index is not None and not self._stale:
            async with self._engine.connect() as conn:
                if await repo.layers_version(conn) != index.version:
                    self._mark_stale()

    async def _watch_loop(self) -> None:
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    self._listener = await asyncpg.connect(self._dsn)
                    await self._listener.add_listener(CHANNEL, self._on_notify)
                    await self._check_version()  # changes may have happened while we were not listening
                await asyncio.sleep(self._poll)
                await self._check_version()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("grid index watcher lost its connection; retrying", exc_info=True)
                self._mark_stale()
                self._listener = None
                await asyncio.sleep(1.0)
