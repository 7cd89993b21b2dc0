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


MAX_CELLS = 4_000_000
"""The lattice of the index has at most this many cells (4 bytes each); a sparse city gets coarser cells."""


class _Index:
    """An immutable snapshot: the grid polygons (prepared), a lattice over them, codes and answer parts per grid.

    The lattice is a regular raster of cells about half a grid wide over the city's extent; each cell lists the
    grids whose bounding box touches it (CSR arrays: `starts`, `members`). A point is tested only against the grids
    of its cell, with GEOS's prepared point-in-polygon (boundary included): ~6 µs, where an STRtree query with a
    predicate costs ~20 µs of numpy plumbing for one point.
    """

    def __init__(self, rows: list[Any], workers: dict[str, list[Any]], version: int):
        self.version = version
        self.codes = [r.code for r in rows]
        self.rows = rows
        self.workers = workers
        geoms = shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], dtype=object)) if rows else np.array([])
        shapely.prepare(geoms)
        self.geoms = geoms
        self.places = [(r.code, r.c_code, r.s_code, r.d_code) for r in rows]
        self._lattice(shapely.bounds(geoms) if rows else np.zeros((0, 4)))

    def _lattice(self, bounds: np.ndarray) -> None:
        n = len(bounds)
        if n == 0:
            self.ox = self.oy = 0.0
            self.cell, self.nx, self.ny = 1.0, 0, 0
            self.starts, self.members = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
            return
        sizes = np.concatenate([bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]])
        cell = max(float(np.median(sizes)) / 2, 1e-9)
        self.ox, self.oy = float(bounds[:, 0].min()), float(bounds[:, 1].min())
        span_x, span_y = float(bounds[:, 2].max()) - self.ox, float(bounds[:, 3].max()) - self.oy
        while (int(span_x / cell) + 1) * (int(span_y / cell) + 1) > MAX_CELLS:
            cell *= 2
        self.cell, self.nx, self.ny = cell, int(span_x / cell) + 1, int(span_y / cell) + 1
        x0 = ((bounds[:, 0] - self.ox) / cell).astype(np.int64)
        y0 = ((bounds[:, 1] - self.oy) / cell).astype(np.int64)
        w = ((bounds[:, 2] - self.ox) / cell).astype(np.int64) - x0 + 1
        h = ((bounds[:, 3] - self.oy) / cell).astype(np.int64) - y0 + 1
        count = w * h
        grid = np.repeat(np.arange(n), count)
        local = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        cells = (y0[grid] + local // w[grid]) * self.nx + x0[grid] + local % w[grid]
        order = np.argsort(cells, kind="stable")
        self.members = grid[order]
        self.starts = np.searchsorted(cells[order], np.arange(self.nx * self.ny + 1))

    def find(self, lon: float, lat: float) -> int | None:
        cx, cy = int((lon - self.ox) / self.cell), int((lat - self.oy) / self.cell)
        if not (0 <= cx < self.nx and 0 <= cy < self.ny) or lon < self.ox or lat < self.oy:
            return None
        c = cy * self.nx + cx
        near = self.members[self.starts[c] : self.starts[c + 1]]
        hits = near[shapely.intersects_xy(self.geoms[near], lon, lat)]
        if len(hits) == 0:
            return None
        if len(hits) == 1:
            return int(hits[0])
        return int(min(hits.tolist(), key=self.codes.__getitem__))  # shared edge/vertex: smallest code wins

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
        hit = self._hit(lon, lat)
        return hit if not isinstance(hit, tuple) else hit[0].answer(hit[1], lon, lat)

    def place(self, lon: float, lat: float) -> Place | bool | None:
        """`lookup` for a report: the grid's codes only."""
        hit = self._hit(lon, lat)
        return hit if not isinstance(hit, tuple) else hit[0].place(hit[1], lon, lat)

    def _hit(self, lon: float, lat: float) -> tuple[_Index, int] | bool | None:
        """(index, grid) covering the point; False when none does; None when stale."""
        index = self._index
        if index is None or self._stale:
            return None
        i = index.find(lon, lat)
        return False if i is None else (index, i)

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
