"""The administrative tree (district → street → community), unit grids and duty grids."""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import SRID, Base

REGION_LEVELS = ("district", "street", "community")


class Region(Base):
    """A district (6-digit GB/T 2260 code), street/town (9 digits) or community (12 digits)."""

    __tablename__ = "region"
    __table_args__ = (
        CheckConstraint("level IN ('district', 'street', 'community')", name="level"),
        CheckConstraint(
            "(level = 'district' AND code ~ '^[0-9]{6}$') OR (level = 'street' AND code ~ '^[0-9]{9}$')"
            " OR (level = 'community' AND code ~ '^[0-9]{12}$')",
            name="code_format",
        ),
        CheckConstraint("parent_code IS NULL OR left(code, length(parent_code)) = parent_code", name="parent"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
    )

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    geom: Mapped[bytes] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))
    area_m2: Mapped[float] = mapped_column(Float)


class Grid(Base):
    """A unit grid of about 10,000 m²: 15 digits = 12-digit community + 3-digit serial; never crosses it."""

    __tablename__ = "grid"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{15}$'", name="code_format"),
        CheckConstraint("left(code, 12) = community_code", name="in_community"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="validity"),
    )

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    community_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    geom: Mapped[bytes] = mapped_column(Geometry("POLYGON", srid=SRID, spatial_index=True))
    area_m2: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[dt.date] = mapped_column(Date, server_default=text("CURRENT_DATE"))
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    land_use: Mapped[str | None] = mapped_column(String(50))
    management_grade: Mapped[str | None] = mapped_column(String(10))
    responsible_body: Mapped[str | None] = mapped_column(String(100))


class DutyGrid(Base):
    """A worker's responsibility area (责任网格): a set of unit grids and the workers assigned to it."""

    __tablename__ = "duty_grid"
    __table_args__ = (CheckConstraint("code ~ '^[0-9A-Za-z_-]{2,32}$'", name="code_format"),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    community_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)


class DutyGridGrid(Base):
    """Which unit grids a duty grid covers (a unit grid belongs to at most one duty grid)."""

    __tablename__ = "duty_grid_grid"

    grid_code: Mapped[str] = mapped_column(ForeignKey("grid.code", ondelete="CASCADE"), primary_key=True)
    duty_grid_code: Mapped[str] = mapped_column(ForeignKey("duty_grid.code", ondelete="CASCADE"), index=True)


class DutyGridWorker(Base):
    """Which workers patrol a duty grid."""

    __tablename__ = "duty_grid_worker"

    duty_grid_code: Mapped[str] = mapped_column(ForeignKey("duty_grid.code", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
