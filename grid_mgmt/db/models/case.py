"""Cases (案卷), their append-only timeline, and their photos.

The table is named `cases` (CASE is an SQL keyword). Cases grow without bound: every query filters or orders by
`received_at` or `id` (which grow together), so the table can later become a monthly range-partitioned table on
`received_at` (primary key `(id, received_at)`, children referencing both) without changing the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from grid_mgmt.db.base import SRID, Base

URGENCIES = ("urgent", "fairly_urgent", "normal")
SOURCES = ("worker", "citizen", "hotline", "video", "inspection", "leader")
ATTACHMENT_KINDS = ("report", "handling", "check", "verify")
STATUSES = (
    "verifying", "reported", "registered", "dispatched", "handling", "handled", "checking", "checked", "closed",
    "shelved", "rejected", "declined", "cancelled", "merged",
)  # fmt: skip
"""The statuses of cases/lifecycle.py (a test keeps the two equal)."""


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


ENDED_WITHOUT_CLOSURE = ("rejected", "declined", "cancelled", "merged")
GEOM_INDEXES: dict[str, tuple[str, ...]] = {
    **{s: (s,) for s in STATUSES if s not in ENDED_WITHOUT_CLOSURE},
    "ended": ENDED_WITHOUT_CLOSURE,
}
"""The partial GiST indexes on `geom`, `ix_cases_geom_<name>`, each over the cases in these statuses (migration 0008).

A map or list asks for a box in a status (a dispatcher: registered cases here), and `c.status = 'x'` names the
index of x. The one GiST index on (status, geom) it replaces compared the status text in every node it visited:
a 1 km box of registered cases took 0.83 ms in it, 0.13 ms in its own index. A case is in exactly one of these
indexes, so a write still costs one GiST insert."""


def geom_index_predicate(statuses: tuple[str, ...]) -> str:
    return f"status = '{statuses[0]}'" if len(statuses) == 1 else _in("status", statuses)


def status_among(statuses: Sequence[str], alias: str = "c") -> str:
    """`status` in `statuses` (known statuses, written in) as an OR of equalities, which PostgreSQL answers with a
    box by one bitmap scan of each status's GiST index; `status = ANY(…)` names none of them (measured on Open311's
    open statuses around a point: 3.3 ms so, 291 ms by walking the received_at index)."""
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown or not statuses:
        raise ValueError(f"not statuses of a case: {unknown or statuses}")
    return "(" + " OR ".join(f"{alias}.status = '{s}'" for s in statuses) + ")"


class Case(Base):
    """One reported problem and where it stands; `status` is written only by CaseService.apply."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(_in("urgency", URGENCIES), name="urgency"),
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint("char_length(description) BETWEEN 1 AND 4000", name="description"),
        CheckConstraint("accuracy_m IS NULL OR accuracy_m >= 0", name="accuracy"),
        CheckConstraint("version >= 1 AND rework_count >= 0", name="counters"),
        Index("ix_cases_status_received", "status", "received_at"),
        Index("ix_cases_unit_status", "unit_code", "status"),
        Index("ix_cases_reporter", "reporter_id", "received_at"),
        Index("ix_cases_grid", "grid_code", "received_at"),
        Index(
            "ix_cases_deadline_open", "deadline", postgresql_where=text("closed_at IS NULL AND cancelled_at IS NULL")
        ),
        Index("ix_cases_updated", "updated_at", "id"),
        Index("ix_cases_received", "received_at", "id"),  # migration 0004: Open311 lists newest first
        Index("ix_cases_checker", "checker_id", postgresql_where=text("checker_id IS NOT NULL")),
        Index("ix_cases_component", "component_code", postgresql_where=text("component_code IS NOT NULL")),
        *(
            Index(
                f"ix_cases_geom_{name}",
                "geom",
                postgresql_using="gist",
                postgresql_where=text(geom_index_predicate(statuses)),
            )
            for name, statuses in GEOM_INDEXES.items()
        ),
        Index("ix_cases_category_geog", "category_code", text("(geom::geography)"), postgresql_using="gist"),
        Index("ix_cases_duplicate_of", "duplicate_of", postgresql_where=text("duplicate_of IS NOT NULL")),
        Index("ix_cases_unrouted", "received_at", postgresql_where=text("routed_at IS NULL AND status = 'reported'")),
        Index(
            "ix_cases_overdue_due",
            "deadline",
            postgresql_where=text("deadline IS NOT NULL AND paused_at IS NULL AND overdue_round < deadline_round"),
        ),
        Index(
            "ix_cases_warn_due",
            "warn_at",
            postgresql_where=text("warn_at IS NOT NULL AND paused_at IS NULL AND warned_round < deadline_round"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(20), unique=True)
    source: Mapped[str] = mapped_column(String(12))
    category_code: Mapped[str] = mapped_column(ForeignKey("category.code"), index=True)
    urgency: Mapped[str] = mapped_column(String(14), server_default="normal")
    description: Mapped[str] = mapped_column(Text)
    geom: Mapped[bytes] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    """Indexed by one GiST index per status (`GEOM_INDEXES`; a box without a status asks each status) and
    ix_cases_category_geog (metres within a class): a write costs one insert in each, ~0.1 ms apiece."""
    input_crs: Mapped[str] = mapped_column(String(8), server_default="wgs84")
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200))
    grid_code: Mapped[str | None] = mapped_column(String(15))
    community_code: Mapped[str | None] = mapped_column(String(12))
    street_code: Mapped[str | None] = mapped_column(String(9))
    district_code: Mapped[str | None] = mapped_column(String(6), index=True)
    component_code: Mapped[str | None] = mapped_column(ForeignKey("component.code"))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    captured_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    stage: Mapped[str | None] = mapped_column(String(16))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    registered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    stage_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    checker_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    routed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    warn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_round: Mapped[int] = mapped_column(Integer, server_default="0")
    """Bumped whenever the deadline changes: a deadline job of an older round does nothing."""
    warned_round: Mapped[int] = mapped_column(Integer, server_default="0")
    overdue_round: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    row_version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """Bumped by the trigger `cases_row_version` (migration 0009) on every UPDATE, whoever writes: the key of the
    case list's cache of encoded cases (`cases.encoded`)."""


class CaseActivity(Base):
    """An append-only timeline row per action: who, in which role and unit, from → to, deadline and time used."""

    __tablename__ = "case_activity"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_activity_case_seq"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    unit_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    deadline: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    minutes_used: Mapped[int | None] = mapped_column(Integer)
    on_time: Mapped[bool | None] = mapped_column(Boolean)


class Attachment(Base):
    """A photo, stored content-addressed (sha256) under the media directory."""

    __tablename__ = "attachment"
    __table_args__ = (
        CheckConstraint(_in("kind", ATTACHMENT_KINDS), name="kind"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
        CheckConstraint("size_bytes > 0", name="size"),
        UniqueConstraint("case_id", "kind", "sha256", name="uq_attachment_case_kind_sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("case_activity.id"))
    kind: Mapped[str] = mapped_column(String(10))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    exif_geom: Mapped[bytes | None] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=True)
    distance_m: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    storage_key: Mapped[str] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    exif: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
