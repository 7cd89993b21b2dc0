"""What the worker benchmarks share: a private Redis, arq worker processes, the job log, outcomes, cleanup."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bench import case_api, procs
from bench.city import BenchDB
from bench.cpu import foreign_cores
from bench.util import RESULTS, ROOT, app_env, console, slug

WORKER_PROCESSES = 2
WORKER_SETTINGS = "bench.worker_app.WorkerSettings"  # workers.settings.WorkerSettings minus the cron sweeps

# How a routed case ended, from its routing record and status (what route_case returned).
OUTCOME_SQL = """CASE WHEN c.routed_at IS NULL THEN 'not routed'
     WHEN c.routing->'decision'->>'source' = 'duplicate' THEN 'merged'
     WHEN jsonb_typeof(c.routing->'decision') IS DISTINCT FROM 'object' THEN 'unroutable'
     WHEN c.status = 'dispatched' THEN 'dispatched' ELSE 'suggested' END"""

# A random point in each of $2 grids, the grids in an order given by the text $1 (a seed, or a nonce).
GRID_POINTS = """
SELECT ST_X(p) AS lon, ST_Y(p) AS lat, code AS grid FROM (
    SELECT code, ST_GeometryN(ST_GeneratePoints(geom, 1, 1 + (hashtext(code || $1) & 1073741823)), 1) AS p
    FROM grid WHERE valid_to IS NULL OR valid_to >= CURRENT_DATE ORDER BY md5(code || $1) LIMIT $2) s
"""


@contextlib.contextmanager
def bench_redis(label: str) -> Iterator[tuple[procs.Group | None, str]]:
    """(group, URL) of the Redis the API and workers use. A private redis-server unless GRID_BENCH_REDIS_URL is
    set or redis-server is missing: notify.deliver publishes every event on the channel grid_mgmt:events, and
    pub/sub ignores database numbers, so on the shared Redis other people's API processes and tests would
    receive the benchmark's events."""
    if os.environ.get("GRID_BENCH_REDIS_URL") or shutil.which("redis-server") is None:
        yield None, case_api.REDIS_URL
        return
    log = RESULTS / "logs" / f"{slug(label)}-redis.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with procs.redis_server(log) as (group, url):
        yield group, url


@contextlib.contextmanager
def arq_workers(db: BenchDB, redis_url: str, label: str, n: int = WORKER_PROCESSES) -> Iterator[procs.Group]:
    """`n` processes of `python -m arq bench.worker_app.WorkerSettings` in one process group (killed on exit)."""
    log = worker_log(label)
    log.parent.mkdir(parents=True, exist_ok=True)
    one = shlex.join([sys.executable, "-m", "arq", WORKER_SETTINGS])
    argv = ["sh", "-c", " & ".join([one] * n) + " & wait"]
    group = procs.Group(argv, name=f"arq workers x{n}", env=app_env(db.url, redis_url), cwd=ROOT, log=log)
    try:
        yield group
    finally:
        group.stop()


def workers_alive(group: procs.Group, n: int = WORKER_PROCESSES) -> bool:
    """All `n` workers still run (the group is `sh` and its `n` Python processes)."""
    return group.alive() and len(group.pids()) >= n + 1


def worker_log(label: str) -> Path:
    return RESULTS / "logs" / f"{slug(label)}-workers.log"


