"""Watching deadlines (DESIGN §6): the `sla.check` job flags warnings and overdue steps, records them on the
timeline and escalates; `enqueue_due` is the sweep that finds what a lost job missed.

A check job carries the case's deadline round. Any change of the deadline (a new stage, a pause, a resume, an
approved postponement) bumps the round, so an older job finds a different round and does nothing; the flags
`warned_round` / `overdue_round` make a second delivery of the same job do nothing too. Warnings and overdue steps
are timeline rows, not transitions: the status stays.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.cases.service import append_system_activity, enqueue_check
from grid_mgmt.lib.jobs import JobBuffer, committed
from grid_mgmt.lib.sql import text
from grid_mgmt.notify.service import announce

log = logging.getLogger(__name__)

_LOCK = text("""
SELECT c.id, c.status, c.stage, c.deadline, c.warn_at, c.paused_at, c.deadline_round, c.warned_round,
       c.overdue_round, c.unit_code, c.stage_started_at, u.parent_code AS unit_parent
FROM cases c LEFT JOIN unit u ON u.code = c.unit_code
WHERE c.id = :id
FOR UPDATE OF c
""")


async def check_deadline(engine: AsyncEngine, case_id: int, deadline_round: int, arq: Any = None) -> str:
    """Flag the warning and/or the overdue step of `deadline_round` when due; returns what it did."""
    return await committed(engine, arq, lambda conn: _check_locked(conn, case_id, deadline_round))


async def _check_locked(conn: AsyncConnection, case_id: int, deadline_round: int) -> str:
    row = (await conn.execute(_LOCK, {"id": case_id})).one_or_none()
    if row is None or row.deadline_round != deadline_round or row.paused_at is not None or row.deadline is None:
        return "stale"
    now = dt.datetime.now(dt.UTC)
    done: list[str] = []
    if row.warn_at is not None and now >= row.warn_at and row.warned_round < deadline_round:
        await conn.execute(
            text("UPDATE cases SET warned_round = :r WHERE id = :id"), {"r": deadline_round, "id": case_id}
        )
        await _record(conn, row, "deadline_warning", now, {"warn_at": row.warn_at.isoformat()})
        done.append("warned")
    if now >= row.deadline and row.overdue_round < deadline_round:
        await conn.execute(
            text("UPDATE cases SET overdue_round = :r, updated_at = now(), flags = CASE WHEN 'overdue' = ANY(flags)"
                 " THEN flags ELSE array_append(flags, 'overdue') END WHERE id = :id"),
            {"r": deadline_round, "id": case_id},
        )  # fmt: skip
        late = int((now - row.deadline).total_seconds() // 60)
        await _record(conn, row, "overdue", now, {"minutes_late": late, "escalated_to": row.unit_parent})
        done.append("overdue")
    elif now < row.deadline:
        enqueue_check(case_id, deadline_round, row.deadline, "due")  # the warning went out: look again at the deadline
    return "+".join(done) or "not yet"


async def _record(conn: AsyncConnection, row: Any, action: str, now: dt.datetime, extra: dict[str, Any]) -> None:
    """The timeline row and the notifications: the unit, its parent unit (escalation) and the centre's stream."""
    payload = {"stage": row.stage, "deadline": row.deadline.isoformat(), **extra}
    await append_system_activity(conn, case_id=row.id, action=action, status=row.status, unit_code=row.unit_code,
                                 at=now, deadline=row.deadline, payload=payload)  # fmt: skip
    topic = f"case.{action}"
    await announce(conn, topic=topic, case_id=row.id, unit_code=row.unit_code, payload=payload)
    if action == "overdue" and row.unit_parent is not None:
        await announce(conn, topic="case.escalated", case_id=row.id, unit_code=row.unit_parent, payload=payload)


_DUE = text("""
(SELECT id, deadline_round FROM cases
 WHERE warn_at <= now() AND paused_at IS NULL AND warn_at IS NOT NULL AND warned_round < deadline_round
 ORDER BY warn_at LIMIT :limit)
UNION
(SELECT id, deadline_round FROM cases
 WHERE deadline <= now() AND paused_at IS NULL AND deadline IS NOT NULL AND overdue_round < deadline_round
 ORDER BY deadline LIMIT :limit)
""")


async def enqueue_due(engine: AsyncEngine, arq: Any, limit: int = 1000) -> int:
    """Recovery: a check for every warning or deadline that passed unflagged (coalescing with a queued job)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(_DUE, {"limit": limit})).all()
    with JobBuffer.collect() as jobs:
        for r in rows:
            enqueue_check(int(r.id), int(r.deadline_round), dt.datetime.now(dt.UTC), "sweep")
        await jobs.flush(arq)
    return len(rows)
