"""Routing (DESIGN §5): who handles a case, most specific first, always with its reason; duplicates; rules.

`route_case` is the body of the `cases.route` job. It runs in one transaction holding the row locks of its case
and of the cases whose routing jobs wait behind it in the queue (up to BATCH, those nobody else holds): a
duplicate is merged into the open case it repeats; otherwise the ranked candidates are computed, the decision is
stored with its reason (`cases.routing`, `routed_at`), and when the deciding rule (or, for component, pipeline and
territory decisions, the class) says so, the case is registered and dispatched by the system through the
lifecycle — each step set-based, one statement for the whole batch, so a busy queue costs a few statements per
BATCH cases. After the commit the other cases' jobs are withdrawn from the queue. A crash anywhere rolls all of it
back, and the jobs or the recovery sweep route them again: a case is routed exactly once, because a routed case
(`routed_at` set) or one that moved on is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec
import shapely
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from geo.geojson import MultiPolygon, to_shapely
from geo.validate import check_geometry
from grid_mgmt.cases.schemas import ActionPayload, CaseRead, DispatchPayload, MergePayload
from grid_mgmt.cases.service import ROUTE_JOB_PREFIX, CaseService, Chain, plan_step, route_job_id, write_chains
from grid_mgmt.lib.auth import SYSTEM, Principal
from grid_mgmt.lib.errors import InvalidInput, NotFound
from grid_mgmt.lib.jobs import JobBuffer, committed, enqueue, waiting, withdraw
from grid_mgmt.lib.pagination import decode_cursor, encode_cursor
from grid_mgmt.notify.service import Announcement
from grid_mgmt.routing import repository as repo
from grid_mgmt.routing.schemas import CandidateRead, RoutingRead, RuleCreate, RulePage, RulePatch, RuleRead
from grid_mgmt.settings import Settings

log = logging.getLogger(__name__)


def _candidates(rows: list[Any]) -> list[CandidateRead]:
    return [
        CandidateRead(
            rank=i + 1,
            source=r.source,
            unit_code=r.unit_code,
            unit_name=r.unit_name,
            reason=dict(r.reason),
            distance_m=r.distance_m,
            auto_dispatch=bool(r.auto_dispatch),
        )
        for i, r in enumerate(rows)
    ]


def explain(c: CandidateRead) -> str:
    """The reason of a decision in words, for the timeline note and the dispatcher."""
    r = c.reason
    if c.source == "component":
        return f"component {r['component_code']} is looked after by {c.unit_name} ({r['as']})"
    if c.source == "pipeline":
        return f"{r['pipeline_kind']} pipeline {r['pipeline_code']} {c.distance_m} m away belongs to {c.unit_name}"
    if c.source == "rule":
        return f"routing rule #{r['rule_id']} {r['rule']} (class {r['class']}, area {r['area']}) → {c.unit_name}"
    return f"the territory: street {r['street_code']} → {c.unit_name} (属地兜底)"


BATCH = 128
"""A routing job routes its own case and up to BATCH - 1 cases whose routing jobs wait behind it, in one
transaction with a few set-based statements; it withdraws their jobs after the commit."""
PEEK = 4 * BATCH
"""How many queued jobs it looks at: concurrent routing jobs see the same queue and each takes the first cases
nobody else holds."""


async def route_case(
    engine: AsyncEngine, settings: Settings, case_id: int, arq: Any = None, gate: asyncio.Semaphore | None = None,
    recent: RecentlyRouted | None = None,
) -> str:  # fmt: skip
    """Route a case and the cases queued behind it (idempotent); returns what happened to this case: merged,
    dispatched, suggested, unroutable, skipped (routed already, or moved on), held (another router holds it and
    routes it) or missing. `gate` bounds the batches a process routes at once (more only compete for the same
    cases); a job whose case a batch routed meanwhile is done after one read — or none, when `recent` (the
    worker's memory of what it routed) has it."""
    recent = recent if recent is not None else RecentlyRouted()
    async with gate or contextlib.nullcontext():
        if case_id in recent:  # a batch of this worker routed it while the job waited
            return "skipped"
        async with engine.connect() as conn:
            state = await repo.routing_state(conn, case_id)
        if state is None:
            return "missing"
        if state.status != "reported" or state.routed_at is not None:
            return "skipped"
        queued = await waiting(arq, ROUTE_JOB_PREFIX, PEEK)
        suffixes = (job[len(ROUTE_JOB_PREFIX) :].split(":", 1)[0] for job in queued)  # route:7, route:7:recover:…
        others = [int(s) for s in suffixes if s.isdigit() and int(s) != case_id]
        routed: list[int] = []
        try:
            outcome = await committed(engine, arq, lambda conn: _route_locked(conn, settings, case_id, others, routed))
        except Exception:
            if not others:
                raise
            # one case that cannot be routed must not hold back the others: they route with their own jobs
            log.exception("routing case %d with %d queued cases failed; routing it alone", case_id, len(others))
            routed.clear()
            outcome = await committed(engine, arq, lambda conn: _route_locked(conn, settings, case_id, [], routed))
        recent.add(routed)
        return outcome


class RecentlyRouted:
    """The cases a worker routed lately (committed; routing is never undone), at most `size`, oldest dropped
    first: the jobs of a batch's other cases that the worker had already taken from the queue find theirs here."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._ids: dict[int, None] = {}

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._ids

    def add(self, case_ids: list[int]) -> None:
        self._ids.update(dict.fromkeys(case_ids))
        while len(self._ids) > self.size:
            del self._ids[next(iter(self._ids))]


async def _route_locked(
    conn: AsyncConnection, settings: Settings, case_id: int, others: list[int], routed: list[int]
) -> str:
    """Lock the case and the first of `others` that nobody else holds (never waiting: a case another router
    holds is routed there), and route them; their ids go to `routed`."""
    batch = await repo.lock_unrouted(conn, case_id, others, BATCH)
    outcome = "held"
    if not batch or batch[0].id != case_id:
        state = await repo.routing_state(conn, case_id)
        if state is None or state.routed_at is not None or state.status != "reported":
            outcome = "skipped"
    if not batch:
        return outcome
    outcomes = await _route_batch(conn, settings, batch)
    routed += outcomes
    withdraw([route_job_id(c.id) for c in batch if c.id != case_id])
    return outcomes.get(case_id, outcome)


async def _route_batch(conn: AsyncConnection, settings: Settings, batch: list[CaseRead]) -> dict[int, str]:
    """Route locked, unrouted cases: duplicates, candidates and the writes each in one statement for all. A case
    repeating one that is itself merged in this batch waits for the next pass, which sees that merge (as routing
    them one after the other would)."""
    outcomes: dict[int, str] = {}
    units: dict[str, tuple[bool, list[str]]] = {}
    while batch:
        ids = [c.id for c in batch]
        dups = await repo.find_duplicates(conn, ids)
        later = {i for i, d in dups.items() if int(d.id) in dups}
        ranked = await repo.candidates(conn, [i for i in ids if i not in dups], settings.pipeline_radius_m)
        chains: list[Chain] = []
        for case in batch:
            if case.id in later:
                continue
            if case.id in dups:
                chains.append(await _merge(conn, case, dups[case.id], units))
                outcomes[case.id] = "merged"
            else:
                chain, outcomes[case.id] = await _decide(conn, case, _candidates(ranked[case.id]), units)
                chains.append(chain)
        await write_chains(conn, chains)
        batch = [c for c in batch if c.id in later]
    return outcomes


async def _merge(conn: AsyncConnection, case: CaseRead, dup: Any, units: dict[str, tuple[bool, list[str]]]) -> Chain:
    into = int(dup.id)
    reason = {
        "source": "duplicate", "duplicate_of": into, "case_no": dup.case_no, "distance_m": dup.distance_m,
        "radius_m": dup.duplicate_radius_m, "window_min": dup.duplicate_window_min,
    }  # fmt: skip
    note = f"duplicate of case {dup.case_no}, {dup.distance_m} m away within {dup.duplicate_window_min} min"
    step = await plan_step(conn, case, "merge", SYSTEM, MergePayload(into=into, note=note), units)
    return Chain(case, [step], routing={"decision": reason})


async def _decide(
    conn: AsyncConnection, case: CaseRead, ranked: list[CandidateRead], units: dict[str, tuple[bool, list[str]]]
) -> tuple[Chain, str]:
    """The best candidate decides: dispatched to it (registered first) when it auto-dispatches, else suggested."""
    if not ranked:
        log.warning("case %d: no unit found (no component, pipeline, rule or street office)", case.id)
        return Chain(case, [], routing={"decision": None, "candidates": []}), "unroutable"
    best = ranked[0]
    decision = {**msgspec.to_builtins(best), "explained": explain(best)}
    record = {"decision": decision, "candidates": msgspec.to_builtins(ranked[:5])}
    if not best.auto_dispatch:
        routed = Announcement("case.routed", case_id=case.id, payload={"suggested": decision})
        return Chain(case, [], routing=record, announce=[routed]), "suggested"
    note = f"automatic: {explain(best)}"
    registered = await plan_step(conn, case, "register", SYSTEM, ActionPayload(note=note), units)
    dispatched = await plan_step(
        conn, registered.after, "dispatch", SYSTEM, DispatchPayload(unit_code=best.unit_code, note=note), units
    )
    return Chain(case, [registered, dispatched], routing=record), "dispatched"


async def routing_view(engine: AsyncEngine, settings: Settings, principal: Principal, case_id: int) -> RoutingRead:
    """What the dispatcher sees: the stored decision and the ranked candidates now (404 outside scope)."""
    case = await CaseService(engine).get(principal, case_id)
    async with engine.connect() as conn:
        rows = (await repo.candidates(conn, [case_id], settings.pipeline_radius_m))[case_id]
        stored = await repo.routing_of(conn, case_id)
    decision = (stored.routing or {}).get("decision") if stored is not None else None
    return RoutingRead(
        case_id=case.id, routed_at=stored.routed_at if stored else None, decision=decision,
        candidates=_candidates(rows),
    )  # fmt: skip


async def enqueue_unrouted(engine: AsyncEngine, arq: Any, older_than_s: float, limit: int = 1000) -> int:
    """Recovery: a routing job for every reported case nobody routed.

    Its id is not the case's own job id: that job may be marked in progress by a worker that was killed, and arq
    refuses an id it still knows until the mark expires. The minute in the id coalesces sweeps of one minute;
    routing is idempotent, so the case's own job, when it runs later, finds the case routed."""
    async with engine.connect() as conn:
        ids = await repo.unrouted(conn, older_than_s, limit)
    minute = int(time.time()) // 60
    with JobBuffer.collect() as jobs:
        for case_id in ids:
            enqueue("cases.route", job_id=f"{route_job_id(case_id)}:recover:{minute}", case_id=case_id)
        await jobs.flush(arq)
    return len(ids)


# --- routing rules ------------------------------------------------------------------------------------------


def _rule(row: Any) -> RuleRead:
    data = dict(row._mapping)
    data["area"] = msgspec.json.decode(data["area"], type=MultiPolygon) if data["area"] else None
    return msgspec.convert(data, RuleRead)


def _area_wkb(area: Any, field: str = "area") -> bytes:
    shape = to_shapely(area, field=field)
    check_geometry(shape, expected={"Polygon", "MultiPolygon"}, field=field)
    return bytes(shapely.to_wkb(shape))


class RuleService:
    """Routing rules, managed by admins; read by the centre."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def list(
        self, *, category_code: str | None, unit_code: str | None, active: bool | None, cursor: str | None,
        limit: int,
    ) -> RulePage:  # fmt: skip
        after = decode_cursor(cursor)
        try:
            after_id = int(after) if after else 0
        except ValueError:
            raise InvalidInput("the cursor is not one this API gave out", extra={"field": "cursor"}) from None
        async with self.engine.connect() as conn:
            rows = await repo.list_rules(
                conn, category_code=category_code, unit_code=unit_code, active=active, after_id=after_id,
                limit=limit + 1,
            )  # fmt: skip
        items = [_rule(r) for r in rows[:limit]]
        more = len(rows) > limit
        return RulePage(items=items, next_cursor=encode_cursor(str(items[-1].id)) if more and items else None)

    async def get(self, rule_id: int) -> RuleRead:
        async with self.engine.connect() as conn:
            row = await repo.get_rule(conn, rule_id)
        if row is None:
            raise NotFound(f"no routing rule {rule_id}")
        return _rule(row)

    async def create(self, data: RuleCreate) -> RuleRead:
        values = msgspec.to_builtins(data)
        values["area"] = _area_wkb(data.area) if data.area is not None else None
        async with self.engine.begin() as conn:
            await _check_rule(conn, values)
            rule_id = await repo.insert_rule(conn, values)
        return await self.get(rule_id)

    async def patch(self, rule_id: int, data: RulePatch) -> RuleRead:
        changes = {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not msgspec.UNSET}
        if not changes:
            raise InvalidInput("the patch changes nothing: send at least one field")
        if "area" in changes and changes["area"] is not None:
            changes["area"] = _area_wkb(changes["area"])
        async with self.engine.begin() as conn:
            row = await repo.get_rule(conn, rule_id)
            if row is None:
                raise NotFound(f"no routing rule {rule_id}")
            merged = {**dict(row._mapping), **changes}
            await _check_rule(conn, merged)
            await repo.update_rule(conn, rule_id, changes)
        return await self.get(rule_id)

    async def delete(self, rule_id: int) -> None:
        async with self.engine.begin() as conn:
            if not await repo.delete_rule(conn, rule_id):
                raise NotFound(f"no routing rule {rule_id}")


async def _check_rule(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """422 with what is wrong, before the database's constraints would say it less clearly."""
    if values.get("category_code") is not None and values.get("major_code") is not None:
        raise InvalidInput(
            "name either a class (category_code) or a major class (major_code), not both",
            extra={"field": "major_code"},
        )
    if values.get("region_code") is not None and values.get("area") is not None:
        raise InvalidInput("name either a region_code or draw an area, not both", extra={"field": "area"})
    found = await repo.references(conn, values)
    if not found["category_ok"]:
        raise InvalidInput(f"unknown class {values['category_code']!r}", extra={"field": "category_code"})
    if not found["major_ok"]:
        raise InvalidInput(f"no class has the major code {values['major_code']!r}", extra={"field": "major_code"})
    if not found["region_ok"]:
        raise InvalidInput(f"unknown region {values['region_code']!r}", extra={"field": "region_code"})
    if not found["unit_ok"]:
        raise InvalidInput(f"no active handling unit {values['unit_code']!r}", extra={"field": "unit_code"})
