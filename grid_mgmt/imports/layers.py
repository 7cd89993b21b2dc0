"""What each importable layer looks like: table, code format, geometry type, columns and references."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from grid_mgmt.db.models.component import COMPONENT_STATUSES, PIPELINE_KINDS
from grid_mgmt.db.models.unit import UNIT_KINDS

LAYERS = ("regions", "grids", "components", "pipelines", "units")

ValueKind = Literal["text", "int", "float", "date", "json", "bool"]
GeomKind = Literal["polygon", "multipolygon", "linestring", "any"]

#: PostgreSQL type of a staging column per value kind.
PG_TYPES: dict[str, str] = {
    "text": "text",
    "int": "bigint",
    "float": "double precision",
    "date": "date",
    "json": "jsonb",
    "bool": "boolean",
}


@dataclass(frozen=True)
class Column:
    """One importable table column."""

    name: str
    kind: ValueKind = "text"
    required: bool = False
    max_len: int | None = None
    choices: tuple[str, ...] | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # e.g. Chinese value -> stored value
    minimum: float | None = None  # numbers must be >= this (exclusive when `exclusive_min`)
    exclusive_min: bool = False
    maximum: float | None = None


@dataclass(frozen=True)
class Reference:
    """A column holding codes of another table's rows (a foreign key the importer checks up front)."""

    column: str
    table: str
    where: str | None = None  # extra SQL condition on the referenced table, e.g. "level = 'community'"
    what: str = ""  # human name of the referenced thing, e.g. "community"
    self_ref: bool = False  # codes of the file itself count (a parent imported together with its children)


@dataclass(frozen=True)
class LayerSpec:
    """How a layer maps onto its table."""

    layer: str
    table: str
    code_pattern: re.Pattern[str]
    code_hint: str
    geom_column: str
    geom_kind: GeomKind
    geom_required: bool
    columns: tuple[Column, ...]
    references: tuple[Reference, ...] = ()
    computed: tuple[tuple[str, str], ...] = ()  # (column, SQL expression over the staged geometry `{g}`)
    defaults: tuple[tuple[str, str], ...] = ()  # (column, SQL default used when the staged value is NULL)

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


_UNIT_CODE = re.compile(r"[0-9A-Za-z_-]{2,32}")

STATUS_ALIASES = {"完好": "intact", "破损": "damaged", "丢失": "missing", "废弃": "abandoned", "移除": "removed"}
PIPELINE_ALIASES = {
    "给水": "water",
    "供水": "water",
    "上水": "water",
    "雨水": "storm",
    "污水": "sewage",
    "燃气": "gas",
    "热力": "heat",
    "电力": "power",
    "通信": "telecom",
    "电信": "telecom",
    "工业": "industrial",
}
ACCURACY_CLASSES = ("A", "B", "C")
REGION_LEVELS_BY_LENGTH = {6: "district", 9: "street", 12: "community"}

