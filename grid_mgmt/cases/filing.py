"""New cases: planned in full in the process (id, number, first deadline, the answer) and written in batches.

A report is planned from the process's caches (`plan_case`) and then handed to the process's `filer`, which writes
the planned cases of concurrent requests together: one statement for the cases, their first timeline rows and
idempotency records, one commit, one Redis call for their routing and deadline jobs (`lib.groupcommit`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.cases import lifecycle as lc
from grid_mgmt.cases import repository as repo
from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.cases.service import enqueue_check, route_job_id, utcnow
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.errors import InvalidInput
from grid_mgmt.lib.groupcommit import GroupCommit
from grid_mgmt.lib.jobs import committed, enqueue
from grid_mgmt.lib.sql import Source, driver_connection
from grid_mgmt.settings import get_settings
from grid_mgmt.sla import deadlines
from grid_mgmt.sla.calendar import current_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
"""Case numbers count days of the city's calendar."""


@dataclass(slots=True)
class NewCase:
    """A report ready to be filed: location in WGS84, the areas already derived."""

    source: str
    category_code: str
    urgency: str
    description: str
    lon: float
    lat: float
    input_crs: str = "wgs84"
    accuracy_m: float | None = None
    address: str | None = None
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    component_code: str | None = None
    captured_at: dt.datetime | None = None
    flags: list[str] = field(default_factory=list)
    status: str = lc.Status.REPORTED


@dataclass(slots=True)
class Filing:
    """A new case planned in full before it is written: the row's values and the case as it will read."""

    values: dict[str, Any]
    case: CaseRead
    check_at: dt.datetime | None
    attached: Any = None
    """What a filer's `extra` writes with the case (a citizen's report and contact, for instance)."""


_STAMPS = ("registered_at", "dispatched_at", "acknowledged_at", "handled_at", "checked_at", "closed_at", "cancelled_at")
"""The step timestamps a new case has not reached."""


async def plan_case(source: Source, new: NewCase, principal: Principal | None) -> Filing:
    """Number the case (a pre-taken id and a date + 6-digit serial: no lock shared by concurrent reports), plan its
    first deadline in working time, and build the case exactly as it will read once written. Everything comes from
    the process's caches; `source` is read only when one of them is stale."""
    now = utcnow()
    stage = lc.Stage.VERIFY if new.status == lc.Status.VERIFYING else lc.Stage.REGISTER
    cls = await repo.class_facts(source, new.category_code)
    if cls is None:
        raise InvalidInput(f"unknown class {new.category_code!r}", extra={"field": "category_code"})
    settings = get_settings()
    planned = deadlines.start(
        now, deadlines.limit_of(cls.time_limits, stage, new.urgency), await current_calendar(source, settings),
        settings.deadline_warn_share, deadlines.Clocked(None, None, None, 0),
    )  # fmt: skip
    case_id, serial = await repo.CASE_IDS.take(source)
    deadline = planned["deadline"]
    captured = new.captured_at.astimezone(dt.UTC) if new.captured_at is not None else None
    row = {
        "id": case_id, "case_no": f"{now.astimezone(SHANGHAI):%Y%m%d}{serial % 1_000_000:06d}",
        "source": new.source, "status": str(new.status), "version": 1, "stage": str(stage),
        "category_code": new.category_code, "category_name": cls.name, "kind": cls.kind, "urgency": new.urgency,
        "description": new.description, "lon": new.lon, "lat": new.lat, "input_crs": new.input_crs,
        "accuracy_m": new.accuracy_m, "address": new.address, "grid_code": new.grid_code,
        "community_code": new.community_code, "street_code": new.street_code, "district_code": new.district_code,
        "component_code": new.component_code, "unit_code": None,
        "reporter_id": principal.user_id if principal else None, "captured_at": captured, "received_at": now,
        "deadline": deadline, "warn_at": planned["warn_at"], "deadline_round": planned["deadline_round"],
        "stage_started_at": now, "paused_at": None, **dict.fromkeys(_STAMPS), "duplicate_of": None,
        "rework_count": 0, "checker_id": None,
        "flags": list(new.flags), "updated_at": now,
    }  # fmt: skip
    status = row["status"]
    case = CaseRead(
        **row, next_actions=lc.actions_for(status, principal.roles) if principal else lc.actions_from(status)
    )
    payload = {"source": new.source, "flags": list(new.flags),
               "next_deadline": deadline.isoformat() if deadline is not None else None}  # fmt: skip
    row.update(actor_role=_first_role(principal), payload=payload)
    return Filing(row, case, deadlines.first_check(planned))


