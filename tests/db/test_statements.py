"""One statement text for SQLAlchemy and asyncpg (lib.sql), and case ids taken a block at a time."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from grid_mgmt.cases.repository import IdBlocks
from grid_mgmt.lib.sql import statement, text
from grid_mgmt.settings import Settings


def test_named_parameters_become_numbered_in_first_use_order() -> None:
    stmt = statement("SELECT :b, CAST(:a AS int), :b || 'x:y', x::text FROM t WHERE t.c = :a AND t.d = :c_1")
    assert stmt.names == ("b", "a", "c_1")
    assert stmt.positional == "SELECT $1, CAST($2 AS int), $1 || 'x:y', x::text FROM t WHERE t.c = $2 AND t.d = $3"
    assert stmt.args({"a": 1, "b": "two", "c_1": None, "unused": 0}) == ["two", 1, None]
    with pytest.raises(KeyError):
        stmt.args({"a": 1})


def test_text_is_built_once_per_distinct_statement() -> None:
    assert text("SELECT 1 WHERE :x") is text("SELECT 1 WHERE :x")
    assert text("SELECT 1 WHERE :x") is not text("SELECT 2 WHERE :x")


async def test_id_blocks_hand_out_each_sequence_value_once(pg: asyncpg.Connection, settings: Settings) -> None:
    blocks = IdBlocks(size=4)
    engine = create_async_engine(settings.database_url, pool_size=2)
    try:
        taken = await asyncio.gather(*(blocks.take(engine) for _ in range(10)))
    finally:
        await engine.dispose()
    ids = [case_id for case_id, _ in taken]
    serials = [serial for _, serial in taken]
    assert len(set(ids)) == 10 and len(set(serials)) == 10
    assert ids[:4] == sorted(ids[:4])  # a block is handed out in order
    newer = await pg.fetchval("SELECT nextval(pg_get_serial_sequence('cases', 'id'))")
    assert newer > max(ids)  # the blocks came from the real sequence: nobody else gets these ids
