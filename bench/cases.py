"""`intake` (POST /api/v1/cases from phones) and `case-list` (the dispatcher's GET /api/v1/cases), over a base
of existing cases in the bench database.

Base cases: `ensure_cases()` fills `cases` up to 1,000,000 rows (50,000 with --quick) once, with set-based
`INSERT … SELECT FROM generate_series` statements (chunks of 100,000, progress printed) and then `VACUUM
ANALYZE cases`; later runs see `count(*) >= want` and skip. Every value is a hash of the row number
(`hashint8extended`), so the base is the same on every machine: a random current grid (uniform over grids, so
small inner-city grids get more cases per km²) and a point inside it (`ST_GeneratePoints` with a fixed seed),
the grid's community/street/district codes, an event class, a status spread evenly over reported … closed
with the timestamps, stage, deadline, unit and checker that status implies, received_at spread over the last
365 days (at least one day old). `case_no` is the received day + a 7-digit serial (15 characters: the app's
own numbers are day + 6 digits, so they never collide), `component_code` is NULL (so the import benchmark can
still empty the component table), `reporter_id` is the first worker of the grid's duty grid for worker
reports, version 1. No timeline rows are made for the base.

intake: 2 API processes (`uvicorn grid_mgmt.app:create_app --factory --workers 2 --http httptools --loop
uvloop`), GRID_REDIS_URL = GRID_BENCH_REDIS_URL (default redis://127.0.0.1:6379/15: the routing jobs of the
load must not reach anybody's arq worker; the harness deletes the `arq:*` keys there afterwards). 128 worker
users (32 with --quick) log in once each (`POST /api/v1/auth/login`, password `demo`; tokens reused for 10
minutes); 16 points per worker inside the grids of the worker's duty grid (checked with the app's grid rule).
A sample of 20 reports (new connection each) must answer 201 with the expected grid, areas and no flags, land
in `cases` with their timeline and idempotency rows, and enqueue 20 jobs; a resend must be replayed — else
the load is not timed. Then wrk (Lua: a random worker and one of its points per request, a unique `client_id`
= random nonce of the wrk process + thread + counter, E0102, urgency normal, a short description) at 64
connections; the Lua `response()` counts statuses (any non-201 fails the benchmark) and `done()` adds p95.
Reported beside `noop POST ×2` of the same run (measured here when the run does not include noop). Notes:
CPU split and CPU µs per request (API, PostgreSQL, wrk, Redis, and the busy CPU no sampled process accounts
for), pg_stat_database deltas (new sessions = pool churn), the API's backends by state/wait event (sampled
10×/s from pg_stat_activity), cases created and jobs enqueued. Variants (not graded): two SO_REUSEPORT
processes, GRID_DB_POOL_SIZE=32, and 10 s of one worker under cProfile (bench/results/intake-profile.txt).

case-list: the same API; dispatcher1 (centre roles are scoped by their district) asks
`GET /api/v1/cases?status=registered&bbox=<≈1 km box>&limit=50`; box centres are uniform points of the city
extent that fall in a grid. 20 sample boxes are checked against PostGIS (same ids in the same order), and the
app's own statement (search_repository.list_sql with its tune() settings) is run under EXPLAIN ANALYZE for
them. Graded at 16 connections (p95 from the Lua done()); rows at --connections (64) and at 1 connection
(service time without queueing) for information.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from bench import procs, wrk
from bench.city import BenchDB, grid_extent
from bench.cpu import describe
from bench.http_load import Load, Settings, measure
from bench.locate import _EXPECTED_SQL, _profile_summary, wait_fresh
from bench.util import RESULTS, ROOT, Row, console

# --- targets and sizes -------------------------------------------------------------------------------------

INTAKE_RPS = 2_000
INTAKE_P99_MS = 50.0
INTAKE_TARGET = f"≥ {INTAKE_RPS:,} req/s, p99 ≤ {INTAKE_P99_MS:g} ms"
LIST_P95_MS = 50.0
LIST_TARGET = f"p95 ≤ {LIST_P95_MS:g} ms"
LIST_CONNECTIONS = 16  # graded; a second row uses --connections (default 64)

BASE_CASES_FULL = 1_000_000
BASE_CASES_QUICK = 50_000
CHUNK = 100_000

WORKERS = 2
FLAGS = ("--http", "httptools", "--loop", "uvloop")
APP = "grid_mgmt.app:create_app"
DIAG_APP = "bench.diag_app:create_app"
SEED = 20240601
PASSWORD = "demo"
CATEGORY = "E0102"
POINTS_PER_WORKER = 16
INTAKE_USERS_FULL, INTAKE_USERS_QUICK = 128, 32
SAMPLE_REPORTS = 20
BBOX_KM = 1.0
SAMPLE_BOXES = 20
DISPATCHER = "dispatcher1"
TOKEN_REUSE_S = 600.0  # access tokens live 15 minutes: log in again after 10

REDIS_URL = os.environ.get("GRID_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
INTAKE_PATH = "/api/v1/cases"


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


# --- the base of existing cases ----------------------------------------------------------------------------

STATUSES = ("reported", "registered", "dispatched", "handling", "handled", "checking", "checked", "closed")

# $1, $2: first and last row number; $3: "now" of the seeding run. h(k) = a non-negative hash of (row, k).
_SEED_SQL = """
WITH gr AS MATERIALIZED (
    SELECT (row_number() OVER (ORDER BY code) - 1) AS k, code FROM grid
    WHERE valid_to IS NULL OR valid_to >= CURRENT_DATE
), ngr AS MATERIALIZED (
    SELECT count(*) AS n FROM gr
), ev AS MATERIALIZED (
    SELECT array_agg(code ORDER BY code) AS codes FROM category WHERE kind = 'event' AND active
), un AS MATERIALIZED (
    SELECT array_agg(code ORDER BY code) AS codes FROM unit WHERE active
), wk AS MATERIALIZED (
    SELECT dg.grid_code, min(w.user_id) AS uid
    FROM duty_grid_grid dg JOIN duty_grid_worker w ON w.duty_grid_code = dg.duty_grid_code
    GROUP BY dg.grid_code
), r AS MATERIALIZED (
    SELECT i,
           (hashint8extended(i, 11) & 9223372036854775807) % ngr.n AS gk,
           ev.codes[1 + (hashint8extended(i, 12) & 9223372036854775807) % cardinality(ev.codes)] AS category_code,
           un.codes[1 + (hashint8extended(i, 13) & 9223372036854775807) % cardinality(un.codes)] AS unit_code,
           1 + ((hashint8extended(i, 14) & 9223372036854775807) % 8)::int AS st,
           (ARRAY['urgent','fairly_urgent','normal','normal','normal','normal','normal','normal','normal','normal'])
               [1 + (hashint8extended(i, 15) & 9223372036854775807) % 10] AS urgency,
           (ARRAY['worker','worker','worker','worker','worker','hotline','hotline','video','inspection','leader'])
               [1 + (hashint8extended(i, 16) & 9223372036854775807) % 10] AS source,
           $3::timestamptz - make_interval(
               secs => 86400 + ((hashint8extended(i, 17) & 9223372036854775807) % (364 * 86400))) AS received_at
    FROM generate_series($1::bigint, $2::bigint) i, ngr, ev, un
), t AS (
    SELECT r.*, gr.code AS grid_code,
           r.received_at + interval '20 minutes' AS reg_at,
           r.received_at + interval '50 minutes' AS dis_at,
           r.received_at + interval '80 minutes' AS ack_at,
           r.received_at + interval '6 hours' AS han_at,
           r.received_at + interval '7 hours' AS chk_start,
           r.received_at + interval '8 hours' AS chk_at,
           r.received_at + interval '9 hours' AS clo_at
    FROM r JOIN gr ON gr.k = r.gk
)
INSERT INTO cases (case_no, source, category_code, urgency, description, geom, input_crs, accuracy_m, address,
                   grid_code, community_code, street_code, district_code, reporter_id, captured_at, received_at,
                   status, version, stage, unit_code, registered_at, dispatched_at, acknowledged_at, handled_at,
                   checked_at, closed_at, deadline, stage_started_at, checker_id, flags, updated_at)
