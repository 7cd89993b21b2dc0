"""The base of existing cases of the bench database (1,000,000 rows, 50,000 with --quick) and its routing rules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench.city import BenchDB
from bench.util import console

BASE_CASES_FULL = 1_000_000
BASE_CASES_QUICK = 50_000
CHUNK = 100_000

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
        if have > want:
            have = await _trim(conn, have)
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


async def _trim(conn: asyncpg.Connection, have: int) -> int:
    """Delete the cases earlier benchmark runs filed (intake, public, routing: all but the base rows, whose case_no
    has 15 characters), so every run measures against the stated base; VACUUM ANALYZE after."""
    t0 = time.monotonic()
    async with conn.transaction():
        filed = "SELECT id FROM cases WHERE length(case_no) <> 15"
        for table in ("case_activity", "attachment", "outbox"):
            await conn.execute(f"DELETE FROM {table} WHERE case_id IN ({filed})")
        await conn.execute("UPDATE cases SET duplicate_of = NULL WHERE duplicate_of IN (" + filed + ")")
        removed = int((await conn.execute("DELETE FROM cases WHERE length(case_no) <> 15")).split()[-1])
        await conn.execute("DELETE FROM idempotency_key")
    if removed:
        console.print(f"[dim]  cases: removed {removed:,} filed by earlier runs; VACUUM ANALYZE…[/dim]")
        for table in ("cases", "case_activity", "idempotency_key", "public_report", "case_contact"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        console.print(f"  cases: {have - removed:,} rows after trimming ({time.monotonic() - t0:.0f} s)")
    return have - removed


def ensure_cases(db: BenchDB) -> dict[str, Any]:
    """The base of existing cases (once per run; idempotent across runs)."""
    if db.name not in _ENSURED:
        _ENSURED[db.name] = asyncio.run(_ensure_cases(db.dsn, base_cases(db)))
    return _ENSURED[db.name]


async def case_facts(dsn: str) -> dict[str, Any]:
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


async def max_case_id(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM cases"))
    finally:
        await conn.close()


async def created_since(dsn: str, after_id: int) -> dict[str, int]:
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


_ROUTING: dict[str, dict[str, Any]] = {}


async def _ensure_routing(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        sql = "SELECT (SELECT count(*) FROM routing_rule), (SELECT count(*) FROM category WHERE auto_dispatch)"
        row = await conn.fetchrow(sql)
        assert row is not None
        if row[0] and row[1]:
            return {"rules": int(row[0]), "auto_dispatch_classes": int(row[1]), "loaded_now": False}
        from seeds.routing import load_routing

        async with conn.transaction():
            rules = await load_routing(conn)
        auto = int(await conn.fetchval("SELECT count(*) FROM category WHERE auto_dispatch"))
        console.print(f"  routing: the bench city had no demo routing rules; loaded {rules} (seeds.routing)")
        return {"rules": rules, "auto_dispatch_classes": auto, "loaded_now": True}
    finally:
        await conn.close()


def ensure_routing(db: BenchDB) -> dict[str, Any]:
    """The demo routing rules (seeds.routing.load_routing), loaded when a city from before routing lacks them."""
    if db.name not in _ROUTING:
        _ROUTING[db.name] = asyncio.run(_ensure_routing(db.dsn))
    return _ROUTING[db.name]


if __name__ == "__main__":  # `python -m bench.case_base [--quick]`: only create the base of existing cases
    import sys

    from bench.city import bench_db

    print(ensure_cases(bench_db("--quick" in sys.argv[1:])))
