"""Coded city components (管理部件) and underground pipelines (地下管线)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import SRID, Base

COMPONENT_STATUSES = ("intact", "damaged", "missing", "abandoned", "removed")
PIPELINE_KINDS = ("water", "storm", "sewage", "gas", "heat", "power", "telecom", "industrial")


class Component(Base):
    """A surveyed component: 16 digits = 6 county + 2 major + 2 minor + 6 serial (17 with a 3-digit minor)."""

    __tablename__ = "component"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{16,17}$'", name="code_format"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in COMPONENT_STATUSES)})", name="status"),
        CheckConstraint("accuracy_class IS NULL OR accuracy_class IN ('A', 'B', 'C')", name="accuracy"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        Index("ix_component_geog", text("(geom::geography)"), postgresql_using="gist"),
    )

    code: Mapped[str] = mapped_column(String(17), primary_key=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("category.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    geom: Mapped[bytes] = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=True))
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("grid.code"), index=True)
    supervisor_unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    owner_unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    maintainer_unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"), index=True)
    status: Mapped[str] = mapped_column(String(10), server_default="intact")
    survey_date: Mapped[dt.date | None] = mapped_column(Date)
    change_date: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(20))
    accuracy_class: Mapped[str | None] = mapped_column(String(1))
    note: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class Pipeline(Base):
    """A pipeline segment; a road collapse or burst main is routed to the owner of the one beneath."""

    __tablename__ = "pipeline"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9A-Za-z_-]{2,40}$'", name="code_format"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in PIPELINE_KINDS)})", name="kind"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        CheckConstraint("diameter_mm IS NULL OR diameter_mm > 0", name="diameter"),
        Index("ix_pipeline_geog", text("(geom::geography)"), postgresql_using="gist"),
    )

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), index=True)
    geom: Mapped[bytes] = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True))
    diameter_mm: Mapped[int | None] = mapped_column(Integer)
    material: Mapped[str | None] = mapped_column(String(30))
    depth_m: Mapped[float | None] = mapped_column(Float)
    pressure_class: Mapped[str | None] = mapped_column(String(20))
    year_built: Mapped[int | None] = mapped_column(Integer)
    owner_unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    maintainer_unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"), index=True)
