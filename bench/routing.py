"""`routing`: 2 arq worker processes route N reported cases of the benchmark city (cases.route + notify.deliver)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import asyncpg

from bench import jobs, procs
from bench.case_base import ensure_cases, ensure_routing
from bench.city import BenchDB
from bench.cpu import CpuMeter, describe, wait_quiet
from bench.http_load import Settings
from bench.util import Row, console

TARGET_RATE = 1_000
TARGET = f"≥ {TARGET_RATE:,} cases/s (2 workers)"
CASES_FULL, CASES_QUICK = 20_000, 2_000
SEED = "bench-routing-1"
SUBSURFACE = ("E0401", "E0402", "E0403", "E0404")  # placed ≤ 10 m from a pipeline of a kind of the class
RULES = ("E0102", "E0103", "E0104", "E0501")  # sanitation (street rules) and street vending (county-wide rule)
TERRITORY = ("E0502", "E0504")  # street-office classes: no rule, the territory fallback suggests the street office
WHERE = "c.case_no >= 'B' AND c.case_no < 'C'"  # the benchmark's cases: 'B' + 8 digits (the app's are digits)
POLL_S = 0.2
SAMPLE = 50

_COMPONENTS = """
SELECT 'component' AS grp, m.category_code AS cls, ST_X(m.p) AS lon, ST_Y(m.p) AS lat, m.code AS comp, g.code AS grid
FROM (SELECT code, category_code, ST_PointOnSurface(geom) AS p FROM component
      WHERE category_code LIKE 'C01%' ORDER BY md5(code || $1) LIMIT $2) m
CROSS JOIN LATERAL (SELECT g.code FROM grid g WHERE (g.valid_to IS NULL OR g.valid_to >= CURRENT_DATE)
                    AND ST_Intersects(g.geom, m.p) ORDER BY g.code LIMIT 1) g
"""
_H = "(hashtext(p.code || $1 || '{}') & 2147483647) / 2147483648.0"  # a uniform [0, 1) per pipeline and draw
_PIPELINES = f"""
SELECT 'subsurface' AS grp, k.code AS cls, ST_X(pp.q) AS lon, ST_Y(pp.q) AS lat, NULL AS comp, g.code AS grid
FROM category k
CROSS JOIN LATERAL (
    SELECT ST_Project(ST_LineInterpolatePoint(p.geom, {_H.format("a")})::geography, 9.5 * {_H.format("b")},
                      2 * pi() * {_H.format("c")})::geometry AS q
    FROM pipeline p
    WHERE p.kind = ANY(k.pipeline_kinds) AND coalesce(p.maintainer_unit_code, p.owner_unit_code) IS NOT NULL
    ORDER BY md5(p.code || k.code || $1) LIMIT $2) pp
CROSS JOIN LATERAL (SELECT g.code FROM grid g WHERE (g.valid_to IS NULL OR g.valid_to >= CURRENT_DATE)
                    AND ST_Intersects(g.geom, pp.q) ORDER BY g.code LIMIT 1) g
