"""Response structs of the units endpoints."""

from __future__ import annotations

from grid_mgmt.lib.schemas import Schema


class UnitProperties(Schema):
    """A handling unit; the geometry (when present) is its service area."""

    code: str
    name: str
    kind: str
    level: int
    parent_code: str | None
    region_code: str | None
    phone: str | None
    active: bool
    has_webhook: bool
