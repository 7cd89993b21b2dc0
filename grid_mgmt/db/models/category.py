"""The class dictionary: component and event classes with their criteria, time limits and routing hints."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, DateTime, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import Base

KIND_LETTERS = {"component": "C", "event": "E"}
"""A class's kind → its code's first letter (the `code_matches` check constraint below holds the two together)."""


class Category(Base):
    """One minor class (小类). `code` is the kind letter + minor code: C0101 (component), E0102 (event).

    `time_limits` maps stage → urgency → {"value": n, "unit": "work_min" | "work_day" | "min"}.
    """

    __tablename__ = "category"
    __table_args__ = (
        CheckConstraint("kind IN ('component', 'event')", name="kind"),
        CheckConstraint("code ~ '^[CE][0-9]{4,5}$'", name="code_format"),
        CheckConstraint("minor_code ~ '^[0-9]{4,5}$' AND left(minor_code, 2) = major_code", name="minor"),
        CheckConstraint(
            "substr(code, 2) = minor_code AND left(code, 1) = CASE kind WHEN 'component' THEN 'C' ELSE 'E' END",
            name="code_matches",
        ),
        CheckConstraint("duplicate_radius_m >= 0 AND duplicate_window_min >= 0", name="duplicate_window"),
    )

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    major_code: Mapped[str] = mapped_column(String(2))
    major_name: Mapped[str] = mapped_column(String(50))
    minor_code: Mapped[str] = mapped_column(String(5))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    standard_ref: Mapped[str | None] = mapped_column(String(100))
    register_criteria: Mapped[str | None] = mapped_column(Text)
    closure_criteria: Mapped[str | None] = mapped_column(Text)
    geometry_type: Mapped[str | None] = mapped_column(String(20))
    responsible_unit_kind: Mapped[str | None] = mapped_column(String(30))
    time_limits: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    duplicate_radius_m: Mapped[int] = mapped_column(Integer, server_default="30")
    duplicate_window_min: Mapped[int] = mapped_column(Integer, server_default="1440")
    public: Mapped[bool] = mapped_column(Boolean, server_default="false")
    subsurface: Mapped[bool] = mapped_column(Boolean, server_default="false")
    pipeline_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    auto_dispatch: Mapped[bool] = mapped_column(Boolean, server_default="false")
    """Route and dispatch without a dispatcher when the component, pipeline or territory decides the unit."""
    open311_attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
