"""Users and their roles; unit staff carry a unit, grid workers their duty grids."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Identity, Integer, String, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import Base

ROLES = ("worker", "acceptor", "leader", "dispatcher", "unit_staff", "supervisor", "admin")


class User(Base):
    """A person who logs in. `roles` ⊆ ROLES; unit staff must name their unit."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint("username ~ '^[A-Za-z0-9_.@-]{2,64}$'", name="username_format"),
        CheckConstraint(
            f"roles <@ ARRAY[{', '.join(repr(r) for r in ROLES)}]::varchar[] AND cardinality(roles) > 0",
            name="roles",
        ),
        CheckConstraint("NOT ('unit_staff' = ANY(roles)) OR unit_code IS NOT NULL", name="staff_unit"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"), index=True)
    district_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"))
    phone: Mapped[str | None] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    token_version: Mapped[int] = mapped_column(Integer, server_default="0")
    """Bumped on logout-everywhere, password change and deactivation: older access tokens stop working."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