def wait_workers(group: procs.Group, n: int = WORKER_PROCESSES, timeout: float = 60.0) -> float:
    """Seconds until every worker logged "Starting worker" (imports done, connected to Redis)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not group.alive():
            raise RuntimeError(f"the arq workers exited:\n{group.tail()}")
        if group.log_path and group.log_path.read_text(errors="replace").count("Starting worker for") >= n:
            return round(time.monotonic() - t0, 1)
        time.sleep(0.1)
    raise RuntimeError(f"the arq workers did not start within {timeout:.0f} s:\n{group.tail()}")


_RUN = re.compile(r"→ \S*:([\w.]+)\(")
_DONE = re.compile(r"← \S*:([\w.]+) ● (.*)$", re.M)
_SHUTDOWN = re.compile(r"(\d+) jobs complete ◆ (\d+) failed ◆ (\d+) retries")


def job_log(path: Path) -> dict[str, Any]:
    """What the workers' log says: jobs started per function, results per function, the shutdown totals."""
    text = path.read_text(errors="replace") if path.exists() else ""
    results: dict[str, Counter[str]] = {}
    for func, result in _DONE.findall(text):
        results.setdefault(func, Counter())[result.strip().strip("'")[:40]] += 1
    totals = [tuple(int(x) for x in m) for m in _SHUTDOWN.findall(text)]
    return {
        "started": dict(Counter(_RUN.findall(text))),
        "results": {f: dict(c) for f, c in results.items()},
        "shutdown": {k: sum(t[i] for t in totals) for i, k in enumerate(("complete", "failed", "retries"))},
        "errors": len(re.findall(r"Traceback|Error:", text)),
    }


async def enqueue_routes(redis_url: str, ids: list[int]) -> int:
    """A `cases.route` job per case through arq's pool with our codec, 1,000 per pipeline (what enqueue_job writes:
    the job key and its queue entry; job ids route:<id> as the recovery sweep's). Returns the queue length."""
    from arq.connections import RedisSettings, create_pool
    from arq.constants import default_queue_name, expires_extra_ms, job_key_prefix
    from arq.jobs import serialize_job

    from grid_mgmt.lib.jobcodec import deserialize, serialize

    pool = await create_pool(RedisSettings.from_dsn(redis_url), job_serializer=serialize, job_deserializer=deserialize)
    try:
        now = int(time.time() * 1000)
        for start in range(0, len(ids), 1000):
            async with pool.pipeline(transaction=False) as pipe:
                for k, case_id in enumerate(ids[start : start + 1000], start):
                    job_id = f"route:{case_id}"
                    job = serialize_job("cases.route", (), {"case_id": case_id}, None, now, serializer=serialize)
                    pipe.psetex(job_key_prefix + job_id, expires_extra_ms, job)
                    pipe.zadd(default_queue_name, {job_id: now - len(ids) + k})  # in id order, all due
                await pipe.execute()
        return int(await pool.zcard(default_queue_name))
    finally:
        await pool.aclose()


def spread(points: list[tuple[float, float]], radius_m: float) -> list[int]:
    """Indexes of the points kept, greedily, so that no two are within `radius_m` (the duplicate radius)."""
    if not points:
        return []
    lat0 = math.radians(sum(p[1] for p in points) / len(points))
    kx, ky = 111_320.0 * math.cos(lat0), 110_574.0
    cell = max(radius_m, 1.0)
    taken: dict[tuple[int, int], list[tuple[float, float]]] = {}
    kept: list[int] = []
    for i, (lon, lat) in enumerate(points):
        x, y = lon * kx, lat * ky
        cx, cy = int(x // cell), int(y // cell)
        near = (q for dx in (-1, 0, 1) for dy in (-1, 0, 1) for q in taken.get((cx + dx, cy + dy), ()))
        if all(math.hypot(x - qx, y - qy) >= radius_m for qx, qy in near):
            taken.setdefault((cx, cy), []).append((x, y))
            kept.append(i)
    return kept


async def near_existing(conn: asyncpg.Connection, classes: list[str], lons: list[float], lats: list[float]) -> set[int]:
    """0-based indexes of the points a case of the same class already in the table would make duplicates
    (within the class's duplicate radius and window — the router's own check, closed cases included)."""
    rows = await conn.fetch(
        """
        SELECT t.i FROM unnest($1::text[], $2::float8[], $3::float8[]) WITH ORDINALITY AS t(cls, x, y, i)
        JOIN category k ON k.code = t.cls
        WHERE EXISTS (SELECT 1 FROM cases d WHERE d.category_code = t.cls AND d.duplicate_of IS NULL
            AND d.received_at >= now() - make_interval(mins => k.duplicate_window_min)
            AND ST_DWithin(d.geom::geography, ST_SetSRID(ST_MakePoint(t.x, t.y), 4326)::geography,
                           k.duplicate_radius_m))
        """,
        classes,
        lons,
        lats,
    )
    return {int(r["i"]) - 1 for r in rows}


async def execute(dsn: str, sql: str, *args: Any) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.execute(sql, *args))
    finally:
        await conn.close()


