"""Workers: routing rules, the working calendar, the outbox, deadline rounds, photo processing, merged cases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 10:57:16.374734
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from grid_mgmt.db.models.case import STATUSES

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")  # (status, geom) in one GiST index for the case lists
    op.drop_constraint(op.f("ck_cases_status"), "cases", type_="check")
    op.create_check_constraint(op.f("ck_cases_status"), "cases", _in_statuses(STATUSES))
    op.create_table(
        "calendar_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f("ck_calendar_day_kind")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_day")),
    )
    op.create_geospatial_table(
        "routing_rule",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("category_code", sa.String(length=6), nullable=True),
        sa.Column("major_code", sa.String(length=3), nullable=True),
        sa.Column("region_code", sa.String(length=12), nullable=True),
        sa.Column(
            "area",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("auto_dispatch", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "major_code IS NULL OR major_code ~ '^[CE][0-9]{2}$'", name=op.f("ck_routing_rule_major_format")
        ),
        sa.CheckConstraint("area IS NULL OR ST_IsValid(area)", name=op.f("ck_routing_rule_area_valid")),
        sa.CheckConstraint("category_code IS NULL OR major_code IS NULL", name=op.f("ck_routing_rule_one_class_level")),
        sa.CheckConstraint("region_code IS NULL OR area IS NULL", name=op.f("ck_routing_rule_one_area")),
        sa.ForeignKeyConstraint(
            ["category_code"], ["category.code"], name=op.f("fk_routing_rule_category_code_category")
        ),
        sa.ForeignKeyConstraint(["region_code"], ["region.code"], name=op.f("fk_routing_rule_region_code_region")),
        sa.ForeignKeyConstraint(["unit_code"], ["unit.code"], name=op.f("fk_routing_rule_unit_code_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rule")),
    )
    op.create_geospatial_index(
        "idx_routing_rule_area", "routing_rule", ["area"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_routing_rule_category_code"), "routing_rule", ["category_code"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("target_url", sa.String(length=500), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_attempts")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_outbox_case_id_cases")),
        sa.ForeignKeyConstraint(["unit_code"], ["unit.code"], name=op.f("fk_outbox_unit_code_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_case_id"), "outbox", ["case_id"], unique=False)
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
    )
    op.add_column("attachment", sa.Column("thumb_key", sa.String(length=200), nullable=True))
    op.add_column("attachment", sa.Column("exif", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("attachment", sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("deadline_round", sa.Integer(), server_default="0", nullable=False))
    op.add_column("cases", sa.Column("warned_round", sa.Integer(), server_default="0", nullable=False))
    op.add_column("cases", sa.Column("overdue_round", sa.Integer(), server_default="0", nullable=False))
    op.create_index(
        "ix_cases_overdue_due",
        "cases",
        ["deadline"],
        unique=False,
        postgresql_where=sa.text("deadline IS NOT NULL AND paused_at IS NULL AND overdue_round < deadline_round"),
    )
    # duplicates: same class near a point (the class first, then the geography; btree_gist)
    op.create_index(
        "ix_cases_category_geog", "cases", ["category_code", sa.text("(geom::geography)")], postgresql_using="gist"
    )
    op.create_index(
        "ix_cases_duplicate_of", "cases", ["duplicate_of"], postgresql_where=sa.text("duplicate_of IS NOT NULL")
    )
    op.create_index("ix_cases_status_geom", "cases", ["status", "geom"], unique=False, postgresql_using="gist")
    op.create_index(
        "ix_cases_unrouted",
        "cases",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("routed_at IS NULL AND status = 'reported'"),
    )
    op.create_index(
        "ix_cases_warn_due",
        "cases",
        ["warn_at"],
        unique=False,
        postgresql_where=sa.text("warn_at IS NOT NULL AND paused_at IS NULL AND warned_round < deadline_round"),
    )
    op.add_column("category", sa.Column("auto_dispatch", sa.Boolean(), server_default="false", nullable=False))
    # one record per photo, kind and case even for two uploads at the same instant (keep the first of twins)
    op.execute(
        "DELETE FROM attachment a USING attachment b WHERE a.case_id = b.case_id AND a.kind = b.kind"
        " AND a.sha256 = b.sha256 AND a.id > b.id AND a.activity_id IS NULL"
    )
    op.create_unique_constraint("uq_attachment_case_kind_sha256", "attachment", ["case_id", "kind", "sha256"])
    # cases filed before the workers existed count as routed (the recovery sweep must not re-route history)
    op.execute("UPDATE cases SET routed_at = received_at WHERE routed_at IS NULL")
    load_calendar()


def downgrade() -> None:
    op.drop_index("ix_cases_duplicate_of", table_name="cases")
    op.drop_index("ix_cases_category_geog", table_name="cases")
    op.drop_constraint("uq_attachment_case_kind_sha256", "attachment", type_="unique")
    op.execute("UPDATE cases SET status = 'cancelled' WHERE status = 'merged'")
    op.drop_constraint(op.f("ck_cases_status"), "cases", type_="check")
    op.create_check_constraint(op.f("ck_cases_status"), "cases", _in_statuses([s for s in STATUSES if s != "merged"]))
    op.drop_column("category", "auto_dispatch")
    op.drop_index(
        "ix_cases_warn_due",
        table_name="cases",
        postgresql_where=sa.text("warn_at IS NOT NULL AND paused_at IS NULL AND warned_round < deadline_round"),
    )
    op.drop_index(
        "ix_cases_unrouted", table_name="cases", postgresql_where=sa.text("routed_at IS NULL AND status = 'reported'")
    )
    op.drop_index("ix_cases_status_geom", table_name="cases", postgresql_using="gist")
    op.drop_index(
        "ix_cases_overdue_due",
        table_name="cases",
        postgresql_where=sa.text("deadline IS NOT NULL AND paused_at IS NULL AND overdue_round < deadline_round"),
    )
    op.drop_column("cases", "overdue_round")
    op.drop_column("cases", "warned_round")
    op.drop_column("cases", "deadline_round")
    op.drop_column("cases", "warn_at")
    op.drop_column("cases", "routed_at")
    op.drop_column("attachment", "processed_at")
    op.drop_column("attachment", "exif")
    op.drop_column("attachment", "thumb_key")
    op.drop_index(
        "ix_outbox_pending", table_name="outbox", postgresql_where=sa.text("delivered_at IS NULL AND failed_at IS NULL")
    )
    op.drop_index(op.f("ix_outbox_case_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_routing_rule_category_code"), table_name="routing_rule")
    op.drop_geospatial_index(
        "idx_routing_rule_area", table_name="routing_rule", postgresql_using="gist", column_name="area"
    )
    op.drop_geospatial_table("routing_rule")
    op.drop_table("calendar_day")


def _in_statuses(statuses: Sequence[str]) -> str:
    return f"status IN ({', '.join(repr(v) for v in statuses)})"


def load_calendar() -> None:
    """The official calendar 2025–2027 (holidays, make-up workdays) shipped with the package; editable later."""
    from grid_mgmt.sla.holidays import OFFICIAL_DAYS

    table = sa.table(
        "calendar_day",
        sa.column("day", sa.Date),
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("source", sa.String),
    )
    op.bulk_insert(table, [{"day": d.day, "kind": d.kind, "name": d.name, "source": d.source} for d in OFFICIAL_DAYS])
