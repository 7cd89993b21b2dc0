"""`intake`: POST /api/v1/cases (a grid worker's report) at 64 connections against 2 API processes."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from bench import case_api, wrk
from bench.case_base import case_facts, created_since, ensure_cases, max_case_id
from bench.city import BenchDB
from bench.cpu import describe
from bench.http_load import Load, Settings, latency_metrics, measure
from bench.locate import EXPECTED_SQL, attach_profile, profile_prefix, wait_fresh
from bench.pgstat import WaitSampler, with_db_stats
from bench.util import Row, console, slug

INTAKE_RPS = 2_000
INTAKE_P99_MS = 50.0
INTAKE_TARGET = f"≥ {INTAKE_RPS:,} req/s, p99 ≤ {INTAKE_P99_MS:g} ms"
INTAKE_PATH = "/api/v1/cases"
CATEGORY = "E0102"
POINTS_PER_WORKER = 16
INTAKE_USERS_FULL, INTAKE_USERS_QUICK = 128, 32
SAMPLE_REPORTS = 20


@dataclass
class Point:
    user: str
    lon: float
    lat: float
    grid: str


async def _worker_points(dsn: str, n_users: int, per_user: int) -> list[Point]:
    """Points inside the duty grids of `n_users` workers (deterministic), checked with the app's grid rule."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            WITH w AS (
                SELECT u.id, u.username FROM app_user u
                WHERE u.active AND 'worker' = ANY(u.roles)
                  AND EXISTS (SELECT 1 FROM duty_grid_worker dw WHERE dw.user_id = u.id)
                ORDER BY md5(u.username || $1) LIMIT $2
            ), wg AS (
                SELECT w.id, w.username, g.code, g.geom,
                       row_number() OVER (PARTITION BY w.id ORDER BY md5(g.code || $1)) AS rn
                FROM w JOIN duty_grid_worker dw ON dw.user_id = w.id
                JOIN duty_grid_grid dg ON dg.duty_grid_code = dw.duty_grid_code
                JOIN grid g ON g.code = dg.grid_code AND (g.valid_to IS NULL OR g.valid_to >= CURRENT_DATE)
            )
            SELECT username, code, ST_X(p) AS x, ST_Y(p) AS y FROM (
                SELECT username, code,
                       ST_GeometryN(ST_GeneratePoints(geom, 1, (1 + (id * 131 + rn) % 2000000000)::int), 1) AS p
                FROM wg WHERE rn <= $3) s
            ORDER BY username, code
            """,
            str(case_api.SEED),
            n_users,
            per_user,
        )
        pts = [Point(r["username"], round(r["x"], 7), round(r["y"], 7), r["code"]) for r in rows]
        got = await conn.fetch(EXPECTED_SQL, [p.lon for p in pts], [p.lat for p in pts])
    finally:
        await conn.close()
    # keep the points whose grid by the app's rule is the one they were made in (drops points on an edge)
    kept = [p for p, r in zip(pts, got, strict=True) if r["code"] == p.grid]
    return kept


def intake_lua(points: list[Point], toks: dict[str, case_api.Token]) -> str:
    users = sorted({p.user for p in points})
    index = {u: i + 1 for i, u in enumerate(users)}
    auth = ",\n".join(f"  {case_api.lua_str('Bearer ' + toks[u].token)}" for u in users)
    pts = ",\n".join(f"  {{{index[p.user]}, {p.lon!r}, {p.lat!r}}}" for p in points)
    return (
        case_api.WRAP_DONE
        + f"""
local auth = {{
{auth}
}}
local pts = {{
{pts}
}}
local npts = #pts
local hdrs = {{}}
for i, a in ipairs(auth) do
  hdrs[i] = {{["Authorization"] = a, ["Content-Type"] = "application/json"}}
