"""`CASE_COLUMNS` and `CaseRead` are held together: rows become cases by position (`repository.to_case`)."""

from __future__ import annotations

import asyncpg
import msgspec
from sqlalchemy import text

from grid_mgmt.cases.repository import CASE_SELECT, to_case
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
    assert list(record.keys()) == list(CaseRead.__struct_fields__[:-1]) == list(row._mapping.keys())
    dispatcher = await principal_of(pg, "acceptor1")
    for read in (to_case(record, dispatcher.roles), to_case(row, dispatcher.roles)):
        # the same case as a checked conversion by name gives: every value has the field's type
        checked = msgspec.convert({**dict(record), "next_actions": read.next_actions}, CaseRead)
        assert read == checked
        assert (read.id, read.status, read.accuracy_m, read.flags) == (case_id, "reported", 4.5, ["snapped"])
        assert read.captured_at == read.received_at and read.next_actions == ["merge", "register", "reject"]
