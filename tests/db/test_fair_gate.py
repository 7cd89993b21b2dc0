"""The read engine's fair gate: as wide as the pool, first come first served, and the pool never has waiters."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

from sqlalchemy import text

from grid_mgmt.db.engine import fair_gate, make_read_engine
from grid_mgmt.settings import Settings


async def test_requests_get_connections_in_the_order_they_asked(settings: Settings) -> None:
    """32 readers share 2 connections, 40 reads each: every read takes a ticket as it asks and records it once it
    holds a connection. Through the gate the tickets come out in order; straight from SQLAlchemy's pool a newcomer
    takes a connection just given back before the woken waiter runs, and without the gate this fails every time
    (reads overtaken by 13–25 later ones; under the case list's load at 64 connections: p99 980 ms)."""
    engine = make_read_engine(replace(settings, read_pool_size=2))
    tickets = itertools.count()
    served: list[int] = []

    async def reader() -> None:
        for _ in range(40):
            ticket = next(tickets)
            async with fair_gate(engine), engine.connect() as conn:
                served.append(ticket)
                await conn.execute(text("SELECT 1"))

    async def hold() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.05)"))

    try:
        assert fair_gate(engine) is fair_gate(engine)
        # both connections exist first: a reader whose slot is still connecting (slow on a busy machine) would
        # otherwise be overtaken by reads on the other connection, which says nothing about the order of waiting
        await asyncio.gather(hold(), hold())
        await asyncio.wait_for(asyncio.gather(*(reader() for _ in range(32))), 60)
        assert len(served) == 32 * 40
        lag = max(max(served[: i + 1]) - t for i, t in enumerate(served))
        assert lag <= 1, f"a read was overtaken by {lag} later ones"  # two connections: two may swap places
    finally:
        await engine.dispose()


async def test_never_more_requests_inside_than_connections(settings: Settings) -> None:
    engine = make_read_engine(replace(settings, read_pool_size=2))
    inside = most = 0

    async def read() -> None:
        nonlocal inside, most
        async with fair_gate(engine):
            inside += 1
            most = max(most, inside)
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(0.01)"))
            inside -= 1

    try:
        await asyncio.wait_for(asyncio.gather(*(read() for _ in range(12))), 20)
        assert most == 2
    finally:
        await engine.dispose()