WHERE k.code = ANY($3::text[])
"""
_INSERT = """
WITH ins AS (
    INSERT INTO cases (case_no, source, category_code, urgency, description, geom, input_crs, accuracy_m, grid_code,
                       community_code, street_code, district_code, component_code, received_at, status, version,
                       stage, deadline, warn_at, deadline_round, stage_started_at, flags, updated_at)
    SELECT 'B' || lpad(t.i::text, 8, '0'), 'hotline', t.cls, 'normal', 'bench routing: ' || t.grp || ' ' || t.cls,
           ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), 'wgs84', 5, g.code, g.community_code, left(g.code, 9),
           left(g.code, 6), t.comp, r.at, 'reported', 1, 'register', r.at + interval '30 minutes',
           r.at + interval '24 minutes', 1, r.at, '{}', r.at
    FROM _bench_routing t JOIN grid g ON g.code = t.grid,
         LATERAL (SELECT $1::timestamptz - make_interval(secs => ($2 - t.i) / 1000.0) AS at) r
    ORDER BY t.i
    RETURNING id, received_at
)
INSERT INTO case_activity (case_id, seq, action, from_status, to_status, payload, at)
SELECT id, 1, 'report', NULL, 'reported', '{"source": "hotline", "bench": "routing"}', received_at FROM ins
RETURNING case_id
"""


def wanted(n: int) -> dict[tuple[str, str], int]:
    """How many cases of each (group, class): 30 % component, 15 % subsurface, 40 % rule, 15 % territory classes
    (a component group's classes are whatever the sampled components are)."""
    out = {("component", "*"): round(0.30 * n)}
    for grp, share, classes in (("subsurface", 0.15, SUBSURFACE), ("rule", 0.40, RULES)):
        for k, cls in enumerate(classes):
            out[(grp, cls)] = round(share * n) // len(classes) + (k < round(share * n) % len(classes))
    rest = n - sum(out.values())
    for k, cls in enumerate(TERRITORY):
        out[("territory", cls)] = rest // len(TERRITORY) + (k < rest % len(TERRITORY))
    return out


async def _prepare(dsn: str, n: int) -> tuple[list[int], dict[str, Any]]:
    """Insert the N cases (reported, unrouted), spread so that few are duplicates; their ids in queue order."""
    want = wanted(n)
    conn = await asyncpg.connect(dsn)
    try:
        radius = {r["code"]: float(r["duplicate_radius_m"]) for r in await conn.fetch(
            "SELECT code, duplicate_radius_m FROM category")}  # fmt: skip
        pools: dict[tuple[str, str], list[Any]] = {("component", "*"): list(
            await conn.fetch(_COMPONENTS, SEED, 3 * want[("component", "*")]))}  # fmt: skip
        per_class = max(v for (g, _), v in want.items() if g == "subsurface")
        for r in await conn.fetch(_PIPELINES, SEED, 3 * per_class, list(SUBSURFACE)):
            pools.setdefault(("subsurface", r["cls"]), []).append(r)
        events = [k for k in want if k[0] in ("rule", "territory")]
        grid_points = await conn.fetch(jobs.GRID_POINTS, SEED, 3 * sum(want[k] for k in events))
        at = 0
        for key in events:
            take = 3 * want[key]
            pools[key] = [{"grp": key[0], "cls": key[1], "comp": None, **dict(r)} for r in grid_points[at : at + take]]
            at += take
        chosen: list[dict[str, Any]] = []
        for key, pool in pools.items():
            rows = [{**dict(r), "k": k} for k, r in enumerate(pool)]
            kept: list[dict[str, Any]] = []
            for cls in sorted({str(r["cls"]) for r in rows}):
                pts = [r for r in rows if r["cls"] == cls]
                kept += [pts[i] for i in jobs.spread([(p["lon"], p["lat"]) for p in pts], 1.1 * radius[cls])]
            kept.sort(key=lambda r: int(r["k"]))  # back in the pool's (random) order
            dup = await jobs.near_existing(
                conn, [r["cls"] for r in kept], [r["lon"] for r in kept], [r["lat"] for r in kept]
            )
            chosen += [r for i, r in enumerate(kept) if i not in dup][: want[key]]
        random.Random(SEED).shuffle(chosen)  # the queue mixes the groups
        records = [(i + 1, r["grp"], r["cls"], r["lon"], r["lat"], r["comp"], r["grid"]) for i, r in enumerate(chosen)]
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE _bench_routing (i int, grp text, cls text, lon float8, lat float8, comp text,"
                " grid text) ON COMMIT DROP"
            )
            await conn.copy_records_to_table("_bench_routing", records=records)
            now = await conn.fetchval("SELECT now()")
            ids = sorted(int(r["case_id"]) for r in await conn.fetch(_INSERT, now, len(records)))
        first = await conn.fetchval(f"SELECT min(c.received_at) FROM cases c WHERE {WHERE}")
        await conn.execute("ANALYZE cases")
        mix: dict[str, int] = {}
        for r in chosen:
            mix[f"{r['grp']} {r['cls']}"] = mix.get(f"{r['grp']} {r['cls']}", 0) + 1
        return ids, {"inserted": len(ids), "wanted": n, "first_received": first, "mix": mix}
    finally:
        await conn.close()


async def _wait_done(
    dsn: str, ids: list[int], since: Any, t0: float, limit_s: float, workers: procs.Group
) -> dict[str, Any]:
    """Poll every 0.2 s until every case is routed, then until every notification of theirs is delivered."""
    conn = await asyncpg.connect(dsn)
    out: dict[str, Any] = {"routed_s": None, "done_s": None, "trace": []}
    try:
        left = -1
        while time.time() - t0 < limit_s:
            if not jobs.workers_alive(workers):
                out["error"] = f"a worker exited:\n{workers.tail(20)}"
                break
            if out["routed_s"] is None:
                left = int(await conn.fetchval(
                    "SELECT count(*) FROM cases c WHERE c.routed_at IS NULL AND c.status = 'reported'"
                    f" AND c.received_at >= $1 AND {WHERE}", since))  # fmt: skip
                if left == 0:
                    out["routed_s"] = round(time.time() - t0, 2)
            if out["routed_s"] is not None:
                left = int(await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE case_id = ANY($1::bigint[]) AND delivered_at IS NULL"
                    " AND failed_at IS NULL", ids))  # fmt: skip
                if left == 0:
                    out["done_s"] = round(time.time() - t0, 2)
                    break
            if not out["trace"] or time.time() - t0 - out["trace"][-1][0] >= 1.0:
                out["trace"].append(
                    (round(time.time() - t0, 1), "unrouted" if out["routed_s"] is None else "notify", left)
                )
            await asyncio.sleep(POLL_S)
        return out
    finally:
        await conn.close()