SELECT to_char(t.received_at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || lpad(t.i::text, 7, '0'),
       t.source, t.category_code, t.urgency,
       'bench base case ' || t.i || ': ' || t.category_code || ' reported in grid ' || g.code,
       ST_GeometryN(ST_GeneratePoints(g.geom, 1, (1 + t.i % 2000000000)::int), 1),
       'wgs84', 3 + (t.i % 30), NULL,
       g.code, g.community_code, left(g.code, 9), left(g.code, 6),
       CASE WHEN t.source = 'worker' THEN wk.uid END,
       CASE WHEN t.source = 'worker' THEN t.received_at - interval '2 minutes' END,
       t.received_at,
       (ARRAY['reported','registered','dispatched','handling','handled','checking','checked','closed'])[t.st], 1,
       (ARRAY['register','dispatch','handle','handle',NULL,'check',NULL,NULL])[t.st],
       CASE WHEN t.st >= 3 THEN t.unit_code END,
       CASE WHEN t.st >= 2 THEN t.reg_at END,
       CASE WHEN t.st >= 3 THEN t.dis_at END,
       CASE WHEN t.st >= 4 THEN t.ack_at END,
       CASE WHEN t.st >= 5 THEN t.han_at END,
       CASE WHEN t.st >= 7 THEN t.chk_at END,
       CASE WHEN t.st = 8 THEN t.clo_at END,
       (ARRAY[t.received_at + interval '30 minutes', t.reg_at + interval '30 minutes',
              t.dis_at + interval '4 hours', t.dis_at + interval '4 hours', NULL,
              t.chk_start + interval '1 hour', NULL, NULL]::timestamptz[])[t.st],
       (ARRAY[t.received_at, t.reg_at, t.dis_at, t.dis_at, NULL, t.chk_start, NULL, NULL]::timestamptz[])[t.st],
       CASE WHEN t.st >= 6 THEN wk.uid END,
       '{}',
       (ARRAY[t.received_at, t.reg_at, t.dis_at, t.ack_at, t.han_at, t.chk_start, t.chk_at, t.clo_at]
            ::timestamptz[])[t.st]
FROM t JOIN grid g ON g.code = t.grid_code LEFT JOIN wk ON wk.grid_code = t.grid_code
"""


def base_cases(db: BenchDB) -> int:
    return BASE_CASES_QUICK if db.quick else BASE_CASES_FULL


_ENSURED: dict[str, dict[str, Any]] = {}


async def _ensure_cases(dsn: str, want: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        have = int(await conn.fetchval("SELECT count(*) FROM cases"))
        if have >= want:
            console.print(f"  cases: {have:,} rows (≥ {want:,}): base present, nothing to insert")
            return {"cases": have, "inserted": 0, "seconds": 0.0}
        # Base rows carry a 15-character case_no (day + 7-digit serial = the row number); rows of earlier,
        # interrupted seeding runs are kept and numbering goes on after them.
        seeded = int(await conn.fetchval("SELECT count(*) FROM cases WHERE length(case_no) = 15"))
        missing = want - have
        first, last = seeded + 1, seeded + missing
        console.print(
            f"  cases: {have:,} rows; inserting {missing:,} base cases (rows {first:,}–{last:,}) in chunks of {CHUNK:,}"
        )
        now = await conn.fetchval("SELECT date_trunc('hour', now())")
        t0 = time.monotonic()
        await conn.execute("SET synchronous_commit = off")  # the bulk load only; each chunk still commits
        lo = first
        while lo <= last:
            hi = min(lo + CHUNK - 1, last)
            t1 = time.monotonic()
            await conn.execute(_SEED_SQL, lo, hi, now)
            done = hi - first + 1
            rate = (hi - lo + 1) / max(time.monotonic() - t1, 1e-9)
            console.print(
                f"[dim]  cases: {done:,}/{missing:,} inserted ({time.monotonic() - t0:.0f} s, {rate:,.0f} rows/s)[/dim]"
            )
            lo = hi + 1
        t2 = time.monotonic()
        console.print("[dim]  cases: VACUUM ANALYZE cases…[/dim]")
        await conn.execute("VACUUM (ANALYZE) cases")
        total = int(await conn.fetchval("SELECT count(*) FROM cases"))
        console.print(
            f"  cases: {total:,} rows; inserted {missing:,} in {t2 - t0:.0f} s, VACUUM ANALYZE"
            f" {time.monotonic() - t2:.0f} s"
        )
        return {"cases": total, "inserted": missing, "seconds": round(time.monotonic() - t0, 1)}
    finally:
        await conn.close()


def ensure_cases(db: BenchDB) -> dict[str, Any]:
    """The base of existing cases (once per run; idempotent across runs)."""
    if db.name not in _ENSURED:
        _ENSURED[db.name] = asyncio.run(_ensure_cases(db.dsn, base_cases(db)))
    return _ENSURED[db.name]


async def _case_facts(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM cases GROUP BY status ORDER BY status")
        return {
            "cases": sum(int(r["n"]) for r in rows),
            "by_status": {r["status"]: int(r["n"]) for r in rows},
            "case_activity": int(await conn.fetchval("SELECT count(*) FROM case_activity")),
            "idempotency_key": int(await conn.fetchval("SELECT count(*) FROM idempotency_key")),
        }
    finally:
        await conn.close()


async def _max_case_id(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM cases"))
    finally:
        await conn.close()


async def _created_since(dsn: str, after_id: int) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE 'outside_duty_grid' = ANY(flags)) AS outside,"
            " count(*) FILTER (WHERE status <> 'reported') AS not_reported FROM cases WHERE id > $1",
            after_id,
        )
        assert row is not None
        return {k: int(v) for k, v in row.items()}
    finally:
        await conn.close()


# --- Redis (the routing jobs) ------------------------------------------------------------------------------


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


def redis_queue_len() -> int | None:
    try:
        r = _redis()
        try:
            return int(r.zcard("arq:queue"))
        finally:
            r.close()
    except Exception:
        return None


def redis_cleanup() -> dict[str, Any]:
    """Delete the arq keys the load left in the bench Redis database (jobs nobody will run)."""
    try:
        r = _redis()
        try:
            queued = int(r.zcard("arq:queue"))
            deleted = 0
            batch: list[bytes] = []
            for key in r.scan_iter(match="arq:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += int(r.delete(*batch))
                    batch = []
            if batch:
                deleted += int(r.delete(*batch))
            return {"queued": queued, "deleted_keys": deleted, "left": int(r.dbsize())}
        finally:
            r.close()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


# --- the API, users and tokens -----------------------------------------------------------------------------


def _env(db: BenchDB, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GRID_DATABASE_URL": db.url,
        "GRID_REDIS_URL": REDIS_URL,
        "GRID_DEBUG": "0",
        **extra,
    }


def _server(db: BenchDB, label: str, *, target: str = APP, workers: int = WORKERS, reuseport: bool = False,
            env_extra: dict[str, str] | None = None) -> Any:  # fmt: skip
    log = RESULTS / "logs" / f"{_slug(label)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = _env(db, **(env_extra or {}))
    if reuseport:
        return procs.uvicorn_reuseport(
            target, factory=True, processes=workers, env=env, log=log, extra=FLAGS, ready_path="/health"
        )
    return procs.uvicorn(target, factory=True, workers=workers, env=env, log=log, extra=FLAGS, ready_path="/health")


@dataclass
class Token:
    user_id: int
    username: str
    token: str
    at: float  # time.monotonic() of the login


_TOKENS: dict[tuple[str, str], Token] = {}


async def _login_all(base: str, usernames: list[str], concurrency: int = 8) -> dict[str, Token]:
    sem = asyncio.Semaphore(concurrency)
    out: dict[str, Token] = {}
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:

        async def one(name: str) -> None:
            async with sem:
                r = await client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            if r.status_code != 200:
                errors.append(f"{name}: {r.status_code} {r.text[:200]}")
                return
            body = r.json()
            out[name] = Token(int(body["user"]["id"]), name, body["access_token"], time.monotonic())

        await asyncio.gather(*(one(n) for n in usernames))
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(usernames)} logins failed, e.g. {errors[:3]}")
    return out


def tokens(db: BenchDB, base: str, usernames: list[str]) -> dict[str, Token]:
    """Log each user in once (tokens are reused for 10 minutes: they are valid on every process)."""
    now = time.monotonic()
    need = [u for u in usernames if (db.name, u) not in _TOKENS or now - _TOKENS[(db.name, u)].at > TOKEN_REUSE_S]
    if need:
        t0 = time.monotonic()
        got = asyncio.run(_login_all(base, need))
        for name, tok in got.items():
            _TOKENS[(db.name, name)] = tok
        console.print(f"  logged in {len(need)} user(s) in {time.monotonic() - t0:.1f} s")
    return {u: _TOKENS[(db.name, u)] for u in usernames}


def _ready(base: str, group: procs.Group, label: str) -> dict[str, Any]:
    fresh = wait_fresh(base, group)
    console.print(f"  {label}: grid index {'fresh' if fresh['fresh'] else 'NOT fresh'} after {fresh['seconds']} s")
    return fresh


def _lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for these characters


# Appended to the scripts: wrap the harness's done() (bench/wrk.py DONE_LUA, appended after this script) so
# that ours runs too. Ours prints one more JSON line: status counts from response() of every thread, and p95.
_WRAP_DONE = r"""
local extra_done
setmetatable(_G, {__newindex = function(t, k, v)
  if k == "done" and type(v) == "function" then
    rawset(t, k, function(summary, latency, requests)
      v(summary, latency, requests)
      extra_done(summary, latency, requests)
    end)
  else
    rawset(t, k, v)
  end
end})
local function esc(s) return (string.gsub(s or "", '[%c"\\]', " ")) end
extra_done = function(summary, latency, requests)
  local ok, empty, other, sample = 0, 0, {}, ""
  for _, t in ipairs(threads) do
    ok = ok + (t:get("n_ok") or 0)
    empty = empty + (t:get("n_empty") or 0)
    local o = t:get("n_other") or {}
    for k, n in pairs(o) do other[k] = (other[k] or 0) + n end
    local s = t:get("sample_bad")
    if s and sample == "" then sample = s end
  end
  local parts = {}
  for k, n in pairs(other) do parts[#parts + 1] = string.format('"%s":%d', k, n) end
  io.write(string.format(
    'BENCH_CASES {"ok":%d,"empty":%d,"other":{%s},"p95_us":%d,"sample_bad":"%s"}\n',
    ok, empty, table.concat(parts, ","), latency:percentile(95), esc(sample)))
end
threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
"""


def _parse_extra(raw: str) -> dict[str, Any]:
    m = re.search(r"^BENCH_CASES (\{.*\})$", raw, re.M)
    return json.loads(m.group(1)) if m else {}


# --- intake ------------------------------------------------------------------------------------------------


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
            str(SEED),
            n_users,
            per_user,
        )
        pts = [Point(r["username"], round(r["x"], 7), round(r["y"], 7), r["code"]) for r in rows]
        got = await conn.fetch(_EXPECTED_SQL, [p.lon for p in pts], [p.lat for p in pts])
    finally:
        await conn.close()
    # keep the points whose grid by the app's rule is the one they were made in (drops points on an edge)
    kept = [p for p, r in zip(pts, got, strict=True) if r["code"] == p.grid]
    return kept


def intake_lua(points: list[Point], toks: dict[str, Token]) -> str:
    users = sorted({p.user for p in points})
    index = {u: i + 1 for i, u in enumerate(users)}
    auth = ",\n".join(f"  {_lua_str('Bearer ' + toks[u].token)}" for u in users)
    pts = ",\n".join(f"  {{{index[p.user]}, {p.lon!r}, {p.lat!r}}}" for p in points)
    return (
        _WRAP_DONE
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
  math.randomseed({SEED} + 7919 * (tid or 0))
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(6); f:close()
    nonce = (string.gsub(b, ".", function(c) return string.format("%02x", string.byte(c)) end))
  else
    nonce = string.format("%x%x", os.time(), math.random(1, 2147483647))
  end
  n_ok = 0
  n_empty = 0
  n_other = {{}}
  sample_bad = nil
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
response = function(status, headers, body)
  if status == 201 then
    n_ok = n_ok + 1
  else
    local k = tostring(status)
    n_other[k] = (n_other[k] or 0) + 1
    if sample_bad == nil then sample_bad = k .. " " .. string.sub(body or "", 1, 300) end
  end
end
"""
    )


def verify_intake(base: str, db: BenchDB, points: list[Point], toks: dict[str, Token]) -> dict[str, Any]:
    """A sample of reports: 201, the expected grid, no flags; rows, timeline, idempotency record, jobs; replay."""
    rng = random.Random(SEED)
    sample = rng.sample(points, min(SAMPLE_REPORTS, len(points)))
    nonce = f"{int(time.time() * 1000):x}"
    queue_before = redis_queue_len()
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
            return {
                "cases": int(await conn.fetchval("SELECT count(*) FROM cases WHERE id = ANY($1::bigint[])", ids)),
                "timeline": int(
                    await conn.fetchval(
                        "SELECT count(*) FROM case_activity WHERE case_id = ANY($1::bigint[]) AND seq = 1"
                        " AND action = 'report'",
                        ids,
                    )
                ),
                "idempotency": int(
                    await conn.fetchval(
                        "SELECT count(*) FROM idempotency_key WHERE key LIKE $1", f"bench-verify-{nonce}-%"
                    )
                ),
            }
        finally:
            await conn.close()

    found = asyncio.run(rows()) if ids else {"cases": 0, "timeline": 0, "idempotency": 0}
    queue_after = redis_queue_len()
    jobs = None if queue_before is None or queue_after is None else queue_after - queue_before
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
        "replay": replay,
        "problems": bad[:10],
        "passed": not bad and len(ids) == len(sample),
        "latency_ms_new_connection": {
            "median": round(sorted(latencies)[len(latencies) // 2], 1) if latencies else None
        },
    }


async def _db_stats(dsn: str) -> dict[str, int]:
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


def _per_request_cpu(split: dict[str, Any], rps: float) -> str:
    """CPU microseconds per request of the main groups, and the busy CPU no sampled process accounts for."""
    if rps <= 0:
        return ""
    parts = []
    for name, g in split["groups"].items():
        if name in ("api (uvicorn)", "postgresql (bench db)", "wrk", "redis", "postgresql (background)"):
            parts.append(f"{name} {g['cores'] / rps * 1e6:,.0f}")
    unattributed = split["system_busy_cores"] - sum(g["cores"] for g in split["groups"].values())
    text = "CPU µs per request: " + ", ".join(parts)
    if unattributed >= 0.05:
        text += (
            f"; machine CPU not attributed to any sampled process: {unattributed:.2f} cores"
            f" ({unattributed / rps * 1e6:,.0f} µs per request: processes that lived between two 0.25 s samples,"
            " most likely PostgreSQL backends of pool connections opened and closed)"
        )
    return text


def _noop_post_row(rows: list[Row]) -> Row | None:
    return next((r for r in rows if r.benchmark == "noop POST ×2"), None)


def run_intake_one(
    cfg: Settings,
    db: BenchDB,
    *,
    label: str,
    points: list[Point],
    users: list[str],
    graded: bool,
    noop: Row | None,
    target: str = APP,
    workers: int = WORKERS,
    reuseport: bool = False,
    env_extra: dict[str, str] | None = None,
    verify: bool = True,
) -> Row:
    with _server(db, label, target=target, workers=workers, reuseport=reuseport, env_extra=env_extra) as (
        group,
        base,
    ):
        fresh = _ready(base, group, label)
        toks = tokens(db, base, users)
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
                    + f"; server log bench/results/logs/{_slug(label)}.log",
                    metrics={"verification": check},
                    details={"server_log_tail": group.tail(60)},
                )
        before_id = asyncio.run(_max_case_id(db.dsn))
        queue_before = redis_queue_len()
        stats_before = asyncio.run(_db_stats(db.dsn))
        load = Load(INTAKE_PATH, intake_lua(points, toks), _no_python)
        with WaitSampler(db.dsn) as waits:
            m = measure(base, load, cfg, group.pgid, label, database=db.name)
        stats_after = asyncio.run(_db_stats(db.dsn))
        backends = waits.summary(m["window"])
        server_alive = group.alive()
    created = asyncio.run(_created_since(db.dsn, before_id))
    stats = {k: stats_after[k] - stats_before[k] for k in stats_before}
    queue_after = redis_queue_len()
    jobs = None if queue_before is None or queue_after is None else queue_after - queue_before
    res = m["result"]
    extra = _parse_extra(res.raw)
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
    notes.append(_per_request_cpu(m["cpu"], res.rps))
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
            "rps": round(res.rps, 1),
            "p50_ms": res.p50_ms,
            "p75_ms": res.p75_ms,
            "p90_ms": res.p90_ms,
            "p95_ms": p95,
            "p99_ms": res.p99_ms,
            "p999_ms": res.p999_ms,
            "max_ms": res.max_ms,
            "requests": res.requests,
            "created_201": extra.get("ok"),
            "non_201": non201,
            "non_201_by_status": extra.get("other"),
            "socket_errors": res.socket_errors,
            "duration_s": res.duration_s,
            "connections": res.connections,
            "wrk_threads": res.threads,
            "workers": workers,
            "users": len(users),
            "points": len(points),
            "cases_created_during_load": created["n"],
            "pg_stat_database_delta": stats,
            "pg_backends_mean": backends,
            "jobs_enqueued_during_load": jobs,
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
            "redis": REDIS_URL,
        },
    )


