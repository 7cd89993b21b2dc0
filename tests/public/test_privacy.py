"""Contact details: stored apart, shown only to centre roles in scope, purged after the retention period."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from grid_mgmt.public.retention import purge_contacts
from tests.public.conftest import case_of

PHONE = "13712345678"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url)
    yield eng
    await eng.dispose()


async def test_only_centre_roles_in_scope_read_the_contact(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, file_report: Any, auth_headers: Any
) -> None:
    receipt = await file_report(contact_phone=PHONE, contact_name="韩梅梅", consent=True)
    case = await case_of(pg, receipt["tracking_code"])
    path = f"/api/v1/cases/{case['id']}/contact"
    for role in ("acceptor1", "leader1", "dispatcher1", "supervisor1", "admin"):
        r = await client.get(path, headers=await auth_headers(role))
        assert r.status_code == 200, (role, r.text)
        assert r.json()["phone"] == PHONE and r.json()["name"] == "韩梅梅"
    for role in ("worker1", "unit-U01"):
        r = await client.get(path, headers=await auth_headers(role))
        assert r.status_code == 403, (role, r.text)
    assert (await client.get(path)).status_code == 401
    r = await client.get("/api/v1/cases/999999999/contact", headers=await auth_headers("leader1"))
    assert r.status_code == 404

    # nowhere else: not in the case, its timeline, the public view or the citizen-facing nearby list
    leader = await auth_headers("leader1")
    for other in (f"/api/v1/cases/{case['id']}", f"/api/v1/cases/{case['id']}/timeline",
                  f"/api/v1/public/reports/{receipt['tracking_code']}"):  # fmt: skip
        r = await client.get(other, headers=leader if "public" not in other else None)
        assert r.status_code == 200 and PHONE not in r.text and "韩梅梅" not in r.text, other


async def test_a_report_without_contact_has_none(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, file_report: Any, auth_headers: Any
) -> None:
    receipt = await file_report()
    case = await case_of(pg, receipt["tracking_code"])
    assert await pg.fetchval("SELECT count(*) FROM case_contact WHERE case_id = $1", case["id"]) == 0
    r = await client.get(f"/api/v1/cases/{case['id']}/contact", headers=await auth_headers("dispatcher1"))
    assert r.status_code == 404 and "no contact details" in r.json()["detail"]


async def test_the_purge_deletes_contacts_past_their_retention_only(
    pg: asyncpg.Connection, engine: AsyncEngine, file_report: Any
) -> None:
    due = await case_of(pg, (await file_report(contact_phone="13700000001", consent=True))["tracking_code"])
    kept = await case_of(pg, (await file_report(contact_phone="13700000002", consent=True))["tracking_code"])
    await pg.execute("UPDATE case_contact SET purge_after = now() - interval '1 minute' WHERE case_id = $1", due["id"])
    assert await purge_contacts(engine, batch=1) >= 1
    left = {r["case_id"] for r in await pg.fetch("SELECT case_id FROM case_contact WHERE case_id = ANY($1::bigint[])",
                                                 [due["id"], kept["id"]])}  # fmt: skip
    assert left == {kept["id"]}
    assert await pg.fetchval("SELECT count(*) FROM case_contact WHERE purge_after <= now()") == 0
    # the report itself stays, and can still be followed
    assert await pg.fetchval("SELECT count(*) FROM public_report WHERE case_id = $1", due["id"]) == 1


def test_the_purge_is_a_nightly_cron_job() -> None:
    from workers.settings import WorkerSettings

    assert any(c.name == "public.purge_contacts" for c in WorkerSettings.cron_jobs)
