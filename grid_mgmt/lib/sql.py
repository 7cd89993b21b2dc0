"""One statement text for both executors: SQLAlchemy's `text()` (`:name`) and asyncpg's prepared form (`$n`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text

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

    return Statement(sql, text(sql), _NAME.sub(number, sql), tuple(names))