def announce_filed(filing: Filing) -> None:
    """The jobs of a new case (into the current JobBuffer): routing, and its first deadline check."""
    enqueue("cases.route", job_id=route_job_id(filing.case.id), case_id=filing.case.id)
    if filing.check_at is not None:
        enqueue_check(filing.case.id, filing.case.deadline_round, filing.check_at)


async def open_case(conn: AsyncConnection, new: NewCase, principal: Principal | None) -> CaseRead:
    """File a new case (status reported, or verifying for citizen reports) with its first timeline row and
    deadline, inside the caller's transaction and JobBuffer; the routing job leaves after the commit."""
    filing = await plan_case(conn, new, principal)
    await file_cases(conn, [filing])
    return filing.case


async def file_cases(conn: AsyncConnection, filings: Sequence[Filing]) -> list[bool]:
    """Write planned cases in one statement and announce the written ones (into the current JobBuffer); for each
    filing, whether it was written: False when its idempotency key was used before, or by an earlier filing of the
    same call (held back: the key's stored answer is the earlier one's)."""
    keys: set[tuple[Any, Any]] = set()
    rows: list[dict[str, Any]] = []
    for f in filings:
        key = f.values.get("key")
        if key is not None:
            if (f.values["key_user"], key) in keys:
                continue
            keys.add((f.values["key_user"], key))
        rows.append(f.values)
    written = await repo.insert_cases(await driver_connection(conn), rows) if rows else set()
    done = [f.case.id in written for f in filings]
    for f, ok in zip(filings, done, strict=True):
        if ok:
            announce_filed(f)
    return done


Extra = Callable[[AsyncConnection, list[Filing]], Awaitable[None]]
"""What a filer writes with a batch of new cases, in their transaction (given the filings written)."""
Filer = GroupCommit[tuple[Filing, Any], bool]
"""Planned cases, each with the job queue its jobs go to → whether each was written."""

_FILERS: WeakKeyDictionary[AsyncEngine, dict[str, Filer]] = WeakKeyDictionary()


def filer(engine: AsyncEngine, kind: str = "cases", extra: Extra | None = None) -> Filer:
    """The process's group commit of new cases of one `kind` on `engine`: the reports of concurrent requests are
    written together (one transaction: `file_cases`, then `extra`; their jobs in one Redis call per queue)."""
    mine = _FILERS.setdefault(engine, {})
    found = mine.get(kind)
    if found is None:
        found = mine[kind] = GroupCommit(functools.partial(_write, engine, extra))
    return found


async def _write(engine: AsyncEngine, extra: Extra | None, items: list[tuple[Filing, Any]]) -> list[bool]:
    written = [False] * len(items)
    by_queue: dict[int, list[int]] = {}
    for i, (_, queue) in enumerate(items):
        by_queue.setdefault(id(queue), []).append(i)
    for indexes in by_queue.values():
        filings = [items[i][0] for i in indexes]

        async def work(conn: AsyncConnection, filings: list[Filing] = filings) -> list[bool]:
            done = await file_cases(conn, filings)
            if extra is not None:
                await extra(conn, [f for f, ok in zip(filings, done, strict=True) if ok])
            return done

        for i, ok in zip(indexes, await committed(engine, items[indexes[0]][1], work), strict=True):
            written[i] = ok
    return written


_ROLES = tuple(lc.Role)


def _first_role(principal: Principal | None) -> str | None:
    if principal is None:
        return "citizen"
    return next((r for r in _ROLES if r in principal.roles), None)
