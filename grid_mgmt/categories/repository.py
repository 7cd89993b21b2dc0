"""SQL of the class dictionary."""

from __future__ import annotations

from grid_mgmt.categories.schemas import CategoryRead
from grid_mgmt.lib.layers import Filter, LayerSpec

WRITABLE: tuple[str, ...] = (
    "code",
    "kind",
    "major_code",
    "major_name",
    "minor_code",
    "name",
    "name_en",
    "standard_ref",
    "register_criteria",
    "closure_criteria",
    "geometry_type",
    "responsible_unit_kind",
    "time_limits",
    "duplicate_radius_m",
    "duplicate_window_min",
    "public",
    "subsurface",
    "pipeline_kinds",
    "open311_attributes",
)
"""The columns a dictionary load writes; `active` and `updated_at` keep their database defaults."""

_FIELDS = (*WRITABLE, "active", "updated_at")

CATEGORIES = LayerSpec(
    table="category",
    label="class",
    properties=CategoryRead,
    geom=None,
    columns={name: f"t.{name}" for name in _FIELDS},
    filters=(
        Filter("kind", "t.kind = :kind"),
        Filter("major_code", "t.major_code = :major_code"),
        Filter("public", "t.public = :public"),
        Filter("subsurface", "t.subsurface = :subsurface"),
        Filter("q", "(t.name ILIKE '%' || :q || '%' OR t.name_en ILIKE '%' || :q || '%')"),
    ),
)
