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
