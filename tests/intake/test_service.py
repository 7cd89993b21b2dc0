"""IntakeService directly: simultaneous duplicates on separate connections, and jobs only after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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
    lost: list[int] = []
    original = intake._LostRace.__init__

    def spy(self: intake._LostRace, stored: Any) -> None:
        lost.append(1)
        original(self, stored)

    monkeypatch.setattr(intake._LostRace, "__init__", spy)
    # Hold every duplicate after its lookup until all five have looked: none has seen a stored response, so
    # all five try to file and the race on the idempotency key is exercised every time (not by luck).
    barrier = asyncio.Barrier(5)
    facts = intake.repo.facts

    async def facts_then_wait(*args: Any, **kwargs: Any) -> Any:
        found = await facts(*args, **kwargs)
        await barrier.wait()
        return found

    monkeypatch.setattr(intake.repo, "facts", facts_then_wait)
    principal = await principal_of(pg, "worker1")
    _, lon, lat = await place_of(pg, "worker1", 5)
    data = msgspec.convert(report(lon, lat), CaseIn, strict=False)
    svc = intake.IntakeService(engine, settings, None, arq_pool)
    outcomes = await asyncio.gather(*(svc.report(principal, data) for _ in range(5)))
    assert len({o.body for o in outcomes}) == 1
    assert {o.status_code for o in outcomes} == {201}
    assert sum(not o.replayed for o in outcomes) == 1
    case_id = msgspec.json.decode(outcomes[0].body)["id"]
    n = await pg.fetchval("SELECT count(*) FROM cases WHERE reporter_id = $1 AND ST_X(geom) = $2 AND ST_Y(geom) = $3"
                          " AND description = $4", principal.user_id, lon, lat, data.description)  # fmt: skip
    assert n == 1
    # the losers' jobs were dropped with their rollback: routing and the first deadline of the one case
    assert await queued(arq_pool) == [
        ("cases.route", {"case_id": case_id}),
        ("sla.check", {"case_id": case_id, "deadline_round": 1}),
    ]
    assert lost, "the race was not exercised: every duplicate saw the stored response before filing"


async def test_a_refused_report_enqueues_nothing(
    engine: AsyncEngine, settings: Settings, pg: asyncpg.Connection, arq_pool: Any
) -> None:
    principal = await principal_of(pg, "worker1")
    _, lon, lat = await place_of(pg, "worker1")
    svc = intake.IntakeService(engine, settings, None, arq_pool)
    with pytest.raises(intake.InvalidInput):
        await svc.report(principal, msgspec.convert(report(lon, lat, category_code="E9999"), CaseIn, strict=False))
    assert await queued(arq_pool) == []
