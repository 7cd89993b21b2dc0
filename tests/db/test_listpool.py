"""The list pool: first come first served, never more inside than connections, reuse, and what it does with a
connection an error passed through."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import asyncpg
import pytest

from grid_mgmt.db.listpool import ListPool
from grid_mgmt.settings import Settings


def small(settings: Settings, size: int = 2) -> ListPool:
    return ListPool.of(replace(settings, read_pool_size=size))


async def test_requests_get_connections_in_the_order_they_asked(settings: Settings) -> None:
    """32 readers share 2 connections, 40 reads each: every read takes a ticket as it asks and records it once it
    holds a connection; the tickets come out in order (a pool whose queue lets newcomers barge overtakes reads by
    13–25 later ones; under the case list's load at 64 connections that was p99 980 ms)."""
    pool = small(settings)
    tickets = itertools.count()
    served: list[int] = []

    async def reader() -> None:
        for _ in range(40):
            ticket = next(tickets)
            async with pool.connection() as conn:
                served.append(ticket)
                await conn.fetchval("SELECT 1")

    async def hold() -> None:
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_sleep(0.05)")

    try:
        await asyncio.gather(hold(), hold())  # both connections exist first
        await asyncio.wait_for(asyncio.gather(*(reader() for _ in range(32))), 60)
        assert len(served) == 32 * 40
        lag = max(max(served[: i + 1]) - t for i, t in enumerate(served))
        assert lag <= 1, f"a read was overtaken by {lag} later ones"  # two connections: two may swap places
        assert pool.opened == 2  # reused, never more than its size
    finally:
        await pool.close()


async def test_never_more_requests_inside_than_connections(settings: Settings) -> None:
    pool = small(settings)
    inside = most = 0

    async def read() -> None:
        nonlocal inside, most
        async with pool.connection() as conn:
            inside += 1
            most = max(most, inside)
            await conn.execute("SELECT pg_sleep(0.01)")
            inside -= 1

    try:
        await asyncio.wait_for(asyncio.gather(*(read() for _ in range(12))), 20)
        assert most == 2 and pool.opened == 2
    finally:
        await pool.close()


async def test_a_server_error_keeps_the_connection_a_lost_one_is_replaced(settings: Settings) -> None:
    pool = small(settings, 1)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with pool.connection() as conn:
                first = await conn.fetchval("SELECT pg_backend_pid()")
                await conn.fetchval("SELECT 1 / 0")
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            async with pool.connection() as conn:
                assert await conn.fetchval("SELECT pg_backend_pid()") == first  # kept
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # the server drops it
        async with pool.connection() as conn:  # the next caller gets a new one
            assert await conn.fetchval("SELECT pg_backend_pid()") != first
        assert pool.opened == 2
    finally:
        await pool.close()


async def test_a_request_cancelled_mid_statement_does_not_hand_on_a_busy_connection(settings: Settings) -> None:
    pool = small(settings, 1)

    async def stuck() -> None:
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_sleep(5)")

    try:
        task = asyncio.create_task(stuck())
        await asyncio.sleep(0.3)
        task.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await task
        async with pool.connection() as conn:
            assert await asyncio.wait_for(conn.fetchval("SELECT 41 + 1"), 2) == 42
        assert pool.opened == 2
    finally:
        await pool.close()


async def test_an_old_connection_is_replaced_when_next_taken(settings: Settings) -> None:
    pool = ListPool(settings.asyncpg_dsn, 1, 5000, recycle_s=0.2)
    try:
        async with pool.connection() as conn:
            first = await conn.fetchval("SELECT pg_backend_pid()")
        async with pool.connection() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == first
        await asyncio.sleep(0.3)
        async with pool.connection() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != first
    finally:
        await pool.close()


async def test_an_idle_connection_the_server_dropped_is_not_handed_out(
    settings: Settings, pg: asyncpg.Connection
) -> None:
    """A restarted or failed-over server closes the idle connections: the next list gets a new one, not an error."""
    pool = small(settings, 1)
    try:
        async with pool.connection() as conn:
            first = await conn.fetchval("SELECT pg_backend_pid()")
        assert await pg.fetchval("SELECT pg_terminate_backend($1)", first)
        await asyncio.sleep(0.3)  # the closed socket reaches the event loop
        async with pool.connection() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != first
        assert pool.opened == 2
    finally:
        await pool.close()
