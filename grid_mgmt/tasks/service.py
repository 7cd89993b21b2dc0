"""What the caller must do now (task queues per role) and the delta sync of an offline-first phone.

A queue is defined by the action its cases wait for: "to_dispatch" holds the cases in which `dispatch` is
possible, shown to whoever the lifecycle table lets dispatch. Statuses and roles therefore come from
`cases/lifecycle.py`; only who sees which part of the city is added here (a worker's duty grids, a unit's subtree,
the centre's district), on top of the caller's data scope, which every query applies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.cases import lifecycle as lc
from grid_mgmt.cases import search
from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.lib.auth import CENTRE_ROLES, Principal
from grid_mgmt.lib.errors import InvalidInput
from grid_mgmt.lib.pagination import check_limit, decode_cursor, encode_cursor
from grid_mgmt.tasks import repository as repo
from grid_mgmt.tasks.schemas import DictionaryVersion, SyncRead, TaskQueue, TaskRef

QUEUE_ITEMS = 50
QUEUE_CAP = 1000
SYNC_DEFAULT_LIMIT = 200
SYNC_MAX_LIMIT = 500
SYNC_OVERLAP = dt.timedelta(seconds=60)
"""How far the resting sync cursor steps back: longer than any transaction that writes a case (see `sync`)."""


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue: the actions its cases wait for, and the SQL that narrows it to the caller's part of the city."""

    name: str
    title: str
    actions: tuple[str, ...] = ()
    overdue: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)
    """For queues not defined by an action (overdue): who gets them."""


QUEUES = (
    QueueSpec("verify", "待核实 on-site verification of citizen reports", actions=("verify_pass",)),
    QueueSpec("check", "待核查 on-site checks of handled cases", actions=("check_pass",)),
    QueueSpec("unit", "待处置 sent to your unit: acknowledge, handle, feed back", actions=("acknowledge", "feed_back")),
    QueueSpec("to_register", "待立案 reports to accept and register", actions=("register",)),
    QueueSpec("to_dispatch", "待派遣 registered cases to dispatch", actions=("dispatch",)),
    QueueSpec("to_request_check", "待核查派发 handled cases to send for a check", actions=("request_check",)),
    QueueSpec("to_close", "待结案 checked cases to close", actions=("close",)),
    QueueSpec("overdue", "超期 open cases past their deadline", overdue=True, roles=CENTRE_ROLES | {"supervisor"}),
)


def statuses_for(action: str) -> list[str]:
    """The statuses in which `action` is possible."""
    return sorted(str(s) for (s, a) in lc.TABLE if a == action)


def roles_for(action: str) -> frozenset[str]:
    """The roles that may take `action` in some status."""
    return frozenset(str(r) for (s, a), rule in lc.TABLE.items() if a == action for r in rule.roles)


allowed_actions = lc.actions_for
"""What the caller's roles may do next with a case in a status."""


def _narrowing(spec: QueueSpec, principal: Principal) -> tuple[list[str], dict[str, Any], str | None] | None:
    """(SQL conditions, parameters, region) that put the caller's part of the city on a queue; None: not theirs."""
    roles = principal.roles
    if spec.actions:
        if not any(roles & roles_for(a) - {"system"} for a in spec.actions):
            return None
    elif not roles & spec.roles:
        return None
    grids = sorted(principal.duty_grid_codes)
    if spec.name == "verify":
        return ["c.grid_code = ANY(:t_grids)"], {"t_grids": grids}, None
    if spec.name == "check":
        return (
            ["(c.checker_id = :t_uid OR (c.checker_id IS NULL AND c.grid_code = ANY(:t_grids)))"],
            {"t_uid": principal.user_id, "t_grids": grids},
            None,
        )
    if spec.name == "unit":
        return ["c.unit_code = ANY(:t_units)"], {"t_units": sorted(principal.unit_codes)}, None
    # the centre's queues: their district (supervisors and admins: everywhere)
    return [], {}, None if principal.sees_all else principal.district_code


async def _queues(conn: AsyncConnection, principal: Principal, items: int) -> list[tuple[QueueSpec, search.Queue]]:
    out = []
    for spec in QUEUES:
        narrowing = _narrowing(spec, principal)
        if narrowing is None:
            continue
        extra, params, region = narrowing
        statuses = sorted({s for a in spec.actions for s in statuses_for(a)})
        found = await search.queue(
            conn,
            principal,
            spec.name,
            statuses=statuses,
            overdue=spec.overdue,
            region=region,
            extra=extra,
            extra_params=params,
            items=items,
            cap=QUEUE_CAP,
        )
        out.append((spec, found))
    return out


def _with_my_actions(case: CaseRead, principal: Principal) -> CaseRead:
    case.next_actions = allowed_actions(case.status, principal.roles)
    return case


