"""`case-list`: the dispatcher's GET /api/v1/cases?status=registered&bbox=… against 2 API processes."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import re
import time
from typing import Any

import asyncpg
import httpx

from bench import case_api, procs, wrk
from bench.case_base import case_facts, ensure_cases
from bench.city import BenchDB, grid_extent
from bench.cpu import describe
from bench.http_load import Load, Settings, latency_metrics, measure
from bench.locate import EXPECTED_SQL
from bench.pgstat import with_db_stats
from bench.util import Row, console, fetchval

LIST_P95_MS = 50.0
LIST_TARGET = f"p95 ≤ {LIST_P95_MS:g} ms"
LIST_CONNECTIONS = 16  # a row of information beside the graded one at --connections (default 64, as the issue)
BBOX_KM = 1.0
SAMPLE_BOXES = 20
DISPATCHER = "dispatcher1"


def _half_sizes(lat: float) -> tuple[float, float]:
    half = BBOX_KM / 2
    return half / (111.32 * math.cos(math.radians(lat))), half / 110.57


async def _box_centres(dsn: str, extent: tuple[float, float, float, float], n: int) -> list[tuple[float, float]]:
    """Uniform points of the extent that fall in a grid (deterministic)."""
    x0, y0, x1, y1 = extent
    hx, hy = _half_sizes((y0 + y1) / 2)
    rng = random.Random(case_api.SEED)
    cand = [(round(rng.uniform(x0 + hx, x1 - hx), 6), round(rng.uniform(y0 + hy, y1 - hy), 6)) for _ in range(n * 2)]
    conn = await asyncpg.connect(dsn)
    try:
        got = await conn.fetch(EXPECTED_SQL, [c[0] for c in cand], [c[1] for c in cand])
    finally:
        await conn.close()
    return [c for c, r in zip(cand, got, strict=True) if r["code"] is not None][:n]


def _bbox(c: tuple[float, float]) -> tuple[float, float, float, float]:
    hx, hy = _half_sizes(c[1])
    return (round(c[0] - hx, 6), round(c[1] - hy, 6), round(c[0] + hx, 6), round(c[1] + hy, 6))


_COUNT_EMPTY = """if string.find(body, '"items":[]', 1, true) then n_empty = n_empty + 1 end"""


def list_lua(centres: list[tuple[float, float]], token: str) -> str:
    boxes = ",\n".join("  {%r, %r, %r, %r}" % _bbox(c) for c in centres)  # noqa: UP031
    return (
        case_api.WRAP_DONE
        + f"""
local boxes = {{
{boxes}
}}
local nb = #boxes
local hdrs = {{["Authorization"] = {case_api.lua_str("Bearer " + token)}}}
init = function(args)
  math.randomseed({case_api.SEED} + 7919 * (tid or 0))
{case_api.COUNTERS}
end
request = function()
  local b = boxes[math.random(nb)]
  return wrk.format("GET", string.format(
    "/api/v1/cases?status=registered&bbox=%.6f,%.6f,%.6f,%.6f&limit=50", b[1], b[2], b[3], b[4]), hdrs)
end
{case_api.lua_response("status == 200", _COUNT_EMPTY)}"""
    )


_LIST_EXPECTED_SQL = """
SELECT id FROM cases c
WHERE c.status = 'registered' AND c.district_code = $5
  AND ST_Intersects(c.geom, ST_MakeEnvelope($1, $2, $3, $4, 4326))
