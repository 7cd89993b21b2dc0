"""The worker side's tables: routing rules, the working calendar and the notification outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import SRID, Base


class RoutingRule(Base):
    """Class (minor or major) × area (a region, a drawn polygon, or the whole city) → unit.

    The most specific rule wins: a minor class before a major class before any class, a smaller area before a
    larger one, then the higher priority. `auto_dispatch` sends the case without a dispatcher.
    """

    __tablename__ = "routing_rule"
    __table_args__ = (
        CheckConstraint("category_code IS NULL OR major_code IS NULL", name="one_class_level"),
        CheckConstraint("major_code IS NULL OR major_code ~ '^[CE][0-9]{2}$'", name="major_format"),
        CheckConstraint("area IS NULL OR ST_IsValid(area)", name="area_valid"),
        CheckConstraint("region_code IS NULL OR area IS NULL", name="one_area"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    category_code: Mapped[str | None] = mapped_column(ForeignKey("category.code"), index=True)
    major_code: Mapped[str | None] = mapped_column(String(3))
    """A major class with its kind letter: C01 (public facilities), E01 (city appearance)."""
    region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"))
    area: Mapped[bytes | None] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("unit.code"))
    priority: Mapped[int] = mapped_column(Integer, server_default="0")
    auto_dispatch: Mapped[bool] = mapped_column(Boolean, server_default="false")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CalendarDay(Base):
    """An exception to the plain week: a public holiday on a weekday, or a make-up workday (调休) on a weekend."""

    __tablename__ = "calendar_day"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(60))
    source: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Outbox(Base):
    """A notification to deliver (an event for live consoles, a webhook to a unit); written in the same
    transaction as the change it announces, delivered by a worker, retried with backoff, given up after a limit."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL AND failed_at IS NULL"),
        ),
        CheckConstraint("attempts >= 0", name="attempts"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    target_url: Mapped[str | None] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
