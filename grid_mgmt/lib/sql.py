"""One statement text for both executors: SQLAlchemy's `text()` (`:name`) and asyncpg's prepared form (`$n`)."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy import text as _sa_text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@functools.lru_cache(maxsize=2048)
def text(sql: str) -> TextClause:
    """`sqlalchemy.text`, built once per distinct statement: a new TextClause per call re-parses its parameters
    with a regex and recomputes its cache key (a tenth of a routing job's CPU went there)."""
    return _sa_text(sql)


_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement written with `:name` parameters (no `::` casts: use CAST), ready for either executor."""

    sql: str
    clause: TextClause
    positional: str
    names: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The values in `$n` order (KeyError names a missing parameter)."""
        return [values[name] for name in self.names]


def statement(sql: str) -> Statement:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return Statement(sql, _sa_text(sql), _NAME.sub(number, sql), tuple(names))


@functools.lru_cache(maxsize=1024)
def statement_of(sql: str) -> Statement:
    """`statement(sql)` once per distinct text (statements built per request, e.g. a list's filters)."""
    return statement(sql)


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection (hot paths run their prepared statements on it)."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    return raw


Source = AsyncEngine | AsyncConnection
"""Where a read goes: an engine, or a connection the caller already holds (a second one from a pool without
overflow could wait forever)."""


@contextlib.asynccontextmanager
async def connected(source: Source) -> AsyncIterator[AsyncConnection]:
    """The caller's connection as it is, or a connection of the engine for the block."""
    if isinstance(source, AsyncConnection):
        yield source
    else:
        async with source.connect() as conn:
            yield conn