ORDER BY c.received_at DESC, c.id DESC
LIMIT 50
"""


def verify_list(
    base: str, db: BenchDB, centres: list[tuple[float, float]], token: str, district: str
) -> dict[str, Any]:
    rng = random.Random(case_api.SEED + 1)
    sample = rng.sample(centres, min(SAMPLE_BOXES, len(centres)))

    async def expected() -> list[list[int]]:
        conn = await asyncpg.connect(db.dsn)
        try:
            return [[int(r["id"]) for r in await conn.fetch(_LIST_EXPECTED_SQL, *_bbox(c), district)] for c in sample]
        finally:
            await conn.close()

    want = asyncio.run(expected())
    bad: list[str] = []
    sizes: list[int] = []
    with httpx.Client(base_url=base, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for c, ids in zip(sample, want, strict=True):
            b = _bbox(c)
            r = client.get(
                "/api/v1/cases",
                params={"status": "registered", "bbox": ",".join(f"{v:.6f}" for v in b), "limit": 50},
                headers={"Authorization": f"Bearer {token}"},
            )
            if r.status_code != 200:
                bad.append(f"bbox {b}: {r.status_code} {r.text[:200]}")
                continue
            items = r.json().get("items", [])
            got = [int(i["id"]) for i in items]
            sizes.append(len(got))
            if got != ids:
                bad.append(f"bbox {b}: got {len(got)} ids {got[:3]}…, expected {len(ids)} ids {ids[:3]}…")
            elif any(i.get("status") != "registered" for i in items):
                bad.append(f"bbox {b}: a non-registered case in the answer")
    return {
        "checked": len(sample),
        "ok": len(sample) - len(bad),
        "items_per_answer": {
            "min": min(sizes, default=0),
            "max": max(sizes, default=0),
            "mean": round(sum(sizes) / max(len(sizes), 1), 1),
        },
        "empty_answers": sum(1 for s in sizes if s == 0),
        "problems": bad[:10],
        "passed": not bad and any(sizes),
    }


def run_list(cfg: Settings, db: BenchDB, *, variants: bool = True, sink: list[Row] | None = None) -> list[Row]:
    rows: list[Row] = sink if sink is not None else []
    if wrk.available() is None:
        rows.append(case_api.not_run("case-list", LIST_TARGET, case_api.NEEDS_WRK))
        return rows
    ensure_cases(db)
    facts = asyncio.run(case_facts(db.dsn))
    extent = asyncio.run(grid_extent(db.dsn))
    centres = asyncio.run(_box_centres(db.dsn, extent, 2000))
    console.print(
        f"  {facts['cases']:,} cases ({facts['by_status'].get('registered', 0):,} registered);"
        f" {len(centres)} box centres of {BBOX_KM:g} km boxes"
    )
    setups: list[tuple[str, int, bool]] = [(f"case-list ({cfg.connections} connections)", cfg.connections, True)]
    if variants:
        if cfg.connections != LIST_CONNECTIONS:
            setups.append((f"case-list ({LIST_CONNECTIONS} connections)", LIST_CONNECTIONS, False))
        setups.append(("case-list (1 connection: service time)", 1, False))
    servers: list[tuple[dict[str, str], list[tuple[str, int, bool]]]] = [({}, setups)]
    if variants:  # what a page costs when no case of it is cached (a process just started; cases nobody looked at)
        cold = f"case-list ({cfg.connections} connections, cache off: every case read whole)"
        servers.append(({"GRID_CASE_CACHE_ROWS": "0"}, [(cold, cfg.connections, False)]))
    for env, runs in servers:
        _run_server(db, cfg, env, runs, centres, facts, rows)
    return rows


def _run_server(
    db: BenchDB, cfg: Settings, env: dict[str, str], runs: list[tuple[str, int, bool]],
    centres: list[tuple[float, float]], facts: dict[str, Any], rows: list[Row],
) -> None:  # fmt: skip
    label0 = runs[0][0]
    with case_api.server(db, label0, env_extra=env) as (group, base):
        fresh = case_api.ready(base, group, label0)
        tok = case_api.tokens(db, base, [DISPATCHER])[DISPATCHER]
        sql = "SELECT district_code FROM app_user WHERE username = $1"
        district = str(asyncio.run(fetchval(db.dsn, sql, DISPATCHER)) or "")
        check = verify_list(base, db, centres, tok.token, district)
        console.print(
            f"  case-list: correctness {check['ok']}/{check['checked']}, items per answer {check['items_per_answer']}"
        )
        for line in check["problems"]:
            console.print(f"[red]    {line}[/red]")
        plan = explain_list(db, centres, district)
        console.print(
            f"  case-list: the app's statement under EXPLAIN ANALYZE: median {plan['median_ms']} ms,"
            f" max {plan['max_ms']} ms; plans {plan['plans']}"
        )
        warmed = warm_cache(base, centres, tok.token)
        console.print(f"  case-list: every box read once per process (the cache warm) in {warmed:.1f} s")
        load = Load("/api/v1/cases", list_lua(centres, tok.token), case_api.no_python)
        for label, conns, graded in runs:
            run_cfg = dataclasses.replace(cfg, connections=conns)
            before = cache_stats(base)
            m = with_db_stats(db.dsn, lambda: measure(base, load, run_cfg, group.pgid, label, database=db.name))  # noqa: B023
            m["case_cache"] = cache_delta(before, cache_stats(base))
            rows.append(_list_row(label, m, check, graded, conns, facts, fresh, group, plan))


def warm_cache(base: str, centres: list[tuple[float, float]], token: str, clients: int = 2 * case_api.WORKERS) -> float:
    """Read every box on `clients` connections (dealt to the processes in turn): the steady state of consoles
    that look at the same city, before the measured runs. Returns the seconds it took."""

    async def one(client: httpx.AsyncClient) -> None:
        for c in centres:
            params = {"status": "registered", "bbox": ",".join(f"{v:.6f}" for v in _bbox(c)), "limit": 50}
            r = await client.get("/api/v1/cases", params=params)
            r.raise_for_status()

    async def go() -> None:
        limits = httpx.Limits(max_connections=1)
        headers = {"Authorization": f"Bearer {token}"}
        pool = [httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) for _ in range(clients)]
        try:
            await asyncio.gather(*(one(c) for c in pool))
        finally:
            await asyncio.gather(*(c.aclose() for c in pool))

    t0 = time.perf_counter()
    asyncio.run(go())
    return time.perf_counter() - t0


def cache_stats(base: str, processes: int = case_api.WORKERS) -> dict[int, dict[str, int]]:
    """Each API process's counters of its cache of encoded cases (GET /health on new connections until every
    process answered, or 12 tries)."""
    got: dict[int, dict[str, int]] = {}
    for _ in range(12):
        with httpx.Client(base_url=base, timeout=10) as client:  # a new connection: the next process
            cache = client.get("/health").json().get("case_cache")
        if cache:
            got[cache["pid"]] = cache
        if len(got) >= processes:
            break
    return got


def cache_delta(before: dict[int, dict[str, int]], after: dict[int, dict[str, int]]) -> dict[str, Any]:
    """Hits and misses during a run, over the processes; the entries held at its end."""
    keys = ("hits", "misses", "stale")
    delta = {k: sum(a[k] - before.get(pid, {}).get(k, 0) for pid, a in after.items()) for k in keys}
    looked = delta["hits"] + delta["misses"]
    return {
        **delta,
        "hit_rate": round(delta["hits"] / looked, 4) if looked else None,
        "entries": sorted(a["entries"] for a in after.values()),
        "capacity": max((a["capacity"] for a in after.values()), default=0),
        "processes_seen": len(after),
    }


def explain_list(
    db: BenchDB, centres: list[tuple[float, float]], district: str, n: int = SAMPLE_BOXES
) -> dict[str, Any]:
    """The app's own list statement (search_repository.list_sql, its tune() settings) under EXPLAIN ANALYZE for
    sample boxes: planning + execution time and the plan's scan nodes."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from grid_mgmt.cases import search_repository as srepo
    from grid_mgmt.lib.auth import Principal
    from grid_mgmt.settings import Settings

    principal = Principal(user_id=0, username=DISPATCHER, roles=frozenset({"dispatcher"}), district_code=district)
    sample = random.Random(case_api.SEED + 1).sample(centres, min(n, len(centres)))

    async def go() -> dict[str, Any]:
        engine = create_async_engine(db.url)
        times: list[float] = []
        generic = 0
        shapes: dict[str, int] = {}
        first = ""
        try:
            async with engine.connect() as conn:
                for c in sample:
                    flt = srepo.CaseFilter(statuses=("registered",), bbox=_bbox(c))
                    order = srepo.SORTS["-received_at"]
                    select = srepo.refs_select(order)  # what the JSON list reads (its cases come from the cache)
                    sql, params = srepo.list_sql(srepo.PageRequest(flt, principal, order, None, 50), select)
                    await srepo.tune(conn, Settings().list_timeout_ms)
                    if srepo.generic_plan_fits(flt, principal):  # as the app: planned once, without the values
                        rows = await _explain_generic(conn, sql, params)
                        generic += 1
                    else:
                        rows = (await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params)).all()
                    plan = "\n".join(str(r[0]) for r in rows)
                    first = first or plan
                    ms = sum(float(x) for x in re.findall(r"(?:Planning|Execution) Time: ([0-9.]+) ms", plan))
                    times.append(ms)
                    nodes = re.findall(
                        r"->\s+((?:Bitmap Heap|Bitmap Index|Index Only|Index|Seq) Scan[^(]*|BitmapAnd)", plan
                    )
                    shape = " + ".join(x.strip() for x in nodes)
                    shapes[shape] = shapes.get(shape, 0) + 1
                await conn.rollback()
        finally:
            await engine.dispose()
        times.sort()
        return {
            "boxes": len(times),
            "median_ms": round(times[len(times) // 2], 2) if times else None,
            "max_ms": round(times[-1], 2) if times else None,
            "plans": shapes,
            "generic_plans": generic,
            "example": first,
        }

    return asyncio.run(go())


async def _explain_generic(conn: Any, sql: str, params: dict[str, Any]) -> list[Any]:
    """EXPLAIN ANALYZE of `sql` as the pool of generic plans runs it: prepared under force_generic_plan."""
    from sqlalchemy import text

    from grid_mgmt.lib.sql import statement_of

    stmt = statement_of(sql)
    args = ", ".join(repr(a) if not isinstance(a, str) else "'" + a.replace("'", "''") + "'" for a in stmt.args(params))
    await conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    await conn.exec_driver_sql(f"PREPARE bench_page AS {stmt.positional}")
    rows = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_page({args})")).all()
    await conn.exec_driver_sql("DEALLOCATE bench_page")
    await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return list(rows)


def _list_row(
    label: str, m: dict[str, Any], check: dict[str, Any], graded: bool, conns: int, facts: dict[str, Any],
    fresh: dict[str, Any], group: procs.Group, plan: dict[str, Any],
) -> Row:  # fmt: skip
    res = m["result"]
    extra = case_api.parse_extra(res.raw)
    non200 = sum(extra.get("other", {}).values()) if extra else res.non_2xx
    p95 = extra.get("p95_us", 0) / 1e3 if extra else float("nan")
    empty = extra.get("empty", 0)
    socket_errors = sum(res.socket_errors.values())
    p95_ok = p95 <= LIST_P95_MS
    passed = p95_ok and bool(check["passed"]) and non200 == 0 and socket_errors == 0
    notes = [
        f"{res.rps:,.0f} req/s; p50 {res.p50_ms:.2f}, p90 {res.p90_ms:.2f}, p99 {res.p99_ms:.2f} ms",
        f"{extra.get('ok', '?'):,} × 200, non-200: {non200}"
        + (f" {extra.get('other')} e.g. {extra.get('sample_bad', '')[:160]!r}" if non200 else "")
        + f", empty pages {empty / max(extra.get('ok', 0) or 1, 1):.1%}",
        f"correct {check['ok']}/{check['checked']} (ids and order vs PostGIS), items per answer"
        f" {check['items_per_answer']}",
        f"{facts['cases']:,} cases, {facts['by_status'].get('registered', 0):,} registered",
        describe(m["cpu"]),
        case_api.per_request_cpu(m["cpu"], res.rps),
        f"new PostgreSQL sessions during the load (warm-up + measured): {m['db_stats']['sessions']:,}",
        f"the list statement alone (EXPLAIN ANALYZE, {plan['boxes']} boxes, idle server):"
        f" median {plan['median_ms']} ms, max {plan['max_ms']} ms, plan {' | '.join(plan['plans'])}"
        f" ({plan.get('generic_plans', 0)} of {plan['boxes']} planned generically, as the app plans them)",
    ]
    cache = m.get("case_cache") or {}
    if cache.get("hit_rate") is not None:
        notes.append(
            f"cache of encoded cases: {cache['hit_rate']:.1%} of {cache['hits'] + cache['misses']:,} cases found"
            f" ({cache['stale']:,} changed since cached), entries per process {cache['entries']}"
            f" of {cache['capacity']:,} (counted by {cache['processes_seen']} of {case_api.WORKERS} processes)"
        )
    api = m["cpu"].get("processes", {}).get("api (uvicorn)", {})
    if api:
        busy = sorted((c for c in api.values() if c >= 0.05), reverse=True)
        notes.append(f"per worker: cores {busy}, connections {sorted(m['connections_by_pid'].values(), reverse=True)}")
    if socket_errors:
        notes.append(f"socket errors {res.socket_errors}")
    if len(m["attempts"]) > 1:
        notes.append(f"measured {len(m['attempts'])}× because of other users' load; kept the quietest")
    misses = (("p95", not p95_ok), ("non-200", non200 > 0), ("correctness", not check["passed"]))
    why = [w for w, miss in misses if miss]
    if graded and why:
        notes.insert(0, "missed: " + ", ".join(why))
    return Row(
        benchmark=label,
        target=LIST_TARGET if graded else "information",
        measured=f"p95 {p95:.2f} ms ({res.rps:,.0f} req/s)",
        passed=passed if graded else None,
        notes="; ".join(n for n in notes if n),
        metrics={
            **latency_metrics(res),
            "p95_ms": p95,
            "ok_200": extra.get("ok"),
            "empty_pages": empty,
            "non_200": non200,
            "non_200_by_status": extra.get("other"),
            "socket_errors": res.socket_errors,
            "connections": conns,
            "workers": case_api.WORKERS,
            "bbox_km": BBOX_KM,
            "correctness": check,
            "explain": {k: v for k, v in plan.items() if k != "example"},
            "pg_stat_database_delta": m["db_stats"],
            "cases": facts,
            "warmup_fresh": fresh,
            "connections_by_pid": m["connections_by_pid"],
            "case_cache": m.get("case_cache"),
        },
        details={
            "cpu": m["cpu"],
            "top": m["top"],
            "wrk_output": res.raw,
            "quiet_before": m["quiet"],
            "attempts": m["attempts"],
            "server": " ".join(group.argv[1:]),
            "explain_example": plan.get("example"),
        },
    )