async def delete_cases(dsn: str, where: str, *args: Any) -> dict[str, int]:
    """Delete the cases `where` (SQL over `c`) with their timeline and outbox rows, then VACUUM those tables."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            ids = [int(r["id"]) for r in await conn.fetch(f"SELECT c.id FROM cases c WHERE {where}", *args)]
            out = {"cases": len(ids)}
            if ids:
                for table in ("outbox", "case_activity"):
                    status = await conn.execute(f"DELETE FROM {table} WHERE case_id = ANY($1::bigint[])", ids)
                    out[table] = int(status.split()[-1])
                await conn.execute("DELETE FROM cases WHERE id = ANY($1::bigint[])", ids)
        if ids:  # autovacuum may be off: do not leave the dead rows to the next benchmark
            await conn.execute("VACUUM cases, case_activity, outbox")
        return out
    finally:
        await conn.close()


async def check_sample(dsn: str, url: str, ids: list[int]) -> dict[str, Any]:
    """For each case: the stored decision is the first of grid_mgmt.routing.repository.candidates, and the case
    was dispatched to that unit exactly when the candidate auto-dispatches (merged cases are left out)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from grid_mgmt.routing import repository
    from grid_mgmt.settings import Settings

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, status, unit_code, routing->'decision' AS d FROM cases WHERE id = ANY($1::bigint[])"
            " AND routed_at IS NOT NULL AND coalesce(routing->'decision'->>'source', '') <> 'duplicate' ORDER BY id",
            ids,
        )
    finally:
        await conn.close()
    engine = create_async_engine(url)
    bad: list[str] = []
    try:
        async with engine.connect() as sa:
            for r in rows:
                cands = (await repository.candidates(sa, [int(r["id"])], Settings().pipeline_radius_m))[int(r["id"])]
                decision = json.loads(r["d"]) if r["d"] else None
                first = cands[0] if cands else None
                got = (decision or {}).get("unit_code"), (decision or {}).get("source")
                want = (first.unit_code, first.source) if first is not None else (None, None)
                dispatched = r["status"] == "dispatched"
                should = first is not None and bool(first.auto_dispatch)
                if got != want or dispatched != should or (dispatched and r["unit_code"] != want[0]):
                    bad.append(f"case {r['id']}: stored {got}, status {r['status']} {r['unit_code']}; first {want}")
    finally:
        await engine.dispose()
    return {"checked": len(rows), "ok": len(rows) - len(bad), "problems": bad[:10], "passed": bool(rows) and not bad}


def quietest(label: str, attempt: Callable[[], dict[str, Any]], retries: int, max_noise: float) -> dict[str, Any]:
    """Run `attempt` (returns a dict with its "cpu" split) again while other users' processes took more than
    `max_noise` cores, at most `retries` more times; the quietest attempt, with all of them under "attempts"."""
    best: dict[str, Any] | None = None
    seen: list[dict[str, Any]] = []
    for k in range(1 + max(0, retries)):
        m = attempt()
        m["noise"] = foreign_cores(m["cpu"])
        seen.append({"noise_cores": round(m["noise"], 2), **m.get("summary", {})})
        if best is None or m["noise"] < best["noise"]:
            best = m
        if m["noise"] <= max_noise or m.get("failed"):
            break
        if k < retries:
            console.print(f"[yellow]  {label}: other users' processes took {m['noise']:.2f} cores; again[/yellow]")
    assert best is not None
    best["attempts"] = seen
    return best


def pctl(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`; inf counts as a value (a case that never arrived)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
