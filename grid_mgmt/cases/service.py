"""CaseService: the only writer of a case's status. It decides by the lifecycle table, compare-and-sets the row,
appends the timeline, re-plans the deadline and buffers follow-up jobs until the commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.cases import lifecycle as lc
from grid_mgmt.cases import repository as repo
from grid_mgmt.cases.schemas import ActionPayload, CaseRead, TimelineRead
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.errors import Conflict, DomainError, InvalidInput, NotFound
from grid_mgmt.lib.jobs import committed, enqueue
from grid_mgmt.notify.service import Announcement, announce_all
from grid_mgmt.settings import get_settings
from grid_mgmt.sla import deadlines
from grid_mgmt.sla.calendar import current_calendar


def enqueue_check(case_id: int, deadline_round: int, at: dt.datetime, phase: str = "first") -> None:
    """The deadline job of a round: deferred to its warning, then (phase "due") to the deadline; the sweep (phase
    "sweep") is the safety net. Job ids differ per phase: a running job cannot re-enqueue its own id."""
    enqueue("sla.check", job_id=f"sla:{case_id}:{deadline_round}:{phase}", defer_until=at, case_id=case_id,
            deadline_round=deadline_round)  # fmt: skip


async def append_system_activity(
    conn: AsyncConnection, *, case_id: int, action: str, status: str, unit_code: str | None, at: dt.datetime,
    deadline: dt.datetime | None, payload: dict[str, Any],
) -> int:  # fmt: skip
    """A timeline row the system writes without a transition (deadline warnings, overdue steps)."""
    return await repo.append_activity(
        conn, case_id=case_id, action=action, from_status=status, to_status=status, actor_id=None,
        actor_role=str(lc.Role.SYSTEM), unit_code=unit_code, note=None, payload=payload, at=at, deadline=deadline,
        minutes_used=None, on_time=None,
    )  # fmt: skip


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


ROUTE_JOB_PREFIX = "route:"


def route_job_id(case_id: int) -> str:
    """The job id of a new case's routing (the recovery sweep adds `:recover:<minute>`: see
    `routing.service.enqueue_unrouted`); a routing job takes the cases of the queued ones behind it by this prefix."""
    return f"{ROUTE_JOB_PREFIX}{case_id}"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class CaseService:
    """Reads in the caller's scope and the one path that changes a case's status."""

    def __init__(self, engine: AsyncEngine, arq: Any = None):
        self.engine = engine
        self.arq = arq

    async def get(self, principal: Principal, case_id: int) -> CaseRead:
        async with self.engine.connect() as conn:
            case = await repo.get_case(conn, case_id, principal)
        if case is None:
            raise NotFound(f"no case {case_id} (or it is outside your scope)")
        return case

    async def timeline(self, principal: Principal, case_id: int) -> TimelineRead:
        async with self.engine.connect() as conn:
            case = await repo.get_case(conn, case_id, principal)
            if case is None:
                raise NotFound(f"no case {case_id} (or it is outside your scope)")
            rows = await repo.timeline(conn, case_id)
        return TimelineRead(case_id=case.id, case_no=case.case_no, activities=rows)

    async def apply(self, case_id: int, action: str, principal: Principal, payload: ActionPayload) -> CaseRead:
        """Take `action` on the case as `principal`: 404 outside scope, 403 wrong role, 409 illegal or stale,
        422 missing proof (unit, photos, reason). One transaction; jobs leave after the commit."""
        return await committed(self.engine, self.arq, lambda conn: apply_in(conn, case_id, action, principal, payload))


async def apply_in(
    conn: AsyncConnection, case_id: int, action: str, principal: Principal, payload: ActionPayload,
    current: CaseRead | None = None,
) -> CaseRead:  # fmt: skip
    """`CaseService.apply` inside the caller's transaction and JobBuffer (`current`, when given, is the case as
    the caller just read it, saving its read)."""
    case = current if current is not None and current.id == case_id else await repo.get_case(conn, case_id, principal)
    if case is None:
        raise NotFound(f"no case {case_id} (or it is outside your scope)")
    step = await plan_step(conn, case, action, principal, payload)
    return (await write_chains(conn, [Chain(case, [step])]))[0]


@dataclass(slots=True)
class Step:
    """One planned transition of a case: the state it leads to and its timeline row."""

    action: str
    before: CaseRead
    after: CaseRead
    rule: lc.Rule
    role: lc.Role
    activity: dict[str, Any]
    attachment_ids: list[int]


@dataclass(slots=True)
class Chain:
    """Transitions of one case taken one after the other in the caller's transaction (none: only `routing` is
    stored), and what else to announce about it."""

    case: CaseRead
    steps: list[Step]
    routing: dict[str, Any] | None = None
    announce: list[Announcement] = field(default_factory=list)


async def plan_step(
    conn: AsyncConnection, case: CaseRead, action: str, principal: Principal, payload: ActionPayload,
    units: dict[str, tuple[bool, list[str]]] | None = None,
) -> Step:  # fmt: skip
    """Decide and plan `action` on `case` (as read, or as the previous step of a chain left it): 403 wrong role,
    409 illegal or stale, 422 missing proof. `units` memoises unit lookups over a batch."""
    rule, role = _decide(case, action, principal)
    if payload.version is not None and payload.version != case.version:
        raise Conflict(
            f"case {case.id} is at version {case.version}, not {payload.version}: reload it and retry",
            extra={"version": case.version, "status": case.status},
        )
    await _check_actor(conn, case, action, role, principal, payload)
    sets, activity = await _plan(conn, case, action, rule, role, principal, payload, units)
    after = msgspec.structs.replace(case, **sets, version=case.version + 1)
    after.next_actions = lc.actions_for(after.status, principal.roles)
    ids = list(getattr(payload, "attachment_ids", None) or [])
    return Step(action, case, after, rule, role, activity, ids)


async def write_chains(conn: AsyncConnection, chains: list[Chain]) -> list[CaseRead]:
    """Write planned chains with one statement each for the cases (compare-and-set on the version read: 409 when
    someone else moved a case first), their timeline rows and their notifications; the cases as now stored."""
    writes = [
        repo.Write(
            c.steps[-1].after if c.steps else c.case, c.case.version, len(c.steps), c.routing,
            reroute=any(lc.Effect.UNLINK_DUPLICATE in s.rule.effects for s in c.steps),
        )
        for c in chains
    ]  # fmt: skip
    stamped = await repo.write_cases(conn, writes)
    for c in chains:
        if c.case.id not in stamped:
            raise Conflict(f"case {c.case.id} was changed by someone else meanwhile: reload it and retry")
    steps = [s for c in chains for s in c.steps]
    activity_ids = await repo.append_activities(conn, [s.activity for s in steps]) if steps else []
    items: list[Announcement] = []
    for step, activity_id in zip(steps, activity_ids, strict=True):
        step.after.updated_at = stamped[step.after.id]
        if step.attachment_ids:
            await repo.link_attachments(conn, step.attachment_ids, activity_id)
        if lc.Effect.ROUTE in step.rule.effects:
            enqueue("cases.route", case_id=step.after.id)
        # every transition is an event of the live stream; the unit's webhook is called when the rule notifies it
        webhook_unit = step.after.unit_code if lc.Effect.NOTIFY_UNIT in step.rule.effects else None
        items.append(Announcement(
            f"case.{step.action}", case=step.after, unit_code=webhook_unit,
            payload={"action": step.action, "from_status": step.before.status, "actor_role": str(step.role)},
        ))  # fmt: skip
    for c in chains:
        items += c.announce
    if items:
        await announce_all(conn, items)
    return [c.steps[-1].after if c.steps else c.case for c in chains]


def _decide(case: CaseRead, action: str, principal: Principal) -> tuple[lc.Rule, lc.Role]:
    try:
        return lc.decide(case.status, action, principal.roles)
    except lc.UnknownAction as exc:
        raise NotFound(str(exc)) from exc
    except lc.IllegalTransition as exc:
        raise Conflict(str(exc), extra={"status": case.status}) from exc
    except lc.RoleNotAllowed as exc:
        raise DomainError(str(exc), status_code=403) from exc


async def _check_actor(
    conn: AsyncConnection, case: CaseRead, action: str, role: lc.Role, principal: Principal, payload: ActionPayload
) -> None:
    """Who within a role may act: the unit's own staff, the assigned checker, the reporter fixing it himself."""
    if role == lc.Role.UNIT_STAFF and case.unit_code not in principal.unit_codes:
        raise DomainError(f"case {case.id} is with unit {case.unit_code}, not yours", status_code=403)
    if role == lc.Role.WORKER:
        if action in ("check_pass", "check_fail") and case.checker_id not in (None, principal.user_id):
            raise DomainError("another worker is assigned to check this case", status_code=403)
        if action == "self_handle" and case.reporter_id != principal.user_id:
            raise DomainError("only the worker who reported it can handle it on the spot", status_code=403)
        if action.startswith("verify") and case.grid_code not in principal.duty_grid_codes:
            raise DomainError("only a worker of the case's duty grid can verify it", status_code=403)
    for need in lc.TABLE[(lc.Status(case.status), action)].requires:
        if getattr(payload, str(need), None) in (None, "", []):
            raise InvalidInput(f"{action} needs {need}", extra={"field": str(need)})


