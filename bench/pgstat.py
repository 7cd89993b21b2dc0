"""Samplers of PostgreSQL's statistics views: pg_stat_database counters and pg_stat_activity pollers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg


async def db_stats(dsn: str) -> dict[str, int]:
    """Counters of the bench database: sessions opened (connection churn), commits, rollbacks, rows inserted."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT sessions, xact_commit, xact_rollback, tup_inserted FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        assert row is not None
        return {k: int(v) for k, v in row.items()}
    finally:
        await conn.close()


def with_db_stats(dsn: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run()`'s measurement with the bench database's counters over it added as `db_stats` (what the load did)."""
    before = asyncio.run(db_stats(dsn))
    m = run()
    after = asyncio.run(db_stats(dsn))
    m["db_stats"] = {k: after[k] - before[k] for k in before}
    return m


class WaitSampler:
    """Samples pg_stat_activity of the API's backends (application_name grid-mgmt) 10× a second in a thread;
    `summary(window)` gives the mean number of backends per (state, wait event) inside the measured window —
    "idle in transaction" = a transaction waiting for the API to send its next statement."""

    def __init__(self, dsn: str, interval: float = 0.1):
        import threading

        self.dsn, self.interval = dsn, interval
        self.samples: list[tuple[float, list[tuple[str, str]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True, name="pg-waits")

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            deadline = time.monotonic() + 3600
            while not self._stop.is_set() and time.monotonic() < deadline:
                rows = await conn.fetch(
                    "SELECT coalesce(state, '?') AS state,"
                    " coalesce(wait_event_type || ':' || wait_event, 'running (no wait event)') AS w"
                    " FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'grid-mgmt'"
                )
                self.samples.append((time.time(), [(r["state"], r["w"]) for r in rows]))
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self, window: tuple[float, float]) -> dict[str, float]:
        inside = [rows for t, rows in self.samples if window[0] <= t <= window[1]]
        counts: dict[str, int] = {}
        for rows in inside:
            for state, w in rows:
                key = f"{state} / {w}"
                counts[key] = counts.get(key, 0) + 1
        n = max(len(inside), 1)
        return {k: round(v / n, 2) for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v / n >= 0.02}


class Timeline:
    """Polls pg_stat_activity (own thread and connection) for the import's statements, every 0.1 s."""

    def __init__(self, dsn: str, app_name: str, interval: float = 0.1):
        self.dsn, self.app_name, self.interval = dsn, app_name, interval
        self.segments: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="pg-timeline")
        self.t0 = 0.0

    def __enter__(self) -> Timeline:
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _main(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run(self._poll())

    async def _poll(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            deadline = time.monotonic() + 3600
            current: dict[str, Any] | None = None
            while not self._stop.is_set() and time.monotonic() < deadline:
                row = await conn.fetchrow(
                    "SELECT state, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS q, wait_event_type AS wt,"
                    " wait_event AS we FROM pg_stat_activity WHERE application_name = $1 LIMIT 1",
                    self.app_name,
                )
                now = round(time.perf_counter() - self.t0, 2)
                key = None if row is None else ((row["state"] == "active" and row["q"]) or f"({row['state']})")
                if current is None or current["what"] != key:
                    if current is not None:
                        current["end"] = now
                    current = {"what": key, "start": now, "end": now, "waits": Counter()}
                    self.segments.append(current)
                else:
                    current["end"] = now
                if row is not None and row["wt"]:
                    current["waits"][f"{row['wt']}:{row['we']}"] += 1
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def summary(self, min_s: float = 0.2) -> list[dict[str, Any]]:
        out = []
        for s in self.segments:
            dur = s["end"] - s["start"]
            if s["what"] is None or dur < min_s:
                continue
            waits = {k: v for k, v in s["waits"].most_common(3)}
            out.append(
                {"t": s["start"], "s": round(dur, 2), "statement": s["what"], **({"waits": waits} if waits else {})}
            )
        return out
