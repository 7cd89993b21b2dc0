"""`locate`: GET /api/v1/grids/locate at 64 connections against 2 API processes, random points in the city."""

# Steps: read the grid extent from the database; compute the expected grid (or 404) of a sample of points with
# PostGIS, using the app's rule (current grids, smallest code on shared edges); start the API with uvicorn; wait
# until /health reports the grid index fresh (both workers; at most 60 s); check the sample's answers; warm up;
# measure with wrk (Lua: uniform random lon/lat in the extent, a fixed seed per thread).

from __future__ import annotations

import asyncio
import json
import os
import pstats
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import procs
from bench.city import BenchDB, grid_extent
from bench.cpu import describe
from bench.http_load import Load, Settings, latency_metrics, measure
from bench.util import RESULTS, Row, app_env, console, fetchval, slug

TARGET_RPS = 5_000
TARGET_P99_MS = 20.0
TARGET = f"≥ {TARGET_RPS:,} req/s, p99 ≤ {TARGET_P99_MS:g} ms"
WORKERS = 2
FLAGS = ("--http", "httptools", "--loop", "uvloop")
FRESH_TIMEOUT_S = 60.0
SEED = 20240601

EXPECTED_SQL = """
SELECT t.i::int AS i,
       (SELECT g.code FROM grid g
         WHERE (g.valid_to IS NULL OR g.valid_to >= CURRENT_DATE)
           AND g.geom && ST_SetSRID(ST_MakePoint(t.x, t.y), 4326)
           AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(t.x, t.y), 4326))
         ORDER BY g.code LIMIT 1) AS code
FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS t(x, y, i)
ORDER BY t.i
"""


@dataclass
class Sample:
    lon: float
    lat: float
    expected: str | None  # grid code, or None for "no grid here" (404)
    kind: str  # "surface" (a point inside a random grid) or "uniform" (random in the extent)


def lua_script(extent: tuple[float, float, float, float], path: str) -> str:
    x0, y0, x1, y1 = extent
    return f"""
local x0, y0, x1, y1 = {x0!r}, {y0!r}, {x1!r}, {y1!r}
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
init = function(args)
  math.randomseed({SEED} + 7919 * (tid or 0))
end
request = function()
  local lon = x0 + math.random() * (x1 - x0)
  local lat = y0 + math.random() * (y1 - y0)
  return wrk.format("GET", string.format("{path}?lon=%.6f&lat=%.6f", lon, lat))
end
"""


def make_load(extent: tuple[float, float, float, float], path: str) -> Load:
    x0, y0, x1, y1 = extent

    def python(rng: random.Random) -> tuple[str, str, bytes | None]:
        return "GET", f"{path}?lon={x0 + rng.random() * (x1 - x0):.6f}&lat={y0 + rng.random() * (y1 - y0):.6f}", None

    return Load(path, lua_script(extent, path), python)


async def _samples(
    dsn: str, extent: tuple[float, float, float, float], n_surface: int, n_uniform: int, n_estimate: int
) -> tuple[list[Sample], float]:
    """Checked samples, and the share of uniform points in the extent that fall in a grid."""
    rng = random.Random(SEED)
    x0, y0, x1, y1 = extent
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT code, ST_X(p) AS x, ST_Y(p) AS y FROM ("
            "  SELECT code, ST_PointOnSurface(geom) AS p FROM grid"
            "  WHERE valid_to IS NULL OR valid_to >= CURRENT_DATE ORDER BY md5(code || $1) LIMIT $2) s",
            str(SEED),
            n_surface,
        )
        # 6 decimals, as sent over HTTP, so the expectation is computed for exactly the point asked about
        pts = [(round(r["x"], 6), round(r["y"], 6), "surface") for r in rows]
        pts += [
            (round(x0 + rng.random() * (x1 - x0), 6), round(y0 + rng.random() * (y1 - y0), 6), "uniform")
            for _ in range(max(n_uniform, n_estimate))
        ]
        got = await conn.fetch(EXPECTED_SQL, [p[0] for p in pts], [p[1] for p in pts])
    finally:
        await conn.close()
    samples = [Sample(x, y, r["code"], kind) for (x, y, kind), r in zip(pts, got, strict=True)]
    uniform = [s for s in samples if s.kind == "uniform"]
    inside = sum(s.expected is not None for s in uniform) / max(len(uniform), 1)
    checked = [s for s in samples if s.kind == "surface"] + uniform[:n_uniform]
    return checked, inside