async def _facts(dsn: str, ids: list[int]) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"SELECT {jobs.OUTCOME_SQL} AS outcome, split_part(c.description, ' ', 3) AS grp,"
            " coalesce(c.routing->'decision'->>'source', '-') AS source, count(*) AS n"
            f" FROM cases c WHERE {WHERE} GROUP BY 1, 2, 3 ORDER BY 4 DESC"
        )
        ob = await conn.fetchrow(
            "SELECT count(*) AS rows, count(delivered_at) AS delivered, count(failed_at) AS failed,"
            " coalesce(sum(attempts), 0) AS attempts FROM outbox WHERE case_id = ANY($1::bigint[])",
            ids,
        )
        span = await conn.fetchrow(f"SELECT min(c.routed_at) AS a, max(c.routed_at) AS b FROM cases c WHERE {WHERE}")
        assert ob is not None and span is not None
        outcomes: dict[str, int] = {}
        for r in rows:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + int(r["n"])
        return {
            "outcomes": outcomes,
            "by_group": [f"{r['grp']} → {r['outcome']} ({r['source']}) {r['n']}" for r in rows],
            "outbox": {k: int(v) for k, v in ob.items()},
            "routed_first": span["a"],
            "routed_last": span["b"],
        }
    finally:
        await conn.close()


def _attempt(db: BenchDB, n: int, cfg: Settings, label: str) -> dict[str, Any]:
    """Insert, enqueue, start the workers, wait until all is done; the figures of this attempt."""
    left = asyncio.run(jobs.delete_cases(db.dsn, WHERE))
    if left["cases"]:
        console.print(f"  {label}: deleted {left} left by an earlier run or attempt")
    t = time.monotonic()
    ids, prep = asyncio.run(_prepare(db.dsn, n))
    prep["insert_s"] = round(time.monotonic() - t, 1)
    groups: dict[str, int] = {}
    for key, count in prep["mix"].items():
        groups[key.split()[0]] = groups.get(key.split()[0], 0) + count
    console.print(f"  {label}: inserted {len(ids):,} reported cases in {prep['insert_s']} s: {groups}")
    with jobs.bench_redis(label) as (redis_group, url):
        t = time.monotonic()
        queued = asyncio.run(jobs.enqueue_routes(url, ids))
        prep["enqueue_s"], prep["queued"], prep["redis"] = round(time.monotonic() - t, 2), queued, url
        quiet = wait_quiet(max_wait=cfg.quiet_wait)
        meter_groups = {"redis (bench)": redis_group.pgid} if redis_group else {}
        timeout = max(120.0, n / 25)
        console.print(f"[dim]  {label}: {queued:,} jobs queued; starting 2 workers (at most {timeout:.0f} s)[/dim]")
        t0 = time.time()
        with jobs.arq_workers(db, url, label) as workers:
            meter_groups["workers (arq)"] = workers.pgid
            with CpuMeter(meter_groups, top_at=min(10.0, timeout / 2), database=db.name) as meter:
                progress = asyncio.run(_wait_done(db.dsn, ids, prep["first_received"], t0, timeout, workers))
            tail = workers.tail(40)
    facts = asyncio.run(_facts(db.dsn, ids))
    log = jobs.job_log(jobs.worker_log(label))
    sample = random.Random(SEED).sample(ids, min(SAMPLE, len(ids)))
    check = asyncio.run(jobs.check_sample(db.dsn, db.url, sample))
    done = progress["done_s"]
    rate = len(ids) / done if done else 0.0
    return {
        "cpu": meter.split(), "top": meter.top_snapshot, "quiet": quiet, "prep": prep, "progress": progress,
        "facts": facts, "log": log, "check": check, "rate": rate, "n": len(ids), "t0": t0, "log_tail": tail,
        "failed": done is None, "summary": {"cases_per_s": round(rate, 1), "done_s": done},
    }  # fmt: skip


