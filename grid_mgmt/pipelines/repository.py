"""SQL of the pipelines feature."""

from __future__ import annotations

from grid_mgmt.lib.layers import Filter, LayerSpec
from grid_mgmt.pipelines.schemas import PipelineProperties

PIPELINES = LayerSpec(
    table="pipeline",
    label="pipeline",
    properties=PipelineProperties,
    columns={
        "code": "t.code",
        "kind": "t.kind",
        "length_m": "round(ST_Length(t.geom::geography)::numeric, 2)::float8",
        "diameter_mm": "t.diameter_mm",
        "material": "t.material",
        "depth_m": "t.depth_m",
        "pressure_class": "t.pressure_class",
        "year_built": "t.year_built",
        "owner_unit_code": "t.owner_unit_code",
        "maintainer_unit_code": "t.maintainer_unit_code",
    },
    filters=(
        Filter("kind", "t.kind = :kind"),
        Filter("unit_code", ":unit_code IN (t.owner_unit_code, t.maintainer_unit_code)"),
        Filter("material", "t.material = :material"),
    ),
)