def wait_fresh(base: str, group: procs.Group, timeout: float = FRESH_TIMEOUT_S, need: int = 12) -> dict[str, Any]:
    """Poll /health on new connections (so every worker gets asked) until `need` answers in a row are fresh."""
    t0 = time.monotonic()
    streak, polls, last = 0, 0, ""
    while time.monotonic() - t0 < timeout and streak < need:
        if not group.alive():
            raise RuntimeError(f"the API exited:\n{group.tail()}")
        polls += 1
        try:
            r = httpx.get(base + "/health", timeout=5.0)
            last = r.json().get("grid_index", {}).get("detail", "?")
        except (httpx.HTTPError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if last == "fresh":
            streak += 1
        else:
            streak = 0
            time.sleep(0.25)
    return {"fresh": streak >= need, "seconds": round(time.monotonic() - t0, 1), "polls": polls, "last": last}


def verify(base: str, samples: list[Sample], path: str) -> dict[str, Any]:
    """Ask about every sample (a new connection each, so both workers answer) and compare."""
    bad: list[str] = []
    ok = 0
    with httpx.Client(base_url=base, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for s in samples:
            r = client.get(path, params={"lon": f"{s.lon:.6f}", "lat": f"{s.lat:.6f}"})
            if s.expected is None:
                good = r.status_code == 404
                got = f"{r.status_code}"
            else:
                code = r.json().get("grid", {}).get("code") if r.status_code == 200 else None
                community = r.json().get("community", {}).get("code") if r.status_code == 200 else None
                good = r.status_code == 200 and code == s.expected and community == s.expected[:12]
                got = f"{r.status_code} {code} (community {community})"
            if good:
                ok += 1
            elif len(bad) < 10:
                bad.append(f"{s.kind} ({s.lon:.6f}, {s.lat:.6f}): expected {s.expected or '404'}, got {got}")
    return {
        "checked": len(samples),
        "ok": ok,
        "inside": sum(s.expected is not None for s in samples),
        "mismatches": bad,
    }


def _gc_summary(dump: dict[str, Any], window: tuple[float, float]) -> dict[str, Any]:
    """Collections per generation inside the measured window: count, total and longest pause."""
    t0, t1 = window
    out: dict[str, Any] = {"frozen_objects": dump.get("frozen_objects"), "tracked_objects": dump.get("tracked_objects")}
    for gen in (0, 1, 2):
        ms = sorted(e[2] for e in dump.get("events", []) if e[1] == gen and t0 <= e[0] <= t1)
        out[f"gen{gen}"] = {"count": len(ms), "total_ms": round(sum(ms), 1), "max_ms": round(ms[-1], 2) if ms else 0.0}
    return out


def profile_prefix(name: str) -> Path:
    """bench/results/logs/<name>: where bench/diag_app.py writes its .prof files (the last run's are deleted)."""
    base = RESULTS / "logs" / name
    for old in base.parent.glob(base.name + ".*.prof"):
        old.unlink()
    return base


def attach_profile(row: Row, base: Path, top: int = 25) -> Row:
    """The profile's summary into the row's details and bench/results/<name>.txt."""
    files = sorted(base.parent.glob(base.name + ".*.prof"))
    if files:
        row.details["profile"] = profile_summary(files, top=top)
        (RESULTS / f"{base.name}.txt").write_text(row.details["profile"])
        row.notes += f"; profile in bench/results/{base.name}.txt"
    return row


def profile_summary(paths: list[Path], top: int = 25) -> str:
    """The top functions by own time and by cumulative time."""
    import io

    parts = []
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(*[str(p) for p in paths], stream=out)
        stats.sort_stats(key).print_stats(top)
        text = out.getvalue()
        total = next((ln.strip() for ln in text.splitlines() if "function calls" in ln), "")
        start = text.find("   ncalls")
        parts.append(f"== sorted by {key} ({total}) ==\n" + (text[start:] if start >= 0 else text))
    return "\n".join(parts)


def run_one(
    cfg: Settings,
    db: BenchDB,
    *,
    label: str,
    target: str = "grid_mgmt.app:create_app",
    path: str = "/api/v1/grids/locate",
    workers: int = WORKERS,
    flags: tuple[str, ...] = FLAGS,
    env_extra: dict[str, str] | None = None,
    samples: list[Sample],
    extent: tuple[float, float, float, float],
    inside_share: float,
    graded: bool,
    fresh_needed: bool = True,
    gc_log: bool = False,
    reuseport: bool = True,
) -> Row:
    log = RESULTS / "logs" / f"{slug(label)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env_extra = dict(env_extra or {})
    gc_base = RESULTS / "logs" / f"gc-{slug(label)}"
    if gc_log:
        for old in gc_base.parent.glob(gc_base.name + ".*.json"):
            old.unlink()
        env_extra["BENCH_GC_LOG"] = str(gc_base)
    env = app_env(db.url, os.environ.get("GRID_REDIS_URL", "redis://127.0.0.1:6379/0"), **env_extra)
    server = procs.uvicorn(
        target, factory=True, workers=workers, env=env, log=log, extra=flags, ready_path="/health", reuseport=reuseport
    )
    with server as (group, base):
        if fresh_needed:
            fresh = wait_fresh(base, group)
            console.print(
                f"  {label}: grid index {'fresh' if fresh['fresh'] else 'NOT fresh'} after {fresh['seconds']} s"
            )
        else:
            fresh = {"fresh": False, "seconds": 0.0, "polls": 0, "last": "not waited for (index disabled)"}
        check = verify(base, samples, path)
        console.print(f"  {label}: correctness {check['ok']}/{check['checked']}")
        for line in check["mismatches"]:
            console.print(f"[red]    {line}[/red]")
        m = measure(base, make_load(extent, path), cfg, group.pgid, label, database=db.name)
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
        pg_conns = int(asyncio.run(fetchval(db.dsn, sql, db.name)) or 0)
        server_alive = group.alive()
    res = m["result"]
    gc_stats = {
        p.name.split(".")[-2]: _gc_summary(json.loads(p.read_text()), m["window"])
        for p in gc_base.parent.glob(gc_base.name + ".*.json")
    }
    correct = check["ok"] == check["checked"]
    rps_ok, p99_ok = res.rps >= TARGET_RPS, res.p99_ms <= TARGET_P99_MS
    socket_errors = sum(res.socket_errors.values())
    passed = rps_ok and p99_ok and correct and (fresh["fresh"] or not fresh_needed) and socket_errors == 0
    passed = passed and server_alive
    notes = [
        f"p50 {res.p50_ms:.2f} ms, p90 {res.p90_ms:.2f} ms",
        f"correct {check['ok']}/{check['checked']}",
        f"{res.non_2xx / max(res.requests, 1):.1%} 404 (outside grids; expected ≈{1 - inside_share:.1%})",
        describe(m["cpu"]),
    ]
    if fresh_needed and not fresh["fresh"]:
        notes.append(f"index NOT fresh after {fresh['seconds']} s: answers came from the database")
    if socket_errors:
        notes.append(f"socket errors {res.socket_errors}")
    api = m["cpu"].get("processes", {}).get("api (uvicorn)", {})
    if workers > 1 and api:
        busy = sorted((c for c in api.values() if c >= 0.05), reverse=True)
        conns = sorted(m["connections_by_pid"].values(), reverse=True)
        notes.append(f"per worker: cores {busy}, connections {conns}")
    if gc_stats:
        full = [g["gen2"] for g in gc_stats.values()]
        notes.append(
            f"full GCs (gen 2) during the run per worker: {[g['count'] for g in full]},"
            f" longest {max(g['max_ms'] for g in full):.0f} ms"
            + (
                f"; frozen objects {[g['frozen_objects'] for g in gc_stats.values()]}"
                if any(g.get("frozen_objects") for g in gc_stats.values())
                else ""
            )
        )
    if m["tool"] != "wrk":
        notes.append("Python load generator (wrk missing): client-bound, understates the server")
    if len(m["attempts"]) > 1:
        notes.append(f"measured {len(m['attempts'])}× because of other users' load; kept the quietest")
    why = [w for w, bad in (("req/s", not rps_ok), ("p99", not p99_ok), ("correctness", not correct)) if bad]
    if graded and why:
        notes.insert(0, "missed: " + ", ".join(why))
    return Row(
        benchmark=label,
        target=TARGET if graded else f"diagnostic (compare with locate; target {TARGET})",
        measured=f"{res.rps:,.0f} req/s, p99 {res.p99_ms:.2f} ms",
        passed=passed if graded else None,
        notes="; ".join(notes),
        metrics={
            **latency_metrics(res),
            "non_2xx": res.non_2xx,
            "socket_errors": res.socket_errors,
            "workers": workers,
            "inside_share_expected": round(inside_share, 4),
            "warmup_fresh": fresh,
            "correctness": check,
            "pg_connections_after": pg_conns,
            "connections_by_pid": m["connections_by_pid"],
            "gc": gc_stats,
        },
        details={
            "cpu": m["cpu"],
            "top": m["top"],
            "wrk_output": res.raw,
            "quiet_before": m["quiet"],
            "attempts": m["attempts"],
            "server": " ".join(group.argv[1:]),
            "env": {k: v for k, v in (env_extra or {}).items()},
            "extent": extent,
        },
    )


def run(cfg: Settings, db: BenchDB, *, variants: bool = True, sink: list[Row] | None = None) -> list[Row]:
    """The graded run and, with `variants`, the diagnostics; rows are appended to `sink` as measured."""
    extent = asyncio.run(grid_extent(db.dsn))
    samples, inside = asyncio.run(_samples(db.dsn, extent, n_surface=150, n_uniform=100, n_estimate=4000))
    console.print(f"  extent {tuple(round(v, 5) for v in extent)}; {inside:.1%} of uniform points fall in a grid")
    common: dict[str, Any] = {"samples": samples, "extent": extent, "inside_share": inside}
    rows: list[Row] = sink if sink is not None else []
    rows.append(run_one(cfg, db, label="locate", graded=True, **common))
    if not variants:
        return rows
    diag = "bench.diag_app:create_app"  # the unchanged app plus GC logging / gc.freeze() (bench/diag_app.py)
    freeze = {"BENCH_GC_FREEZE": "1"}
    for label, kwargs in (
        # scaling from one process
        ("locate ×1 process (diag)", {"workers": 1}),
        # `uvicorn --workers 2` sharing one socket (first to wake accepts) instead of one SO_REUSEPORT socket per
        # process as `grid-mgmt serve` runs them
        ("locate, uvicorn --workers 2: one shared socket (comparison)", {"reuseport": False}),
        # full garbage collections during the run (gc.callbacks), then gc.freeze() once the index is built
        ("locate, GC pauses logged (diag)", {"target": diag, "gc_log": True}),
        ("locate + gc.freeze() (diag)", {"target": diag, "gc_log": True, "env_extra": freeze}),
        # the database path: what answers while the index is rebuilt after a change
        ("locate, index off: PostGIS (diag)", {"env_extra": {"GRID_LOCATE_CACHE": "0"}, "fresh_needed": False}),
    ):
        rows.append(run_one(cfg, db, label=label, graded=False, **kwargs, **common))
    # A cProfile of one worker under load (absolute times are inflated by the profiler).
    prof_base = profile_prefix("locate-profile")
    short = Settings(
        duration=min(cfg.duration, 10.0),
        warmup=0.0,
        connections=cfg.connections,
        wrk_threads=cfg.wrk_threads,
        quiet_wait=cfg.quiet_wait,
    )
    prof_row = run_one(
        short,
        db,
        label="locate, cProfile x1 (diag)",
        target="bench.diag_app:create_app",
        workers=1,
        env_extra={"BENCH_PROFILE": str(prof_base)},
        graded=False,
        **common,
    )
    rows.append(attach_profile(prof_row, prof_base))
    return rows
