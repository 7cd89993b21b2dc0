"""SQL of the units feature."""

from __future__ import annotations

from grid_mgmt.lib.layers import Filter, LayerSpec
from grid_mgmt.units.schemas import UnitProperties

UNITS = LayerSpec(
    table="unit",
    label="unit",
    properties=UnitProperties,
    geom="t.service_area",
    columns={
        "code": "t.code",
        "name": "t.name",
        "kind": "t.kind",
        "level": "t.level",
        "parent_code": "t.parent_code",
        "region_code": "t.region_code",
        "phone": "t.phone",
        "active": "t.active",
        "has_webhook": "t.webhook_url IS NOT NULL",
    },
    filters=(
        Filter("kind", "t.kind = :kind"),
        Filter("level", "t.level = :level"),
        Filter("parent_code", "t.parent_code = :parent_code"),
        Filter("region_code", "t.region_code = :region_code"),
        Filter("active", "t.active = :active"),
    ),
)
