"""Response structs of the system endpoints."""

from __future__ import annotations

from typing import Literal

from grid_mgmt.lib.schemas import Schema


class CheckRead(Schema):
    """One dependency: up or down, with what we saw."""

    ok: bool
    detail: str


class HealthRead(Schema):
    """Overall status and each dependency; 503 names what is down in `down`."""

    status: Literal["ok", "degraded"]
    version: str
    postgis: CheckRead
    redis: CheckRead
    migration: CheckRead
    grid_index: CheckRead
    down: list[str]
    case_cache: CaseCacheRead | None = None
    """The answering process's cache of encoded cases (the case list's), for capacity planning."""


class CaseCacheRead(Schema):
    """Counters of one API process's cache of encoded cases since it started."""

    pid: int
    entries: int
    capacity: int
    hits: int
    misses: int
    stale: int
    """Misses of a case cached at an older row version (it had changed)."""
    cleared: int
    """Times a renamed class emptied it."""