SPECS: dict[str, LayerSpec] = {
    "regions": LayerSpec(
        layer="regions",
        table="region",
        code_pattern=re.compile(r"[0-9]{6}(?:[0-9]{3}){0,2}"),
        code_hint="6 digits (district), 9 (street) or 12 (community), GB/T 2260",
        geom_column="geom",
        geom_kind="multipolygon",
        geom_required=True,
        columns=(
            Column("code", required=True, max_len=12),
            Column("name", required=True, max_len=100),
            Column("level", max_len=10, choices=("district", "street", "community")),
            Column("parent_code", max_len=12),
        ),
        references=(Reference("parent_code", "region", what="parent region", self_ref=True),),
        computed=(("area_m2", "ST_Area({g}::geography)"),),
    ),
    "grids": LayerSpec(
        layer="grids",
        table="grid",
        code_pattern=re.compile(r"[0-9]{15}"),
        code_hint="15 digits: 12-digit community code + 3-digit serial",
        geom_column="geom",
        geom_kind="polygon",
        geom_required=True,
        columns=(
            Column("code", required=True, max_len=15),
            Column("name", required=True, max_len=100),
            Column("community_code", max_len=12),
            Column("valid_from", "date"),
            Column("valid_to", "date"),
            Column("land_use", max_len=50),
            Column("management_grade", max_len=10),
            Column("responsible_body", max_len=100),
        ),
        references=(Reference("community_code", "region", "level = 'community'", what="community"),),
        computed=(("area_m2", "ST_Area({g}::geography)"),),
        defaults=(("valid_from", "CURRENT_DATE"),),
    ),
    "components": LayerSpec(
        layer="components",
        table="component",
        code_pattern=re.compile(r"[0-9]{16,17}"),
        code_hint="16 digits: 6 county + 2 major + 2 minor + 6 serial (17 with a 3-digit minor class)",
        geom_column="geom",
        geom_kind="any",
        geom_required=True,
        columns=(
            Column("code", required=True, max_len=17),
            Column("category_code", max_len=6),
            Column("name", max_len=100),
            Column("grid_code", max_len=15),
            Column("supervisor_unit_code", max_len=32),
            Column("owner_unit_code", max_len=32),
            Column("maintainer_unit_code", max_len=32),
            Column("status", max_len=10, choices=COMPONENT_STATUSES, aliases=STATUS_ALIASES),
            Column("survey_date", "date"),
            Column("change_date", "date"),
            Column("source", max_len=20),
            Column("accuracy_class", max_len=1, choices=ACCURACY_CLASSES),
            Column("note"),
            Column("attributes", "json"),
        ),
        references=(
            Reference("category_code", "category", "kind = 'component'", what="component class"),
            Reference("grid_code", "grid", what="unit grid"),
            Reference("supervisor_unit_code", "unit", what="unit"),
            Reference("owner_unit_code", "unit", what="unit"),
            Reference("maintainer_unit_code", "unit", what="unit"),
        ),
        defaults=(("status", "'intact'"), ("attributes", "'{}'::jsonb")),
    ),
    "pipelines": LayerSpec(
        layer="pipelines",
        table="pipeline",
        code_pattern=re.compile(r"[0-9A-Za-z_-]{2,40}"),
        code_hint="2-40 letters, digits, '_' or '-'",
        geom_column="geom",
        geom_kind="linestring",
        geom_required=True,
        columns=(
            Column("code", required=True, max_len=40),
            Column("kind", required=True, max_len=12, choices=PIPELINE_KINDS, aliases=PIPELINE_ALIASES),
            Column("diameter_mm", "int", minimum=0, exclusive_min=True, maximum=2**31 - 1),
            Column("material", max_len=30),
            Column("depth_m", "float"),
            Column("pressure_class", max_len=20),
            Column("year_built", "int", minimum=0, maximum=9999),
            Column("owner_unit_code", max_len=32),
            Column("maintainer_unit_code", max_len=32),
        ),
        references=(
            Reference("owner_unit_code", "unit", what="unit"),
            Reference("maintainer_unit_code", "unit", what="unit"),
        ),
    ),
    "units": LayerSpec(
        layer="units",
        table="unit",
        code_pattern=_UNIT_CODE,
        code_hint="2-32 letters, digits, '_' or '-'",
        geom_column="service_area",
        geom_kind="multipolygon",
        geom_required=False,
        columns=(
            Column("code", required=True, max_len=32),
            Column("name", required=True, max_len=100),
            Column("kind", required=True, max_len=20, choices=UNIT_KINDS),
            Column("level", "int", minimum=1, maximum=3),
            Column("parent_code", max_len=32),
            Column("region_code", max_len=12),
            Column("phone", max_len=30),
            Column("webhook_url", max_len=500),
            Column("active", "bool"),
        ),
        references=(
            Reference("parent_code", "unit", what="parent unit", self_ref=True),
            Reference("region_code", "region", what="region"),
        ),
        defaults=(("active", "true"),),
    ),
}


def get_spec(layer: str) -> LayerSpec:
    """The spec of `layer` or ValueError naming the valid layers."""
    try:
        return SPECS[layer]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}") from None
