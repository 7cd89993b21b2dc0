"""`public`: POST /api/v1/public/reports (a citizen's report, JSON, no photo) at 64 connections, 2 API processes.

Every request comes from another client address (X-Forwarded-For, believed from 127.0.0.1 only: the app is started
with GRID_TRUSTED_PROXY_HEADER / GRID_TRUSTED_PROXIES), so the per-address limit is counted in Redis on every
request — as in production — without refusing the load. No contact is sent (the per-contact limit would refuse it).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import asyncpg
import httpx

from bench import case_api, wrk
from bench.case_base import created_since, max_case_id
from bench.city import BenchDB
from bench.cpu import describe
from bench.http_load import Load, Settings, latency_metrics, measure
from bench.locate import EXPECTED_SQL
from bench.util import Row, console

PUBLIC_RPS = 1_500
PUBLIC_P99_MS = 50.0
PUBLIC_TARGET = f"≥ {PUBLIC_RPS:,} req/s, p99 ≤ {PUBLIC_P99_MS:g} ms"
PUBLIC_PATH = "/api/v1/public/reports"
CATEGORY = "E0506"
POINTS_FULL, POINTS_QUICK = 2_000, 400
SAMPLE_REPORTS = 20
ENV = {"GRID_TRUSTED_PROXY_HEADER": "X-Forwarded-For", "GRID_TRUSTED_PROXIES": "127.0.0.1,::1"}


async def _points(dsn: str, n: int) -> list[tuple[float, float, str]]:
    """Deterministic points inside current grids, kept when the app's grid rule puts them in the same grid."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT code, ST_X(p) AS x, ST_Y(p) AS y FROM (
                SELECT code, ST_GeometryN(ST_GeneratePoints(geom, 1, (1 + abs(hashtext(code)) % 2000000000)::int), 1) p
                FROM grid WHERE valid_to IS NULL OR valid_to >= CURRENT_DATE
                ORDER BY md5(code || $1) LIMIT $2) s
            """,
            str(case_api.SEED),
            n,
        )
        pts = [(round(r["x"], 7), round(r["y"], 7), r["code"]) for r in rows]
        got = await conn.fetch(EXPECTED_SQL, [p[0] for p in pts], [p[1] for p in pts])
    finally:
        await conn.close()
    return [p for p, r in zip(pts, got, strict=True) if r["code"] == p[2]]


def public_lua(points: list[tuple[float, float, str]]) -> str:
    pts = ",\n".join(f"  {{{x!r}, {y!r}}}" for x, y, _ in points)
    return (
        case_api.WRAP_DONE
        + f"""
local pts = {{
{pts}
}}
local npts = #pts
local counter = 0
init = function(args)
  math.randomseed({case_api.SEED} + 7919 * (tid or 0))
{case_api.COUNTERS}
end
request = function()
  counter = counter + 1
  local p = pts[math.random(npts)]
  local n = (tid or 0) * 16777216 + counter
  local addr = string.format("100.%d.%d.%d", 64 + math.floor(n / 65536) % 64, math.floor(n / 256) % 256, n % 256)
  local body = string.format(
    '{{"category_code":"{CATEGORY}","description":"bench: tactile paving blocked %d","lon":%.7f,"lat":%.7f}}',
    counter, p[1], p[2])
  return wrk.format("POST", "{PUBLIC_PATH}", {{["Content-Type"] = "application/json", ["X-Forwarded-For"] = addr}},
                    body)
