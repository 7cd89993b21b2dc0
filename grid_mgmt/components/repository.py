"""SQL of the components feature."""

from __future__ import annotations

from grid_mgmt.components.schemas import ComponentProperties
from grid_mgmt.lib.layers import Filter, LayerSpec

COMPONENTS = LayerSpec(
    table="component",
    label="component",
    properties=ComponentProperties,
    joins="JOIN category c ON c.code = t.category_code",
    columns={
        "code": "t.code",
        "category_code": "t.category_code",
        "category_name": "c.name",
        "major_code": "c.major_code",
        "name": "t.name",
        "grid_code": "t.grid_code",
        "supervisor_unit_code": "t.supervisor_unit_code",
        "owner_unit_code": "t.owner_unit_code",
        "maintainer_unit_code": "t.maintainer_unit_code",
        "status": "t.status",
        "survey_date": "t.survey_date",
        "change_date": "t.change_date",
        "source": "t.source",
        "accuracy_class": "t.accuracy_class",
        "note": "t.note",
        "attributes": "t.attributes",
    },
    filters=(
        Filter("category_code", "t.category_code = :category_code"),
        Filter("major_code", "c.kind = 'component' AND c.major_code = :major_code"),
        Filter("status", "t.status = :status"),
        Filter("grid_code", "t.grid_code = :grid_code"),
        Filter("community_code", "t.grid_code LIKE :community_code || '%'"),
        Filter("unit_code", ":unit_code IN (t.maintainer_unit_code, t.owner_unit_code, t.supervisor_unit_code)"),
    ),
)