end
local counter = 0
local nonce = "x"
init = function(args)
  math.randomseed({case_api.SEED} + 7919 * (tid or 0))
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(6); f:close()
    nonce = (string.gsub(b, ".", function(c) return string.format("%02x", string.byte(c)) end))
  else
    nonce = string.format("%x%x", os.time(), math.random(1, 2147483647))
  end
{case_api.COUNTERS}
end
request = function()
  counter = counter + 1
  local p = pts[math.random(npts)]
  local body = string.format(
    '{{"category_code":"{CATEGORY}","urgency":"normal","description":"bench: rubbish by the road %d",' ..
    '"lon":%.7f,"lat":%.7f,"accuracy_m":8,"client_id":"bench-%s-%d-%d"}}',
    counter, p[2], p[3], nonce, tid or 0, counter)
  return wrk.format("POST", "{INTAKE_PATH}", hdrs[p[1]], body)
end
{case_api.lua_response("status == 201")}"""
    )


def verify_intake(base: str, db: BenchDB, points: list[Point], toks: dict[str, case_api.Token]) -> dict[str, Any]:
    """A sample of reports: 201, the expected grid, no flags; rows, timeline, idempotency record, jobs; replay."""
    rng = random.Random(case_api.SEED)
    sample = rng.sample(points, min(SAMPLE_REPORTS, len(points)))
    nonce = f"{int(time.time() * 1000):x}"
    queue_before = case_api.redis_jobs()
    bad: list[str] = []
    ids: list[int] = []
    bodies: list[tuple[Point, dict[str, Any], dict[str, Any]]] = []
    latencies: list[float] = []
    good = 0
    with httpx.Client(base_url=base, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for k, p in enumerate(sample):
            body = {
                "category_code": CATEGORY, "urgency": "normal", "description": f"bench check {k}",
                "lon": p.lon, "lat": p.lat, "accuracy_m": 8, "client_id": f"bench-verify-{nonce}-{k}",
            }  # fmt: skip
            headers = {"Authorization": f"Bearer {toks[p.user].token}"}
            t0 = time.perf_counter()
            r = client.post(INTAKE_PATH, json=body, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1e3)
            if r.status_code != 201:
                bad.append(f"{p.user} ({p.lon}, {p.lat}): {r.status_code} {r.text[:300]}")
                continue
            case = r.json()
            ids.append(int(case["id"]))
            bodies.append((p, body, headers))
            problems = []
            if case.get("grid_code") != p.grid:
                problems.append(f"grid {case.get('grid_code')} != {p.grid}")
            if case.get("flags"):
                problems.append(f"flags {case.get('flags')}")
            if case.get("status") != "reported" or case.get("reporter_id") != toks[p.user].user_id:
                problems.append(f"status {case.get('status')}, reporter {case.get('reporter_id')}")
            if case.get("community_code") != p.grid[:12] or case.get("district_code") != p.grid[:6]:
                problems.append(f"areas {case.get('community_code')}/{case.get('district_code')}")
            if problems:
                bad.append(f"case {case['id']}: " + "; ".join(problems))
            else:
                good += 1
        replay: dict[str, Any] = {}
        if bodies:
            p, body, headers = bodies[0]
            r = client.post(INTAKE_PATH, json=body, headers=headers)
            replay = {
                "status": r.status_code,
                "replayed_header": r.headers.get("Idempotency-Replayed"),
                "same_case": r.status_code == 201 and int(r.json().get("id", -1)) == ids[0],
            }
            if not (replay["same_case"] and replay["replayed_header"] == "true"):
                bad.append(f"resend of client_id {body['client_id']}: {replay}")

    async def rows() -> dict[str, int]:
        conn = await asyncpg.connect(db.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM cases WHERE id = ANY($1::bigint[])) AS cases,"
                " (SELECT count(*) FROM case_activity WHERE case_id = ANY($1::bigint[]) AND seq = 1"
                "  AND action = 'report') AS timeline,"
                " (SELECT count(*) FROM idempotency_key WHERE key LIKE $2) AS idempotency",
                ids,
                f"bench-verify-{nonce}-%",
            )
            assert row is not None
            return {k: int(v) for k, v in row.items()}
        finally:
            await conn.close()

    found = asyncio.run(rows()) if ids else {"cases": 0, "timeline": 0, "idempotency": 0}
    queue_after = case_api.redis_jobs()
    jobs = case_api.jobs_since(queue_before, queue_after, "cases.route")
    for what, n in found.items():
        if n != len(ids):
            bad.append(f"{what}: {n} rows for {len(ids)} filed reports")
    if jobs is not None and jobs != len(ids):
        bad.append(f"routing jobs enqueued: {jobs} for {len(ids)} filed reports (the resend must enqueue none)")
    return {
        "checked": len(sample),
        "created": len(ids),
        "ok": good,
        "rows": found,
        "jobs_enqueued": jobs,
        "deadline_jobs_enqueued": case_api.jobs_since(queue_before, queue_after, "sla.check"),
        "replay": replay,
        "problems": bad[:10],
        "passed": not bad and len(ids) == len(sample),
        "latency_ms_new_connection": {
            "median": round(sorted(latencies)[len(latencies) // 2], 1) if latencies else None
        },
    }


def run_intake_one(
    cfg: Settings,
    db: BenchDB,
    *,
    label: str,
    points: list[Point],
    users: list[str],
    graded: bool,
    noop: Row | None,
    target: str = case_api.APP,
    workers: int = case_api.WORKERS,
    reuseport: bool = True,
    env_extra: dict[str, str] | None = None,
    verify: bool = True,
) -> Row:
    with case_api.server(db, label, target=target, workers=workers, reuseport=reuseport, env_extra=env_extra) as (
        group,
        base,
    ):
        fresh = case_api.ready(base, group, label)
        toks = case_api.tokens(db, base, users)
        fresh2 = wait_fresh(base, group)  # a login that rehashes a password bumps the layer version
        check: dict[str, Any] = verify_intake(base, db, points, toks) if verify else {"passed": True, "skipped": True}
        if verify:
            console.print(
                f"  {label}: sample {check['created']}/{check['checked']} filed (201), rows {check['rows']},"
                f" jobs {check['jobs_enqueued']}, resend {check['replay']}"
            )
            for line in check["problems"]:
                console.print(f"[red]    {line}[/red]")
            if not check["passed"]:  # do not time a path that does not file cases
                return Row(
                    benchmark=label,
                    target=INTAKE_TARGET if graded else "diagnostic",
                    measured="not timed",
                    passed=False if graded else None,
                    notes=f"the sample check failed ({check['created']}/{check['checked']} filed): "
                    + "; ".join(check["problems"][:3])
                    + f"; server log bench/results/logs/{slug(label)}.log",
                    metrics={"verification": check},
                    details={"server_log_tail": group.tail(60)},
                )
        before_id = asyncio.run(max_case_id(db.dsn))
        queue_before = case_api.redis_jobs()
        load = Load(INTAKE_PATH, intake_lua(points, toks), case_api.no_python)
        with WaitSampler(db.dsn) as waits:
            m = with_db_stats(db.dsn, lambda: measure(base, load, cfg, group.pgid, label, database=db.name))
        backends = waits.summary(m["window"])
        server_alive = group.alive()
    created = asyncio.run(created_since(db.dsn, before_id))
    stats = m["db_stats"]
    queue_after = case_api.redis_jobs()
    jobs = case_api.jobs_since(queue_before, queue_after, "cases.route")
    res = m["result"]
    extra = case_api.parse_extra(res.raw)
    non201 = sum(extra.get("other", {}).values()) if extra else res.non_2xx
    p95 = extra.get("p95_us", 0) / 1e3 if extra else float("nan")
    socket_errors = sum(res.socket_errors.values())
    rps_ok, p99_ok = res.rps >= INTAKE_RPS, res.p99_ms <= INTAKE_P99_MS
    correct = bool(check.get("passed")) and bool(fresh["fresh"] and fresh2["fresh"])
    passed = rps_ok and p99_ok and correct and non201 == 0 and socket_errors == 0 and server_alive
    notes = [
        f"p50 {res.p50_ms:.2f} ms, p90 {res.p90_ms:.2f} ms, p95 {p95:.2f} ms",
        f"{extra.get('ok', '?'):,} × 201, non-201: {non201}"
        + (f" {extra.get('other')} e.g. {extra.get('sample_bad', '')[:160]!r}" if non201 else ""),
    ]
    if noop is not None and noop.metrics.get("rps"):
        notes.append(
            f"no-op POST ×2 in this run {noop.metrics['rps']:,.0f} req/s, p99 {noop.metrics['p99_ms']:.2f} ms:"
            f" intake = {res.rps / noop.metrics['rps']:.0%} of it"
        )
    if verify:
        notes.append(
            f"sample {check['created']}/{check['checked']} 201 with grid/areas/no flags, rows+timeline+idempotency"
            f" {'ok' if check['passed'] else 'NOT ok'}, jobs {check['jobs_enqueued']}, resend replayed"
            f" {check['replay'].get('replayed_header') == 'true'}"
        )
    notes.append(
        f"cases created during the load (warm-up + measured, all attempts): {created['n']:,}"
        f" (outside_duty_grid {created['outside']}), routing jobs enqueued {jobs if jobs is not None else '?'}"
    )
    notes.append(describe(m["cpu"]))
    notes.append(case_api.per_request_cpu(m["cpu"], res.rps))
    if created["n"]:
        notes.append(
            f"per filed case (pg_stat_database over the load): {stats['xact_commit'] / created['n']:.2f} commits,"
            f" {stats['tup_inserted'] / created['n']:.2f} rows inserted, new PostgreSQL sessions {stats['sessions']:,}"
            f" ({stats['sessions'] / created['n']:.3f} per case: pool overflow churn)"
        )
    if backends:
        top = ", ".join(f"{k} {v:g}" for k, v in list(backends.items())[:5])
        notes.append(f"API backends in PostgreSQL (mean count in the window): {top}")
    api = m["cpu"].get("processes", {}).get("api (uvicorn)", {})
    if workers > 1 and api:
        busy = sorted((c for c in api.values() if c >= 0.05), reverse=True)
        conns = sorted(m["connections_by_pid"].values(), reverse=True)
        notes.append(f"per worker: cores {busy}, connections {conns}")
    if socket_errors:
        notes.append(f"socket errors {res.socket_errors}")
    if not (fresh["fresh"] and fresh2["fresh"]):
        notes.append("grid index NOT fresh: grid lookups went to PostGIS")
    if len(m["attempts"]) > 1:
        notes.append(f"measured {len(m['attempts'])}× because of other users' load; kept the quietest")
    why = [
        w
        for w, miss in (
            ("req/s", not rps_ok),
            ("p99", not p99_ok),
            ("non-201 answers", non201 > 0),
            ("sample check", not correct),
        )
        if miss
    ]
    if graded and why:
        notes.insert(0, "missed: " + ", ".join(why))
    return Row(
        benchmark=label,
        target=INTAKE_TARGET if graded else f"diagnostic (compare with intake; target {INTAKE_TARGET})",
        measured=f"{res.rps:,.0f} req/s, p99 {res.p99_ms:.2f} ms",
        passed=passed if graded else None,
        notes="; ".join(n for n in notes if n),
        metrics={
            **latency_metrics(res),
            "p95_ms": p95,
            "created_201": extra.get("ok"),
            "non_201": non201,
            "non_201_by_status": extra.get("other"),
            "socket_errors": res.socket_errors,
            "workers": workers,
            "users": len(users),
            "points": len(points),
            "cases_created_during_load": created["n"],
            "pg_stat_database_delta": stats,
            "pg_backends_mean": backends,
            "jobs_enqueued_during_load": jobs,
            "queued_after_load": queue_after,
            "verification": check,
            "warmup_fresh": [fresh, fresh2],
            "connections_by_pid": m["connections_by_pid"],
            "noop_post_x2_rps": noop.metrics.get("rps") if noop is not None else None,
        },
        details={
            "cpu": m["cpu"],
            "top": m["top"],
            "wrk_output": res.raw,
            "quiet_before": m["quiet"],
            "attempts": m["attempts"],
            "server": " ".join(group.argv[1:]),
            "redis": case_api.REDIS_URL,
        },
    )


def run_intake(
    cfg: Settings, db: BenchDB, *, variants: bool = True, sink: list[Row] | None = None, noop: Row | None = None
) -> list[Row]:
    """The graded intake run (beside noop POST ×2) and, with `variants`, one on `uvicorn --workers 2` (one shared
    socket) and a cProfile."""
    rows: list[Row] = sink if sink is not None else []
    if wrk.available() is None:
        rows.append(case_api.not_run("intake", INTAKE_TARGET, case_api.NEEDS_WRK))
        return rows
    base_info = ensure_cases(db)
    before = asyncio.run(case_facts(db.dsn))
    n_users = INTAKE_USERS_QUICK if db.quick else INTAKE_USERS_FULL
    points = asyncio.run(_worker_points(db.dsn, n_users, POINTS_PER_WORKER))
    users = sorted({p.user for p in points})
    console.print(
        f"  {before['cases']:,} cases before intake; {len(users)} workers, {len(points)} points in their duty grids;"
        f" routing jobs go to {case_api.REDIS_URL}"
    )
    if noop is None:
        from bench import noop as noop_bench

        got = noop_bench.run(cfg, methods=("POST",), workers=(case_api.WORKERS,), variants=False, sink=[])
        noop = got[0] if got else None
        if noop is not None:
            noop.notes = "measured for intake (the bare Litestar POST, same flags); " + noop.notes
            rows.append(noop)
    try:
        row = run_intake_one(cfg, db, label="intake", points=points, users=users, graded=True, noop=noop)
        row.metrics["base"] = base_info
        row.metrics["before"] = before
        rows.append(row)
        if variants and row.measured != "not timed":
            rows.append(
                run_intake_one(
                    cfg, db, label="intake, one SO_REUSEPORT socket per process (comparison)", points=points,
                    users=users, graded=False, noop=noop, env_extra={"GRID_SERVE_SPREAD": "reuseport"}, verify=False,
                )
            )  # fmt: skip
            rows.append(
                run_intake_one(
                    cfg, db, label="intake, uvicorn --workers 2: one shared socket (comparison)", points=points,
                    users=users, graded=False, noop=noop, reuseport=False, verify=False,
                )
            )  # fmt: skip
            # the app's pool is 10 + 10 overflow per process: overflow connections are opened and closed all the
            # time under 64 connections; a pool as large as the load's concurrency shows what that churn costs
            rows.append(
                run_intake_one(
                    cfg, db, label="intake, GRID_DB_POOL_SIZE=32 (tuning)", points=points, users=users,
                    graded=False, noop=noop, env_extra={"GRID_DB_POOL_SIZE": "32"}, verify=False,
                )
            )  # fmt: skip
            rows.append(_profile_intake(cfg, db, points, users, noop))
    finally:
        cleanup = case_api.redis_cleanup()
        after = asyncio.run(case_facts(db.dsn))
        console.print(
            f"  cases now {after['cases']:,} (+{after['cases'] - before['cases']:,} by this run);"
            f" redis {case_api.REDIS_URL}: {cleanup}"
        )
        for r in rows:
            if r.benchmark == "intake":
                r.metrics["after"] = after
                r.metrics["redis_cleanup"] = cleanup
                r.notes += (
                    f"; cases in the table now {after['cases']:,} (+{after['cases'] - before['cases']:,} this run)"
                )
    return rows


def _profile_intake(cfg: Settings, db: BenchDB, points: list[Point], users: list[str], noop: Row | None) -> Row:
    prof_base = profile_prefix("intake-profile")
    short = dataclasses.replace(cfg, duration=min(cfg.duration, 10.0), warmup=0.0, retries=0)
    row = run_intake_one(
        short, db, label="intake, cProfile x1 (diag)", points=points, users=users, graded=False, noop=noop,
        target=case_api.DIAG_APP, workers=1, env_extra={"BENCH_PROFILE": str(prof_base)}, verify=False,
    )  # fmt: skip
    return attach_profile(row, prof_base, top=40)
