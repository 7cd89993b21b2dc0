"""Response structs of the pipelines endpoints."""

from __future__ import annotations

from typing import Literal

from grid_mgmt.lib.schemas import Schema

PipelineKind = Literal["water", "storm", "sewage", "gas", "heat", "power", "telecom", "industrial"]


class PipelineProperties(Schema):
    """A pipeline segment and the units that own and maintain it."""

    code: str
    kind: PipelineKind
    length_m: float
    diameter_mm: int | None
    material: str | None
    depth_m: float | None
    pressure_class: str | None
    year_built: int | None
    owner_unit_code: str | None
    maintainer_unit_code: str | None
