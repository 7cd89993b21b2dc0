"""Handling units (处置单位): a 3-level tree of bureaus, street offices and companies."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import SRID, Base

UNIT_KINDS = (
    "bureau",
    "department",
    "street_office",
    "community_office",
    "water",
    "drainage",
    "gas",
    "power",
    "telecom",
    "heating",
    "sanitation",
    "landscaping",
    "traffic",
    "municipal",
    "other",
)


class Unit(Base):
    """A handling unit; street offices carry the street they are responsible for (属地兜底)."""

    __tablename__ = "unit"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9A-Za-z_-]{2,32}$'", name="code_format"),
        CheckConstraint("level BETWEEN 1 AND 3", name="level"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in UNIT_KINDS)})", name="kind"),
        CheckConstraint("(level = 1) = (parent_code IS NULL)", name="root_level"),
        CheckConstraint("service_area IS NULL OR ST_IsValid(service_area)", name="area_valid"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"), index=True)
    region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    service_area: Mapped[bytes | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=True
    )
    phone: Mapped[str | None] = mapped_column(String(30))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
