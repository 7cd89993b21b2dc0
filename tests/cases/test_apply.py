"""CaseService on the demo city: the main path to closure, side paths, and every guard (real PostGIS)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from grid_mgmt.cases.filing import NewCase, open_case
from grid_mgmt.cases.schemas import (
    ActionPayload,
    DispatchPayload,
    PhotoPayload,
    PhotoReasonPayload,
    ReasonPayload,
)
from grid_mgmt.cases.service import CaseService
from grid_mgmt.lib.errors import Conflict, DomainError, InvalidInput, NotFound
from grid_mgmt.lib.jobs import JobBuffer
from grid_mgmt.settings import get_settings
from grid_mgmt.sla.calendar import current_calendar
from grid_mgmt.sla.worktime import working_time
from tests.cases.conftest import add_photo
from tests.conftest import principal_of


async def _new_case(engine, pg: asyncpg.Connection, username: str = "worker1", category: str = "E0102") -> int:
    worker = await principal_of(pg, username)
    grid = sorted(worker.duty_grid_codes)[0]
    row = await pg.fetchrow(
        "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat FROM grid g"
        " WHERE g.code = $1",
        grid,
    )
    new = NewCase(
        source="worker", category_code=category, urgency="normal", description="垃圾堆在路边",
        lon=row["lon"], lat=row["lat"], grid_code=grid, community_code=grid[:12], street_code=grid[:9],
        district_code=grid[:6],
    )  # fmt: skip
    with JobBuffer.collect() as jobs:
        async with engine.begin() as conn:
            case_id = (await open_case(conn, new, worker)).id
        assert [j.name for j in jobs.jobs] == ["cases.route", "sla.check"]  # routing, and the register deadline
        assert jobs.jobs[1].job_id == f"sla:{case_id}:1:first" and jobs.jobs[1].defer_until is not None
    return case_id


async def test_main_path_to_closure_with_a_complete_timeline(engine, pg: asyncpg.Connection) -> None:
    svc = CaseService(engine)
    case_id = await _new_case(engine, pg)
    p = {u: await principal_of(pg, u) for u in ("worker1", "acceptor1", "dispatcher1", "unit-U0101", "leader1")}
    case = await svc.apply(case_id, "register", p["acceptor1"], ActionPayload(version=1))
    assert (case.status, case.version, case.stage) == ("registered", 2, "dispatch")
    assert case.deadline is not None and case.registered_at is not None
    case = await svc.apply(case_id, "dispatch", p["dispatcher1"], DispatchPayload(unit_code="U0101", version=2))
    assert (case.status, case.unit_code, case.stage) == ("dispatched", "U0101", "handle")
    case = await svc.apply(case_id, "acknowledge", p["unit-U0101"], ActionPayload())
    assert case.status == "handling" and case.acknowledged_at is not None
    photo = await add_photo(pg, case_id, "handling", p["unit-U0101"].user_id)
    case = await svc.apply(case_id, "feed_back", p["unit-U0101"], PhotoPayload(attachment_ids=[photo]))
    assert case.status == "handled" and case.deadline is None
    case = await svc.apply(case_id, "request_check", p["dispatcher1"], ActionPayload())
    assert case.status == "checking" and case.checker_id is not None
    checker = await pg.fetchval("SELECT username FROM app_user WHERE id = $1", case.checker_id)
    check_photo = await add_photo(pg, case_id, "check", case.checker_id)
    case = await svc.apply(
        case_id, "check_pass", await principal_of(pg, checker), PhotoPayload(attachment_ids=[check_photo])
    )
    assert case.status == "checked" and case.checked_at is not None
    case = await svc.apply(case_id, "close", p["leader1"], ActionPayload(note="已处理"))
    assert case.status == "closed" and case.closed_at is not None and case.next_actions == ["reopen"]

    timeline = (await svc.timeline(p["leader1"], case_id)).activities
    assert [a.action for a in timeline] == [
        "report", "register", "dispatch", "acknowledge", "feed_back", "request_check", "check_pass", "close"
    ]  # fmt: skip
    assert [a.seq for a in timeline] == list(range(1, 9))
    assert [a.to_status for a in timeline][-1] == "closed"
    assert timeline[1].deadline is not None and timeline[1].on_time is True and timeline[1].minutes_used == 0
    assert timeline[2].actor_role == "dispatcher" and timeline[2].payload["unit_code"] == "U0101"
    assert timeline[4].payload["attachment_ids"] == [photo]
    assert await pg.fetchval("SELECT activity_id FROM attachment WHERE id = $1", photo) is not None


async def test_two_dispatchers_at_once_one_wins(engine, pg: asyncpg.Connection) -> None:
    svc = CaseService(engine)
    case_id = await _new_case(engine, pg)
    await svc.apply(case_id, "register", await principal_of(pg, "acceptor1"), ActionPayload())
    dispatcher = await principal_of(pg, "dispatcher1")
    results = await asyncio.gather(
        svc.apply(case_id, "dispatch", dispatcher, DispatchPayload(unit_code="U0101", version=2)),
        svc.apply(case_id, "dispatch", dispatcher, DispatchPayload(unit_code="U06", version=2)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["CaseRead", "Conflict"]
    assert (
        await pg.fetchval("SELECT count(*) FROM case_activity WHERE case_id = $1 AND action = 'dispatch'", case_id) == 1
    )


async def test_guards(engine, pg: asyncpg.Connection) -> None:
    svc = CaseService(engine)
    case_id = await _new_case(engine, pg)
    with pytest.raises(DomainError) as info:
        await svc.apply(case_id, "register", await principal_of(pg, "dispatcher1"), ActionPayload())
    assert info.value.status_code == 403
    with pytest.raises(NotFound):  # a unit sees nothing before it is dispatched to it
        await svc.apply(case_id, "acknowledge", await principal_of(pg, "unit-U06"), ActionPayload())
    with pytest.raises(Conflict, match="cannot acknowledge a case that is reported"):
        await svc.apply(case_id, "acknowledge", await principal_of(pg, "supervisor1"), ActionPayload())
    with pytest.raises(Conflict, match="version 1, not 7"):
        await svc.apply(case_id, "register", await principal_of(pg, "acceptor1"), ActionPayload(version=7))
    with pytest.raises(NotFound):
        await svc.apply(case_id, "teleport", await principal_of(pg, "acceptor1"), ActionPayload())
    await svc.apply(case_id, "register", await principal_of(pg, "acceptor1"), ActionPayload())
    with pytest.raises(InvalidInput, match="no active handling unit"):
        await svc.apply(case_id, "dispatch", await principal_of(pg, "dispatcher1"), DispatchPayload(unit_code="NOPE"))
    await svc.apply(case_id, "dispatch", await principal_of(pg, "dispatcher1"), DispatchPayload(unit_code="U06"))
    with pytest.raises(NotFound):  # staff of another unit do not even see it
        await svc.apply(case_id, "acknowledge", await principal_of(pg, "unit-U07"), ActionPayload())
    await svc.apply(case_id, "cancel", await principal_of(pg, "leader1"), ReasonPayload(note="重复上报"))
    with pytest.raises(Conflict, match="nothing"):
        await svc.apply(case_id, "reopen", await principal_of(pg, "leader1"), ReasonPayload(note="x"))
    # nothing partial: the refused actions left no timeline rows
    actions = [
        r["action"] for r in await pg.fetch("SELECT action FROM case_activity WHERE case_id = $1 ORDER BY seq", case_id)
    ]
    assert actions == ["report", "register", "dispatch", "cancel"]


async def test_rework_postpone_shelve_send_back(engine, pg: asyncpg.Connection) -> None:
    svc = CaseService(engine)
    case_id = await _new_case(engine, pg)
    acceptor, dispatcher, leader = [await principal_of(pg, u) for u in ("acceptor1", "dispatcher1", "leader1")]
    staff = await principal_of(pg, "unit-U0101")
    await svc.apply(case_id, "register", acceptor, ActionPayload())
    await svc.apply(case_id, "dispatch", dispatcher, DispatchPayload(unit_code="U06"))
    back = await svc.apply(case_id, "send_back", await principal_of(pg, "unit-U06"), ReasonPayload(note="不属于我单位"))
    assert back.status == "registered" and back.unit_code is None
    await svc.apply(case_id, "dispatch", dispatcher, DispatchPayload(unit_code="U01"))
    forwarded = await svc.apply(
        case_id, "forward", await principal_of(pg, "unit-U01"), DispatchPayload(unit_code="U0101")
    )
    assert forwarded.unit_code == "U0101" and forwarded.status == "dispatched"
    await svc.apply(case_id, "acknowledge", staff, ActionPayload())
    before = (await svc.get(leader, case_id)).deadline
    await svc.apply(
        case_id,
        "request_postpone",
        staff,
        __import__("grid_mgmt.cases.schemas", fromlist=["x"]).PostponePayload(minutes=120, note="需采购配件"),
    )
    extended = await svc.apply(case_id, "approve_postpone", dispatcher, ActionPayload())
    assert before is not None and extended.deadline is not None
    # 120 working minutes more (plus the instant the clock stood still between request and approval)
    cal = await current_calendar(engine, get_settings())
    granted = working_time(before, extended.deadline, cal).total_seconds()
    assert 120 * 60 <= granted < 120 * 60 + 30, granted
    photo = await add_photo(pg, case_id, "handling", staff.user_id)
    await svc.apply(case_id, "feed_back", staff, PhotoPayload(attachment_ids=[photo]))
    checking = await svc.apply(case_id, "request_check", dispatcher, ActionPayload())
    checker = await pg.fetchval("SELECT username FROM app_user WHERE id = $1", checking.checker_id)
    bad = await add_photo(pg, case_id, "check", checking.checker_id)
    with pytest.raises(InvalidInput, match="kind check"):
        await svc.apply(
            case_id, "check_fail", await principal_of(pg, checker), PhotoReasonPayload(attachment_ids=[photo], note="x")
        )
    rework = await svc.apply(
        case_id,
        "check_fail",
        await principal_of(pg, checker),
        PhotoReasonPayload(attachment_ids=[bad], note="仍有垃圾"),
    )
    assert rework.status == "dispatched" and rework.rework_count == 1 and rework.unit_code == "U0101"
    shelved = await svc.apply(case_id, "shelve", leader, ReasonPayload(note="需专项整治"))
    assert shelved.status == "shelved" and shelved.paused_at is not None
    again = await svc.apply(case_id, "unshelve", leader, ActionPayload())
    assert again.status == "registered" and again.paused_at is None


async def test_scope_hides_cases_from_other_workers(engine, pg: asyncpg.Connection) -> None:
    svc = CaseService(engine)
    case_id = await _new_case(engine, pg, "worker1")
    other = await principal_of(pg, "worker30")
    with pytest.raises(NotFound):
        await svc.get(other, case_id)
    assert (await svc.get(await principal_of(pg, "worker1"), case_id)).id == case_id
    assert (await svc.get(await principal_of(pg, "supervisor1"), case_id)).id == case_id