async def my_tasks(engine: AsyncEngine, principal: Principal, timeout_ms: int) -> list[TaskQueue]:
    """The caller's queues, in a fixed order; a role without queues gets an empty list (`timeout_ms`: the list
    statements' timeout, GRID_LIST_TIMEOUT_MS)."""
    async with engine.connect() as conn:
        await search.prepare(conn, timeout_ms)
        found = await _queues(conn, principal, QUEUE_ITEMS)
    return [
        TaskQueue(
            name=spec.name,
            title=spec.title,
            count=q.count,
            overdue=q.overdue,
            capped=q.capped,
            items=[_with_my_actions(c, principal) for c in q.items],
        )
        for spec, q in found
    ]


# ---- delta sync -------------------------------------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
Position = tuple[dt.datetime, int]


def _us(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _at(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Where a phone stands: after `position` (None: before everything); `walk_started` is set while it pages
    through a backlog (has_more) and is when that walk began."""

    position: Position | None
    walk_started: dt.datetime | None = None

    def encode(self) -> str:
        pos = f"{_us(self.position[0])}|{self.position[1]}" if self.position else "|"
        walk = str(_us(self.walk_started)) if self.walk_started else ""
        return encode_cursor(f"s1|{pos}|{walk}")

    @classmethod
    def decode(cls, cursor: str | None) -> SyncCursor:
        key = decode_cursor(cursor)
        if key is None:
            return cls(position=None)
        try:
            tag, ts, ident, walk = key.split("|")
            if tag != "s1" or bool(ts) != bool(ident):
                raise ValueError(tag)
            position = (_at(int(ts)), int(ident)) if ts else None
            return cls(position=position, walk_started=_at(int(walk)) if walk else None)
        except (ValueError, OverflowError):
            raise InvalidInput("cursor is not a sync cursor this API issued", extra={"field": "cursor"}) from None


async def sync(
    engine: AsyncEngine, principal: Principal, cursor: str | None, limit: int | None, timeout_ms: int
) -> SyncRead:
    """Everything that changed for the caller since `cursor`: cases in scope, task queues, dictionary versions.

    Without a cursor it is the current state: every case in scope, oldest change first, a page at a time.

    Why nothing is missed: cases are read in `(updated_at, id)` order after the cursor's position. `updated_at`
    is the writing transaction's start time (`now()`), but the row only becomes visible at its commit, so a
    transaction that started before our read and commits after it lands *behind* a position we already passed.
    Such a row's `updated_at` is at most one transaction's duration before the read. So while pages follow each
    other (`has_more`) the cursor is exact, and when the walk ends the cursor steps back to `SYNC_OVERLAP`
    (longer than any case transaction) before the moment the walk began — or stays where it is, if that is
    earlier. The next sync therefore re-reads the last minute: the phone receives some cases twice and keeps, per
    id, the higher `version`. The request is read-only, so repeating it (a lost answer) is harmless; the phone
    stores the new cursor only once it has applied the answer.

    What this cannot show is a case that left the caller's scope (sent to another unit, another checker): it
    no longer matches the scope, so it is not sent again. `tasks` is therefore the current task list in every
    answer (the ids of the first `QUEUE_ITEMS` per queue, most urgent first; the cases themselves come in `cases`
    when they changed): the phone replaces its task list with it rather than deriving tasks from its cases.
    """
    size = check_limit(limit, default=SYNC_DEFAULT_LIMIT, maximum=SYNC_MAX_LIMIT)
    state = SyncCursor.decode(cursor)
    async with engine.connect() as conn:
        await search.prepare(conn, timeout_ms)
        now = await search.db_now(conn)
        walk_started = state.walk_started or now
        cases, more = await search.changed_since(conn, principal, state.position, size)
        queues = await _queues(conn, principal, QUEUE_ITEMS)
        layers, categories_at = await repo.dictionary_versions(conn)
    last = (cases[-1].updated_at, cases[-1].id) if cases else state.position
    if more:
        assert last is not None
        next_cursor = SyncCursor(position=last, walk_started=walk_started)
    else:
        floor: Position = (walk_started - SYNC_OVERLAP, 0)
        next_cursor = SyncCursor(position=floor if last is None else min(last, floor))
    return SyncRead(
        cases=cases,
        tasks=[
            TaskRef(name=spec.name, count=q.count, capped=q.capped, case_ids=[c.id for c in q.items])
            for spec, q in queues
        ],
        dictionaries=[DictionaryVersion(name=n, version=v, changed_at=at) for n, v, at in layers],
        categories_updated_at=categories_at,
        cursor=next_cursor.encode(),
        has_more=more,
        server_time=now,
    )
