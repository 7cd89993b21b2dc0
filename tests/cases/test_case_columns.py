"""`CASE_COLUMNS` and `CaseRead` are held together: rows become cases by position (`repository.to_case`)."""

from __future__ import annotations

import datetime as dt

import asyncpg
import msgspec
from sqlalchemy import text

from grid_mgmt.cases.repository import CASE_SELECT, to_cases
from grid_mgmt.cases.schemas import CaseRead
from tests.cases.test_apply import _new_case
from tests.conftest import principal_of


async def test_rows_of_both_drivers_become_the_case_their_columns_name(engine, pg: asyncpg.Connection) -> None:
    case_id = await _new_case(engine, pg)
    await pg.execute("UPDATE cases SET accuracy_m = 4.5, captured_at = received_at, flags = '{snapped}' WHERE id = $1",
                     case_id)  # fmt: skip
    record = await pg.fetchrow(CASE_SELECT + " WHERE c.id = $1", case_id)
    async with engine.connect() as conn:
        row = (await conn.execute(text(CASE_SELECT + " WHERE c.id = :id"), {"id": case_id})).one()
    from_dictionary = ("category_name", "kind", "next_actions")
    fields = [f for f in CaseRead.__struct_fields__ if f not in from_dictionary]
    assert list(record.keys()) == fields == list(row._mapping.keys())
    name, kind = await pg.fetchrow("SELECT name, kind FROM category WHERE code = $1", record["category_code"])
    dispatcher = await principal_of(pg, "acceptor1")
    async with engine.connect() as conn:
        reads = [*(await to_cases(conn, [record], dispatcher.roles)), *(await to_cases(conn, [row], dispatcher.roles))]
    for read in reads:
        # the same case as a checked conversion by name gives: every value has the field's type
        named = {**dict(record), "category_name": name, "kind": kind, "next_actions": read.next_actions}
        checked = msgspec.convert(named, CaseRead)
        assert read == checked and (read.category_name, read.kind) == (name, kind)
        assert (read.id, read.status, read.accuracy_m, read.flags) == (case_id, "reported", 4.5, ["snapped"])
        assert read.captured_at == read.received_at and read.next_actions == ["merge", "register", "reject"]


async def test_a_class_added_after_the_dictionary_was_read_is_named(
    engine, pg: asyncpg.Connection, monkeypatch
) -> None:
    """Names come from the process's class dictionary; a case of a class it does not know yet reloads it."""
    from grid_mgmt.cases import repository as cases_repo

    monkeypatch.setattr(cases_repo, "MISS_RELOAD_S", 0.0)
    case_id = await _new_case(engine, pg)
    cases_repo.forget_classes()
    async with engine.connect() as conn:
        assert "C0199" not in await cases_repo._dictionary(conn)
    await pg.execute(
        "INSERT INTO category (code, kind, major_code, major_name, minor_code, name, name_en)"
        " SELECT 'C0199', 'component', major_code, major_name, '0199', '新部件', 'new component' FROM category"
        " WHERE code LIKE 'C01%' LIMIT 1"
    )
    try:
        await pg.execute("UPDATE cases SET category_code = 'C0199' WHERE id = $1", case_id)
        async with engine.connect() as conn:
            [read] = await to_cases(conn, [await pg.fetchrow(CASE_SELECT + " WHERE c.id = $1", case_id)])
        assert (read.category_code, read.category_name, read.kind) == ("C0199", "新部件", "component")
    finally:
        await pg.execute("UPDATE cases SET category_code = 'E0102' WHERE id = $1", case_id)
        await pg.execute("DELETE FROM category WHERE code = 'C0199'")
        cases_repo.forget_classes()


async def test_the_list_engine_reads_the_same_times(engine, pg: asyncpg.Connection, settings) -> None:
    """The list pool reads `timestamptz` as text (a faster decode): the same aware UTC datetimes, to the µs."""
    from grid_mgmt.db.listpool import ListPool

    case_id = await _new_case(engine, pg)
    await pg.execute(
        "UPDATE cases SET captured_at = '2026-03-01 07:59:59.000001+08', deadline = '2026-03-02 00:00:00.5+00',"
        " paused_at = '1999-12-31 23:59:59.999999-05:30' WHERE id = $1",
        case_id,
    )
    sql = "SELECT captured_at, deadline, paused_at, closed_at, received_at FROM cases WHERE id = $1"
    want = tuple(await pg.fetchrow(sql, case_id))
    pool = ListPool.of(settings)
    try:
        async with pool.connection() as raw:
            got = tuple(await raw.fetchrow(sql, case_id))
            # a datetime as a parameter goes the other way (a page cursor's key)
            same = await raw.fetchval("SELECT count(*) FROM cases WHERE id = $1 AND deadline = $2", case_id, want[1])
    finally:
        await pool.close()
    assert got == want and want[3] is None and same == 1
    assert [v.utcoffset() for v in got if v is not None] == [dt.timedelta(0)] * 4
    assert got[1].microsecond == 500_000 and got[0].microsecond == 1
