"""Patrol shifts of grid workers: raw GPS points, the track with times, check-ins."""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, CheckConstraint, DateTime, Float, ForeignKey, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import SRID, Base


class Patrol(Base):
    """One shift; `track` is a LineStringM whose M is the Unix time of each point."""

    __tablename__ = "patrol"
    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="times"),
        Index("uq_patrol_open", "user_id", unique=True, postgresql_where="ended_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    track: Mapped[bytes | None] = mapped_column(Geometry("LINESTRINGM", srid=SRID, spatial_index=True), nullable=True)
    distance_m: Mapped[float] = mapped_column(Float, server_default="0")
    grids_visited: Mapped[list[str]] = mapped_column(ARRAY(String(15)), server_default="{}")
    share_visited: Mapped[float] = mapped_column(Float, server_default="0")


class PatrolPoint(Base):
    """A GPS fix uploaded by the phone (deduplicated by patrol and time)."""

    __tablename__ = "patrol_point"

    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrol.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    geom: Mapped[bytes] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)


class CheckIn(Base):
    """A worker checking in at a place during a patrol."""

    __tablename__ = "patrol_checkin"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrol.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[bytes] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    grid_code: Mapped[str | None] = mapped_column(String(15))
    note: Mapped[str | None] = mapped_column(String(200))