end
{case_api.lua_response("status == 201")}"""
    )


def verify_public(base: str, db: BenchDB, points: list[tuple[float, float, str]]) -> dict[str, Any]:
    """A sample of reports: 201 `verifying`, the grid expected, the rows written, the public view answers."""
    rng = random.Random(case_api.SEED)
    sample = rng.sample(points, min(SAMPLE_REPORTS, len(points)))
    bad: list[str] = []
    codes: list[tuple[str, str]] = []
    with httpx.Client(base_url=base, timeout=10.0) as client:
        for k, (x, y, grid) in enumerate(sample):
            report = {"category_code": CATEGORY, "description": f"bench check {k}", "lon": x, "lat": y}
            r = client.post(PUBLIC_PATH, json=report, headers={"X-Forwarded-For": f"198.18.0.{k}"})
            if r.status_code != 201 or r.json().get("status") != "verifying":
                bad.append(f"({x}, {y}): {r.status_code} {r.text[:200]}")
                continue
            codes.append((r.json()["tracking_code"], grid))
            view = client.get(f"{PUBLIC_PATH}/{r.json()['tracking_code']}")
            if view.status_code != 200 or view.json()["place"]["grid_code"] != grid:
                bad.append(f"view of {r.json()['tracking_code']}: {view.status_code} {view.text[:200]}")

    async def rows() -> int:
        conn = await asyncpg.connect(db.dsn)
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM public_report pr JOIN cases c ON c.id = pr.case_id JOIN case_activity a"
                " ON a.case_id = c.id AND a.seq = 1 WHERE pr.tracking_code = ANY($1::text[])"
                " AND c.status = 'verifying' AND c.source = 'citizen'", [c for c, _ in codes],
            ))  # fmt: skip
        finally:
            await conn.close()

    found = asyncio.run(rows()) if codes else 0
    if found != len(codes):
        bad.append(f"{found} complete rows for {len(codes)} filed reports")
    return {"checked": len(sample), "created": len(codes), "rows": found, "problems": bad[:10], "passed": not bad}


def run(cfg: Settings, db: BenchDB, *, sink: list[Row] | None = None) -> list[Row]:
    """The graded run: verify a sample, then time the load; the row says what was filed and where the CPU went."""
    rows: list[Row] = sink if sink is not None else []
    if wrk.available() is None:
        rows.append(case_api.not_run("public", PUBLIC_TARGET, "needs wrk (the Python fallback sends one body)"))
        return rows
    points = asyncio.run(_points(db.dsn, POINTS_QUICK if db.quick else POINTS_FULL))
    console.print(f"  {len(points)} points in as many grids; jobs go to {case_api.REDIS_URL}")
    label = "public reports"
    try:
        with case_api.server(db, label, env_extra=ENV) as (group, base):
            fresh = case_api.ready(base, group, label)
            check = verify_public(base, db, points)
            console.print(f"  {label}: sample {check['created']}/{check['checked']} filed, rows {check['rows']}")
            for line in check["problems"]:
                console.print(f"[red]    {line}[/red]")
            if not check["passed"]:
                why = "; ".join(check["problems"][:3])
                tail = {"server_log_tail": group.tail(60)}
                rows.append(Row(label, PUBLIC_TARGET, "not timed", False, why, {"verification": check}, tail))
                return rows
            before_id = asyncio.run(max_case_id(db.dsn))
            t0 = time.monotonic()
            m = measure(base, Load(PUBLIC_PATH, public_lua(points), case_api.no_python), cfg, group.pgid, label,
                        database=db.name)  # fmt: skip
            alive = group.alive()
        created = asyncio.run(created_since(db.dsn, before_id))
    finally:
        cleanup = case_api.redis_cleanup()
    res = m["result"]
    extra = case_api.parse_extra(res.raw)
    non201 = sum(extra.get("other", {}).values()) if extra else res.non_2xx
    rps_ok, p99_ok = res.rps >= PUBLIC_RPS, res.p99_ms <= PUBLIC_P99_MS
    passed = rps_ok and p99_ok and non201 == 0 and alive and bool(fresh["fresh"])
    notes = [
        f"p50 {res.p50_ms:.2f} ms, p90 {res.p90_ms:.2f} ms, p95 {extra.get('p95_us', 0) / 1e3:.2f} ms",
        f"{extra.get('ok', '?'):,} × 201, non-201: {non201}"
        + (f" {extra.get('other')} e.g. {extra.get('sample_bad', '')[:160]!r}" if non201 else ""),
        f"sample {check['created']}/{check['checked']} verifying with public report and timeline",
        f"cases created during the load (warm-up + measured): {created['n']:,} in {time.monotonic() - t0:.0f} s",
        describe(m["cpu"]),
        case_api.per_request_cpu(m["cpu"], res.rps),
    ]
    missed = [w for w, miss in (("req/s", not rps_ok), ("p99", not p99_ok), ("non-201 answers", non201 > 0)) if miss]
    if missed:
        notes.insert(0, "missed: " + ", ".join(missed))
    rows.append(
        Row(
            benchmark=label,
            target=PUBLIC_TARGET,
            measured=f"{res.rps:,.0f} req/s, p99 {res.p99_ms:.2f} ms",
            passed=passed,
            notes="; ".join(n for n in notes if n),
            metrics={
                **latency_metrics(res),
                "non_201": non201,
                "created": created["n"],
                "verification": check,
                "redis_cleanup": cleanup,
                "points": len(points),
            },
            details={
                "cpu": m["cpu"],
                "top": m["top"],
                "wrk_output": res.raw,
                "attempts": m["attempts"],
                "server": " ".join(group.argv[1:]),
            },
        )
    )
    return rows
