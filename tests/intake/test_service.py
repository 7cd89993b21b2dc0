"""IntakeService directly: simultaneous duplicates on separate connections, and jobs only after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from grid_mgmt.cases import filing
from grid_mgmt.intake import service as intake
from grid_mgmt.intake.schemas import CaseIn
from grid_mgmt.settings import Settings
from tests.conftest import principal_of
from tests.intake.conftest import place_of, report
from tests.worker_fixtures import queued


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(settings.database_url, pool_size=10)
    yield eng
    await eng.dispose()


async def test_simultaneous_duplicates_file_one_case(
    engine: AsyncEngine, settings: Settings, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, arq_pool: Any
) -> None:
    """Five copies of one report at once in two processes (two engines: each has its own group commit). The first
    statement of each process is held until both are there, so the race on the idempotency key between processes is
    exercised every time; copies in one batch are held back by the writer."""
    other = create_async_engine(settings.database_url, pool_size=2)
    barrier = asyncio.Barrier(2)
    calls: list[tuple[int, int]] = []  # (rows sent, rows written) per statement
    entered = [0]
    insert = filing.repo.insert_cases

    async def held_insert(raw: Any, rows: list[dict[str, Any]]) -> set[int]:
        entered[0] += 1
        if entered[0] <= 2:  # the first statement of each process (a process writes one batch at a time)
            async with asyncio.timeout(20):
                await barrier.wait()
        written = await insert(raw, rows)
        calls.append((len(rows), len(written)))
        return written

    monkeypatch.setattr(filing.repo, "insert_cases", held_insert)
    try:
        principal = await principal_of(pg, "worker1")
        _, lon, lat = await place_of(pg, "worker1", 5)
        data = msgspec.convert(report(lon, lat), CaseIn, strict=False)
        one = intake.IntakeService(engine, settings, None, arq_pool)
        two = intake.IntakeService(other, settings, None, arq_pool)
        outcomes = await asyncio.gather(*(svc.report(principal, data) for svc in (one, two, one, two, one)))
    finally:
        await other.dispose()
    assert len({o.body for o in outcomes}) == 1
    assert {o.status_code for o in outcomes} == {201}
    assert sum(not o.replayed for o in outcomes) == 1
    case_id = msgspec.json.decode(outcomes[0].body)["id"]
    n = await pg.fetchval("SELECT count(*) FROM cases WHERE reporter_id = $1 AND ST_X(geom) = $2 AND ST_Y(geom) = $3"
                          " AND description = $4", principal.user_id, lon, lat, data.description)  # fmt: skip
    assert n == 1
    # the losers wrote nothing and enqueued nothing: routing and the first deadline of the one case
    assert await queued(arq_pool) == [
        ("cases.route", {"case_id": case_id}),
        ("sla.check", {"case_id": case_id, "deadline_round": 1}),
    ]
    assert sorted(calls[:2]) == [(1, 0), (1, 1)], f"the race between processes was not exercised: {calls}"
    assert sum(written for _, written in calls) == 1


async def test_a_refused_report_enqueues_nothing(
    engine: AsyncEngine, settings: Settings, pg: asyncpg.Connection, arq_pool: Any
) -> None:
    principal = await principal_of(pg, "worker1")
    _, lon, lat = await place_of(pg, "worker1")
    svc = intake.IntakeService(engine, settings, None, arq_pool)
    with pytest.raises(intake.InvalidInput):
        await svc.report(principal, msgspec.convert(report(lon, lat, category_code="E9999"), CaseIn, strict=False))
    assert await queued(arq_pool) == []


async def test_the_class_dictionary_knows_a_class_added_after_it_was_read(
    engine: AsyncEngine, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code the cached dictionary lacks reloads it (at most once per MISS_RELOAD_S): a class added by an import is
    reportable at once, by phones and citizens alike; a known class is served from the cache."""
    from grid_mgmt.cases import repository as cases_repo

    monkeypatch.setattr(cases_repo, "MISS_RELOAD_S", 0.0)
    cases_repo.forget_classes()
    known = await cases_repo.class_facts(engine, "E0102")
    assert known is not None and known.kind == "event"
    assert await cases_repo.class_facts(engine, "E0199") is None
    await pg.execute(
        "INSERT INTO category (code, kind, major_code, major_name, minor_code, name, name_en, public)"
        " SELECT 'E0199', kind, major_code, major_name, '0199', 'test class', 'test class', true FROM category"
        " WHERE code = 'E0102'"
    )
    try:
        added = await cases_repo.class_facts(engine, "E0199")
        assert added is not None and added.name == "test class" and added.public and added.active
        await pg.execute("UPDATE category SET name = 'renamed' WHERE code = 'E0102'")
        assert (await cases_repo.class_facts(engine, "E0102")).name == known.name  # a hit: no reload
    finally:
        await pg.execute("UPDATE category SET name = $1 WHERE code = 'E0102'", known.name)
        await pg.execute("DELETE FROM category WHERE code = 'E0199'")
        cases_repo.forget_classes()