def _no_python(_: random.Random) -> tuple[str, str, bytes | None]:
    raise RuntimeError("this benchmark needs wrk (the Python load generator sends no Authorization header)")


def _not_run(name: str, target: str, why: str) -> Row:
    return Row(name, target, "not run", False, why)


def run_intake(
    cfg: Settings, db: BenchDB, *, variants: bool = True, sink: list[Row] | None = None, noop: Row | None = None
) -> list[Row]:
    """The graded intake run (beside noop POST ×2) and, with `variants`, SO_REUSEPORT and a cProfile."""
    rows: list[Row] = sink if sink is not None else []
    if wrk.available() is None:
        rows.append(_not_run("intake", INTAKE_TARGET, "needs wrk (the Python fallback sends no Authorization header)"))
        return rows
    base_info = ensure_cases(db)
    before = asyncio.run(_case_facts(db.dsn))
    n_users = INTAKE_USERS_QUICK if db.quick else INTAKE_USERS_FULL
    points = asyncio.run(_worker_points(db.dsn, n_users, POINTS_PER_WORKER))
    users = sorted({p.user for p in points})
    console.print(
        f"  {before['cases']:,} cases before intake; {len(users)} workers, {len(points)} points in their duty grids;"
        f" routing jobs go to {REDIS_URL}"
    )
    if noop is None:
        from bench import noop as noop_bench

        got = noop_bench.run(cfg, methods=("POST",), workers=(WORKERS,), variants=False, sink=[])
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
                    cfg, db, label="intake, 2 procs SO_REUSEPORT (tuning)", points=points, users=users,
                    graded=False, noop=noop, reuseport=True, verify=False,
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
        cleanup = redis_cleanup()
        after = asyncio.run(_case_facts(db.dsn))
        console.print(
            f"  cases now {after['cases']:,} (+{after['cases'] - before['cases']:,} by this run);"
            f" redis {REDIS_URL}: {cleanup}"
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
    prof_base = RESULTS / "logs" / "intake-profile"
    for old in prof_base.parent.glob(prof_base.name + ".*.prof"):
        old.unlink()
    short = dataclasses.replace(cfg, duration=min(cfg.duration, 10.0), warmup=0.0, retries=0)
    row = run_intake_one(
        short, db, label="intake, cProfile x1 (diag)", points=points, users=users, graded=False, noop=noop,
        target=DIAG_APP, workers=1, env_extra={"BENCH_PROFILE": str(prof_base)}, verify=False,
    )  # fmt: skip
    files = sorted(prof_base.parent.glob(prof_base.name + ".*.prof"))
    if files:
        row.details["profile"] = _profile_summary(files, top=40)
        (RESULTS / "intake-profile.txt").write_text(row.details["profile"])
        row.notes += "; profile in bench/results/intake-profile.txt"
    return row


# --- case list ---------------------------------------------------------------------------------------------


def _half_sizes(lat: float) -> tuple[float, float]:
    half = BBOX_KM / 2
    return half / (111.32 * math.cos(math.radians(lat))), half / 110.57


async def _box_centres(dsn: str, extent: tuple[float, float, float, float], n: int) -> list[tuple[float, float]]:
    """Uniform points of the extent that fall in a grid (deterministic)."""
    x0, y0, x1, y1 = extent
    hx, hy = _half_sizes((y0 + y1) / 2)
    rng = random.Random(SEED)
    cand = [(round(rng.uniform(x0 + hx, x1 - hx), 6), round(rng.uniform(y0 + hy, y1 - hy), 6)) for _ in range(n * 2)]
    conn = await asyncpg.connect(dsn)
    try:
        got = await conn.fetch(_EXPECTED_SQL, [c[0] for c in cand], [c[1] for c in cand])
    finally:
        await conn.close()
    return [c for c, r in zip(cand, got, strict=True) if r["code"] is not None][:n]


def _bbox(c: tuple[float, float]) -> tuple[float, float, float, float]:
    hx, hy = _half_sizes(c[1])
    return (round(c[0] - hx, 6), round(c[1] - hy, 6), round(c[0] + hx, 6), round(c[1] + hy, 6))


def list_lua(centres: list[tuple[float, float]], token: str) -> str:
    boxes = ",\n".join("  {%r, %r, %r, %r}" % _bbox(c) for c in centres)  # noqa: UP031
    return (
        _WRAP_DONE
        + f"""
local boxes = {{
{boxes}
}}
local nb = #boxes
local hdrs = {{["Authorization"] = {_lua_str("Bearer " + token)}}}
init = function(args)
  math.randomseed({SEED} + 7919 * (tid or 0))
  n_ok = 0
  n_empty = 0
  n_other = {{}}
  sample_bad = nil
end
request = function()
  local b = boxes[math.random(nb)]
  return wrk.format("GET", string.format(
    "/api/v1/cases?status=registered&bbox=%.6f,%.6f,%.6f,%.6f&limit=50", b[1], b[2], b[3], b[4]), hdrs)
end
response = function(status, headers, body)
  if status == 200 then
    n_ok = n_ok + 1
    if string.find(body, '"items":[]', 1, true) then n_empty = n_empty + 1 end
  else
    local k = tostring(status)
    n_other[k] = (n_other[k] or 0) + 1
    if sample_bad == nil then sample_bad = k .. " " .. string.sub(body or "", 1, 300) end
  end
end
"""
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
    rng = random.Random(SEED + 1)
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
        rows.append(_not_run("case-list", LIST_TARGET, "needs wrk (the Python fallback sends no Authorization header)"))
        return rows
    ensure_cases(db)
    facts = asyncio.run(_case_facts(db.dsn))
    extent = asyncio.run(grid_extent(db.dsn))
    centres = asyncio.run(_box_centres(db.dsn, extent, 2000))
    console.print(
        f"  {facts['cases']:,} cases ({facts['by_status'].get('registered', 0):,} registered);"
        f" {len(centres)} box centres of {BBOX_KM:g} km boxes"
    )
    setups: list[tuple[str, int, bool]] = [(f"case-list ({LIST_CONNECTIONS} connections)", LIST_CONNECTIONS, True)]
    if variants:
        if cfg.connections != LIST_CONNECTIONS:
            setups.append((f"case-list ({cfg.connections} connections)", cfg.connections, False))
        setups.append(("case-list (1 connection: service time)", 1, False))
    label0 = setups[0][0]
    with _server(db, "case-list") as (group, base):
        fresh = _ready(base, group, label0)
        tok = tokens(db, base, [DISPATCHER])[DISPATCHER]
        district = asyncio.run(_user_district(db.dsn, DISPATCHER))
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
        load = Load("/api/v1/cases", list_lua(centres, tok.token), _no_python)
        for label, conns, graded in setups:
            before = asyncio.run(_db_stats(db.dsn))
            m = measure(base, load, dataclasses.replace(cfg, connections=conns), group.pgid, label, database=db.name)
            after = asyncio.run(_db_stats(db.dsn))
            m["db_stats"] = {k: after[k] - before[k] for k in before}
            rows.append(_list_row(label, m, check, graded, conns, facts, fresh, group, plan))
    return rows


def explain_list(
    db: BenchDB, centres: list[tuple[float, float]], district: str, n: int = SAMPLE_BOXES
) -> dict[str, Any]:
    """The app's own list statement (search_repository.list_sql, its tune() settings) under EXPLAIN ANALYZE for
    sample boxes: planning + execution time and the plan's scan nodes."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from grid_mgmt.cases import search_repository as srepo
    from grid_mgmt.cases.search import ALL_STATUSES
    from grid_mgmt.lib.auth import Principal

    principal = Principal(user_id=0, username=DISPATCHER, roles=frozenset({"dispatcher"}), district_code=district)
    sample = random.Random(SEED + 1).sample(centres, min(n, len(centres)))

    async def go() -> dict[str, Any]:
        engine = create_async_engine(db.url)
        times: list[float] = []
        shapes: dict[str, int] = {}
        first = ""
        try:
            async with engine.connect() as conn:
                for c in sample:
                    flt = srepo.CaseFilter(statuses=("registered",), bbox=_bbox(c))
                    sql, params = srepo.list_sql(flt, principal, srepo.SORTS["-received_at"], None, 50, ALL_STATUSES)
                    await srepo.tune(conn)
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
            "example": first,
        }

    return asyncio.run(go())


async def _user_district(dsn: str, username: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SELECT district_code FROM app_user WHERE username = $1", username) or "")
    finally:
        await conn.close()


def _list_row(
    label: str, m: dict[str, Any], check: dict[str, Any], graded: bool, conns: int, facts: dict[str, Any],
    fresh: dict[str, Any], group: procs.Group, plan: dict[str, Any],
) -> Row:  # fmt: skip
    res = m["result"]
    extra = _parse_extra(res.raw)
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
        _per_request_cpu(m["cpu"], res.rps),
        f"new PostgreSQL sessions during the load (warm-up + measured): {m['db_stats']['sessions']:,}",
        f"the list statement alone (EXPLAIN ANALYZE, {plan['boxes']} boxes, idle server):"
        f" median {plan['median_ms']} ms, max {plan['max_ms']} ms, plan {' | '.join(plan['plans'])}",
    ]
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
        target=LIST_TARGET if graded else f"information (target {LIST_TARGET} is graded at {LIST_CONNECTIONS})",
        measured=f"p95 {p95:.2f} ms ({res.rps:,.0f} req/s)",
        passed=passed if graded else None,
        notes="; ".join(n for n in notes if n),
        metrics={
            "rps": round(res.rps, 1),
            "p50_ms": res.p50_ms,
            "p75_ms": res.p75_ms,
            "p90_ms": res.p90_ms,
            "p95_ms": p95,
            "p99_ms": res.p99_ms,
            "p999_ms": res.p999_ms,
            "max_ms": res.max_ms,
            "requests": res.requests,
            "ok_200": extra.get("ok"),
            "empty_pages": empty,
            "non_200": non200,
            "non_200_by_status": extra.get("other"),
            "socket_errors": res.socket_errors,
            "duration_s": res.duration_s,
            "connections": conns,
            "wrk_threads": res.threads,
            "workers": WORKERS,
            "bbox_km": BBOX_KM,
            "correctness": check,
            "explain": {k: v for k, v in plan.items() if k != "example"},
            "pg_stat_database_delta": m["db_stats"],
            "cases": facts,
            "warmup_fresh": fresh,
            "connections_by_pid": m["connections_by_pid"],
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


if __name__ == "__main__":  # `python -m bench.cases [--quick]`: only create the base of existing cases
    import sys

    from bench.city import bench_db

    print(ensure_cases(bench_db("--quick" in sys.argv[1:])))
