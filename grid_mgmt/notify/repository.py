"""SQL of the outbox: the one-statement insert, the claim with a lease, the result, the sweep and the listing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.lib.sql import text

CASE_FACTS = (
    "case_no", "status", "unit_code", "district_code", "street_code", "grid_code", "reporter_id", "checker_id",
)  # fmt: skip
"""The case columns every event carries: what the scope filter and the receivers need."""

_FACTS_SQL = ", ".join(f"'{name}', c.{name}" for name in CASE_FACTS)

# One statement inside the caller's transaction for any number of announcements (`n` numbers them): the case's
# facts (read here only when the caller did not pass them), one event row each, and one webhook row when the
# named unit has an endpoint.
_INSERT = text(f"""
WITH v AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS v(n int, topic text, case_id bigint, unit_code text, lookup boolean, payload jsonb)
), facts AS (
    SELECT v.n, v.topic, v.case_id, v.unit_code,
           COALESCE((SELECT jsonb_build_object({_FACTS_SQL}) FROM cases c WHERE c.id = v.case_id AND v.lookup),
                    '{{}}'::jsonb) || v.payload AS payload
    FROM v
), targets AS (
    SELECT f.n, CAST(NULL AS varchar) AS url FROM facts f
    UNION ALL
    SELECT f.n, u.webhook_url FROM facts f JOIN unit u ON u.code = f.unit_code
    WHERE u.active AND COALESCE(u.webhook_url, '') <> ''
)
INSERT INTO outbox (topic, case_id, unit_code, target_url, payload, attempts, delivered_at)
SELECT f.topic, f.case_id, f.payload->>'unit_code', t.url, f.payload,
       CASE WHEN t.url IS NULL THEN 1 ELSE 0 END, CASE WHEN t.url IS NULL THEN now() END