PHOTO_KINDS = {"feed_back": {"handling"}, "check_pass": {"check"}, "check_fail": {"check"},
               "self_handle": {"report", "handling"}, "verify_pass": {"verify", "report"}}  # fmt: skip


async def _plan(
    conn: AsyncConnection,
    case: CaseRead,
    action: str,
    rule: lc.Rule,
    role: lc.Role,
    principal: Principal,
    payload: ActionPayload,
    units: dict[str, tuple[bool, list[str]]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The column changes and the timeline row of this transition."""
    now = utcnow()
    sets: dict[str, Any] = {"status": str(rule.to)}
    extra: dict[str, Any] = {}
    if rule.stamp:
        sets[rule.stamp] = now
    for column in rule.unstamp:
        sets[column] = None
    ids = list(getattr(payload, "attachment_ids", None) or [])
    if ids:
        kinds = await repo.attachments_of(conn, case.id, ids)
        missing = sorted(set(ids) - set(kinds))
        if missing:
            raise InvalidInput(
                f"attachments {missing} do not belong to case {case.id}", extra={"field": "attachment_ids"}
            )
        wrong = sorted(i for i, k in kinds.items() if k not in PHOTO_KINDS.get(action, {k}))
        if wrong:
            raise InvalidInput(
                f"{action} needs photos of kind {', '.join(sorted(PHOTO_KINDS[action]))}; {wrong} are not",
                extra={"field": "attachment_ids"},
            )
        extra["attachment_ids"] = ids
    if lc.Effect.SET_UNIT in rule.effects:
        unit = str(getattr(payload, "unit_code", ""))
        chain = units.get(unit) if units is not None else None
        if chain is None:
            chain = await repo.unit_parent_chain(conn, unit)
            if units is not None:
                units[unit] = chain
        active, ancestors = chain
        if not active:
            raise InvalidInput(f"no active handling unit {unit!r}", extra={"field": "unit_code"})
        if action == "forward" and case.unit_code not in ancestors:
            raise InvalidInput(f"unit {unit} is not below {case.unit_code}; forward only to a child unit")
        sets["unit_code"] = unit
        extra["unit_code"] = unit
    if lc.Effect.CLEAR_UNIT in rule.effects:
        sets["unit_code"] = None
    if lc.Effect.LINK_DUPLICATE in rule.effects:
        into = int(getattr(payload, "into", 0))
        target = await repo.get_case(conn, into, None)
        if target is None or into == case.id:
            raise InvalidInput(f"no case {into} to merge case {case.id} into", extra={"field": "into"})
        if target.status in lc.TERMINAL or target.status == lc.Status.MERGED:
            raise InvalidInput(f"case {into} is {target.status}: merge into an open case", extra={"field": "into"})
        sets["duplicate_of"] = into
        extra["into"] = into
    if lc.Effect.UNLINK_DUPLICATE in rule.effects:
        sets["duplicate_of"] = None
    if lc.Effect.COUNT_REWORK in rule.effects:
        sets["rework_count"] = case.rework_count + 1
    if lc.Effect.CHECK_TASK in rule.effects:
        checker = await repo.grid_checker(conn, case.grid_code, getattr(payload, "checker_username", None))
        if checker is None:
            raise InvalidInput(f"no active worker to check grid {case.grid_code}; name a checker_username")
        sets["checker_id"] = checker
        extra["checker_id"] = checker
    deadline_before = case.deadline
    minutes_used = int((now - case.stage_started_at).total_seconds() // 60) if case.stage_started_at else None
    clock = rule.clock
    settings = get_settings()
    current = deadlines.Clocked(case.deadline, case.warn_at, case.paused_at, case.deadline_round)
    if clock == lc.Clock.START:
        limits = await repo.time_limits(conn, case.category_code)
        limit = deadlines.limit_of(limits, rule.stage, case.urgency)
        sets.update(stage=str(rule.stage), stage_started_at=now)
        cal = await current_calendar(conn, settings)
        sets.update(deadlines.start(now, limit, cal, settings.deadline_warn_share, current))
    elif clock == lc.Clock.STOP:
        sets["stage"] = None
        sets.update(deadlines.stop(current))
    elif clock == lc.Clock.PAUSE:
        sets.update(deadlines.pause(now, current))
    elif clock in (lc.Clock.RESUME, lc.Clock.EXTEND):
        limit = deadlines.limit_of(await repo.time_limits(conn, case.category_code), case.stage, case.urgency)
        extra_minutes = 0
        if clock == lc.Clock.EXTEND:
            asked = await repo.last_payload(conn, case.id, "request_postpone")
            if not asked or "minutes" not in asked:
                raise Conflict("there is no postponement request to approve")
            extra_minutes = int(asked["minutes"])
            extra["minutes"] = extra_minutes
        sets.update(deadlines.resume(now, limit, await current_calendar(conn, settings), current, extra_minutes))
    if "deadline_round" in sets:
        check_at = deadlines.first_check(sets)
        if check_at is not None:
            enqueue_check(case.id, sets["deadline_round"], check_at)
    if action == "request_postpone":
        extra["minutes"] = int(getattr(payload, "minutes", 0))
    measured = clock in (lc.Clock.START, lc.Clock.STOP) and action not in ("reopen", "unshelve")
    extra["next_deadline"] = _iso(sets.get("deadline", case.deadline))
    activity = {
        "case_id": case.id, "action": action, "from_status": case.status, "to_status": str(rule.to),
        "actor_id": principal.user_id or None, "actor_role": str(role), "unit_code": principal.unit_code,
        "note": payload.note, "payload": extra, "at": now, "deadline": deadline_before,
        "minutes_used": minutes_used if measured else None,
        "on_time": (now <= deadline_before) if measured and deadline_before else None,
    }  # fmt: skip
    return sets, activity