def run(db: BenchDB, cfg: Settings, *, cases: int | None = None, sink: list[Row] | None = None) -> list[Row]:
    """The routing benchmark (one graded row); the inserted cases are deleted afterwards."""
    rows: list[Row] = sink if sink is not None else []
    ensure_cases(db)
    rules = ensure_routing(db)
    n = cases or (CASES_QUICK if db.quick else CASES_FULL)
    label = "routing"
    try:
        m = jobs.quietest(label, lambda: _attempt(db, n, cfg, label), cfg.retries, cfg.max_noise)
    finally:
        cleaned = asyncio.run(jobs.delete_cases(db.dsn, WHERE))
        console.print(f"  {label}: deleted the benchmark's rows again: {cleaned}")
    rows.append(_row(label, m, rules, cleaned))
    return rows


def _row(label: str, m: dict[str, Any], rules: dict[str, Any], cleaned: dict[str, int]) -> Row:
    f, p, log, check, n = m["facts"], m["progress"], m["log"], m["check"], m["n"]
    started = log["started"]
    route_jobs, notify_jobs = started.get("cases.route", 0), started.get("notify.deliver", 0)
    done, routed = p["done_s"], p["routed_s"]
    first, last = f["routed_first"], f["routed_last"]
    steady = n / max((last - first).total_seconds(), 1e-3) if first and last else 0.0
    startup = first.timestamp() - m["t0"] if first else None
    ob = f["outbox"]
    all_routed = f["outcomes"].get("not routed", 0) == 0 and routed is not None
    failed_jobs = log["shutdown"]["failed"]
    ok = all_routed and done is not None and ob["delivered"] == ob["rows"] and check["passed"] and not failed_jobs
    passed = ok and m["rate"] >= TARGET_RATE
    notes = [
        f"{n:,} cases; outcomes {f['outcomes']}",
        f"every case routed and every notification delivered {done} s after the workers were started"
        f" ({route_jobs + notify_jobs:,} jobs: {route_jobs:,} cases.route + {notify_jobs:,} notify.deliver"
        f" = {(route_jobs + notify_jobs) / done if done else 0:,.0f} jobs/s); all routed after {routed} s",
        f"from the first to the last routed_at {steady:,.0f} cases/s; worker start-up (spawn → first routed case)"
        f" {startup:.1f} s"
        if startup is not None
        else "no case was routed",
        f"outbox: {ob['rows']:,} notifications of these cases, {ob['delivered']:,} delivered, {ob['failed']} failed,"
        f" {ob['attempts']:,} delivery attempts",
        f"sample {check['ok']}/{check['checked']}: decision = first of routing.repository.candidates, dispatched"
        " to it iff it auto-dispatches",
        f"by group: {'; '.join(f['by_group'][:12])}",
        describe(m["cpu"]),
        f"jobs failed {failed_jobs}, retried {log['shutdown']['retries']}; worker log errors {log['errors']}",
    ]
    if rules.get("loaded_now"):
        notes.append(f"loaded the demo routing rules into the bench city first ({rules['rules']} rules)")
    notes += [f"check: {x}" for x in check["problems"][:3]]
    if p.get("error") or done is None:
        notes.insert(0, f"NOT finished: {p.get('error') or 'timed out'}; last progress {p['trace'][-1:]}")
    elif not passed:
        why = [w for w, bad in (("cases/s", m["rate"] < TARGET_RATE), ("correctness", not ok)) if bad]
        notes.insert(0, "missed: " + ", ".join(why))
    if len(m["attempts"]) > 1:
        notes.append(f"measured {len(m['attempts'])}× because of other users' load; kept the quietest")
    return Row(
        benchmark=label,
        target=TARGET,
        measured=f"{m['rate']:,.0f} cases/s" if done else "not finished",
        passed=passed,
        notes="; ".join(notes),
        metrics={
            "cases": n, "cases_per_s": round(m["rate"], 1), "done_s": done, "routed_s": routed,
            "steady_cases_per_s": round(steady, 1), "startup_s": round(startup, 2) if startup is not None else None,
            "jobs": started, "job_results": log["results"], "worker_shutdown": log["shutdown"],
            "outcomes": f["outcomes"], "by_group": f["by_group"], "outbox": ob, "sample_check": check,
            "prepare": {k: v for k, v in m["prep"].items() if k != "first_received"}, "routing_rules": rules,
            "cleanup": cleaned, "attempts": m["attempts"],
        },
        details={"cpu": m["cpu"], "top": m["top"], "quiet_before": m["quiet"], "progress": p["trace"],
                 "worker_log_tail": m["log_tail"]},
    )  # fmt: skip