FROM facts f JOIN targets t ON t.n = f.n
ORDER BY f.n, t.url NULLS FIRST
RETURNING id, target_url, payload
""")


@dataclass(frozen=True, slots=True)
class Row:
    """One announcement to write: `payload` (JSON-ready) wins over the case facts looked up when `lookup`."""

    topic: str
    case_id: int | None
    unit_code: str | None
    lookup: bool
    payload: dict[str, Any]


async def insert(conn: AsyncConnection, rows: list[Row]) -> list[Any]:
    """Insert the event rows (recorded as delivered: they are published right after the commit) and the webhook
    rows of `rows` in one statement. Rows of (id, target_url, payload), in the order of `rows`."""
    if not rows:
        return []
    values = [
        {"n": n, "topic": r.topic, "case_id": r.case_id, "unit_code": r.unit_code, "lookup": r.lookup,
         "payload": r.payload}
        for n, r in enumerate(rows)
    ]  # fmt: skip
    return list((await conn.execute(_INSERT, {"rows": msgspec.json.encode(values).decode()})).all())


@dataclass(frozen=True, slots=True)
class Claim:
    """A row this worker may deliver until its lease ends; `attempts` counts this attempt too."""

    id: int
    topic: str
    target_url: str | None
    payload: dict[str, Any]
    attempts: int
    secret: str | None


_CLAIM = text("""
UPDATE outbox o
SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease)
WHERE o.id = (
    SELECT id FROM outbox
    WHERE id = :id AND delivered_at IS NULL AND failed_at IS NULL
      AND next_attempt_at <= now() + make_interval(secs => :early)
    FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.topic, o.target_url, o.payload, o.attempts,
          (SELECT u.webhook_secret FROM unit u WHERE u.code = o.unit_code) AS secret
""")


async def claim(conn: AsyncConnection, outbox_id: int, *, lease_s: float, early_s: float) -> Claim | None:
    """Take the row for one attempt: due (or due within `early_s`), not finished, not leased by another worker."""
    row = (await conn.execute(_CLAIM, {"id": outbox_id, "lease": lease_s, "early": early_s})).first()
    if row is None:
        return None
    return Claim(row.id, row.topic, row.target_url, dict(row.payload), row.attempts, row.secret)


async def state_of(conn: AsyncConnection, outbox_id: int) -> str:
    """Why a claim failed: `missing`, `done` (delivered or given up) or `busy` (leased, or not due yet)."""
    row = (
        await conn.execute(text("SELECT delivered_at, failed_at FROM outbox WHERE id = :id"), {"id": outbox_id})
    ).first()
    if row is None:
        return "missing"
    return "done" if row.delivered_at is not None or row.failed_at is not None else "busy"


_OPEN = "id = :id AND attempts = :attempts AND delivered_at IS NULL AND failed_at IS NULL"


async def record_success(conn: AsyncConnection, outbox_id: int, attempts: int) -> bool:
    """Mark delivered; False when the lease was lost and another attempt owns the row now."""
    sql = text(f"UPDATE outbox SET delivered_at = now() WHERE {_OPEN}")
    result = await conn.execute(sql, {"id": outbox_id, "attempts": attempts})
    return bool(result.rowcount == 1)


_FAILURE = text(f"""
UPDATE outbox
SET last_error = :error,
    failed_at = CASE WHEN attempts >= :max THEN now() END,
    next_attempt_at = CASE WHEN attempts >= :max THEN next_attempt_at ELSE now() + make_interval(secs => :delay) END
WHERE {_OPEN}
RETURNING failed_at, next_attempt_at
""")


async def record_failure(
    conn: AsyncConnection, outbox_id: int, attempts: int, *, error: str, max_attempts: int, delay_s: float
) -> tuple[bool, dt.datetime] | None:
    """Keep the error; give up at `max_attempts`, else schedule the next try. (given up?, next attempt) or None
    when the lease was lost."""
    params = {"id": outbox_id, "attempts": attempts, "error": error, "max": max_attempts, "delay": delay_s}
    row = (await conn.execute(_FAILURE, params)).first()
    if row is None:
        return None
    return row.failed_at is not None, row.next_attempt_at


async def give_up(conn: AsyncConnection, outbox_id: int, attempts: int, error: str) -> None:
    """Mark given up without another attempt (the limit was reached by attempts that never reported back)."""
    sql = text(f"UPDATE outbox SET failed_at = now(), last_error = COALESCE(last_error, :error) WHERE {_OPEN}")
    await conn.execute(sql, {"id": outbox_id, "attempts": attempts, "error": error})


async def due(conn: AsyncConnection, *, limit: int, overdue_s: float) -> list[tuple[int, int]]:
    """(id, attempts) of undelivered rows whose next attempt is at least `overdue_s` in the past, oldest first."""
    sql = text("""
        SELECT id, attempts FROM outbox
        WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() - make_interval(secs => :overdue)
        ORDER BY next_attempt_at LIMIT :limit
    """)
    rows = await conn.execute(sql, {"limit": limit, "overdue": overdue_s})
    return [(int(r.id), int(r.attempts)) for r in rows]


_READ = """
SELECT o.id, o.topic, CASE WHEN o.target_url IS NULL THEN 'event' ELSE 'webhook' END AS kind,
       CASE WHEN o.delivered_at IS NOT NULL THEN 'delivered' WHEN o.failed_at IS NOT NULL THEN 'failed'
            ELSE 'pending' END AS state,
       o.case_id, o.unit_code, o.target_url, o.attempts, o.next_attempt_at, o.delivered_at, o.failed_at,
       o.last_error, o.created_at, o.payload
FROM outbox o
"""

STATE_SQL = {
    "pending": "o.delivered_at IS NULL AND o.failed_at IS NULL",
    "delivered": "o.delivered_at IS NOT NULL",
    "failed": "o.failed_at IS NOT NULL",
}
KIND_SQL = {"event": "o.target_url IS NULL", "webhook": "o.target_url IS NOT NULL"}


async def list_rows(
    conn: AsyncConnection,
    *,
    state: str | None,
    kind: str | None,
    unit_code: str | None,
    units: list[str] | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, `limit + 1` rows (one more tells the caller there is a next page); `units` bounds unit staff
    to their own units' webhooks."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit + 1}
    if state is not None:
        where.append(STATE_SQL[state])
    if kind is not None:
        where.append(KIND_SQL[kind])
    if unit_code is not None:
        where.append("o.unit_code = :unit_code")
        params["unit_code"] = unit_code
    if units is not None:
        where.append("o.target_url IS NOT NULL AND o.unit_code = ANY(:units)")
        params["units"] = units
    if before_id is not None:
        where.append("o.id < :before")
        params["before"] = before_id
    sql = _READ + " WHERE " + " AND ".join(where) + " ORDER BY o.id DESC LIMIT :limit"
    return [dict(r._mapping) for r in await conn.execute(text(sql), params)]


async def get_row(conn: AsyncConnection, outbox_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(text(_READ + " WHERE o.id = :id"), {"id": outbox_id})).first()
    return dict(row._mapping) if row is not None else None


async def reset_failed(conn: AsyncConnection, outbox_id: int) -> bool:
    """A given-up row back to pending with a fresh count of attempts (the last error stays until the next try)."""
    sql = text(
        "UPDATE outbox SET failed_at = NULL, attempts = 0, next_attempt_at = now()"
        " WHERE id = :id AND failed_at IS NOT NULL"
    )
    result = await conn.execute(sql, {"id": outbox_id})
    return bool(result.rowcount == 1)


async def recent_events(
    conn: AsyncConnection, *, after_id: int, limit: int, max_age_s: float
) -> list[tuple[int, dict[str, Any]]]:
    """Event rows after `after_id` (an SSE Last-Event-ID), at most `max_age_s` old, oldest first."""
    sql = text("""
        SELECT id, payload FROM outbox
        WHERE id > :after AND target_url IS NULL AND created_at > now() - make_interval(secs => :age)
        ORDER BY id LIMIT :limit
    """)
    rows = await conn.execute(sql, {"after": after_id, "limit": limit, "age": max_age_s})
    return [(int(r.id), dict(r.payload)) for r in rows]
