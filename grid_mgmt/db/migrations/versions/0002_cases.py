"""Cases with their timeline and photos; login sessions, idempotency records, patrols.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 09:05:12.346103
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE case_no_seq")  # case numbers: date + serial, with no row lock shared by reports
    op.create_geospatial_table(
        "cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_no", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("category_code", sa.String(length=6), nullable=False),
        sa.Column("urgency", sa.String(length=14), server_default="normal", nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("input_crs", sa.String(length=8), server_default="wgs84", nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("community_code", sa.String(length=12), nullable=True),
        sa.Column("street_code", sa.String(length=9), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("component_code", sa.String(length=17), nullable=True),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger(), nullable=True),
        sa.Column("rework_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("checker_id", sa.Integer(), nullable=True),
        sa.Column("flags", postgresql.ARRAY(sa.String(length=32)), server_default="{}", nullable=False),
        sa.Column("routing", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "source IN ('worker', 'citizen', 'hotline', 'video', 'inspection', 'leader')", name=op.f("ck_cases_source")
        ),
        sa.CheckConstraint(
            "status IN ('verifying', 'reported', 'registered', 'dispatched', 'handling', 'handled', 'checking',"
            " 'checked', 'closed', 'shelved', 'rejected', 'declined', 'cancelled')",
            name=op.f("ck_cases_status"),
        ),
        sa.CheckConstraint("urgency IN ('urgent', 'fairly_urgent', 'normal')", name=op.f("ck_cases_urgency")),
        sa.CheckConstraint("accuracy_m IS NULL OR accuracy_m >= 0", name=op.f("ck_cases_accuracy")),
        sa.CheckConstraint("char_length(description) BETWEEN 1 AND 4000", name=op.f("ck_cases_description")),
        sa.CheckConstraint("version >= 1 AND rework_count >= 0", name=op.f("ck_cases_counters")),
        sa.ForeignKeyConstraint(["category_code"], ["category.code"], name=op.f("fk_cases_category_code_category")),
        sa.ForeignKeyConstraint(["checker_id"], ["app_user.id"], name=op.f("fk_cases_checker_id_app_user")),
        sa.ForeignKeyConstraint(["component_code"], ["component.code"], name=op.f("fk_cases_component_code_component")),
        sa.ForeignKeyConstraint(["duplicate_of"], ["cases.id"], name=op.f("fk_cases_duplicate_of_cases")),
        sa.ForeignKeyConstraint(["reporter_id"], ["app_user.id"], name=op.f("fk_cases_reporter_id_app_user")),
        sa.ForeignKeyConstraint(["unit_code"], ["unit.code"], name=op.f("fk_cases_unit_code_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("case_no", name=op.f("uq_cases_case_no")),
    )
    op.create_geospatial_index(
        "idx_cases_geom", "cases", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_cases_category_code"), "cases", ["category_code"], unique=False)
    op.create_index(
        "ix_cases_deadline_open",
        "cases",
        ["deadline"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NULL AND cancelled_at IS NULL"),
    )
    op.create_index(op.f("ix_cases_district_code"), "cases", ["district_code"], unique=False)
    op.create_index(
        "ix_cases_geog", "cases", [sa.literal_column("(geom::geography)")], unique=False, postgresql_using="gist"
    )
    op.create_index("ix_cases_grid", "cases", ["grid_code", "received_at"], unique=False)
    op.create_index("ix_cases_reporter", "cases", ["reporter_id", "received_at"], unique=False)
    op.create_index("ix_cases_status_received", "cases", ["status", "received_at"], unique=False)
    op.create_index("ix_cases_unit_status", "cases", ["unit_code", "status"], unique=False)
    op.create_index("ix_cases_updated", "cases", ["updated_at", "id"], unique=False)
    op.create_index(
        "ix_cases_checker", "cases", ["checker_id"], unique=False, postgresql_where=sa.text("checker_id IS NOT NULL")
    )
    op.create_index(
        "ix_cases_component",
        "cases",
        ["component_code"],
        unique=False,
        postgresql_where=sa.text("component_code IS NOT NULL"),
    )
    # unit staff lists filter by unit and status together: tell the planner how they correlate
    op.execute("CREATE STATISTICS st_cases_status_unit (mcv) ON status, unit_code FROM cases")
    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_idempotency_key_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_index(op.f("ix_idempotency_key_created_at"), "idempotency_key", ["created_at"], unique=False)
    op.create_geospatial_table(
        "patrol",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "track",
            Geometry(
                geometry_type="LINESTRINGM",
                srid=4326,
                dimension=3,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("distance_m", sa.Float(), server_default="0", nullable=False),
        sa.Column("grids_visited", postgresql.ARRAY(sa.String(length=15)), server_default="{}", nullable=False),
        sa.Column("share_visited", sa.Float(), server_default="0", nullable=False),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_patrol_times")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_patrol_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol")),
    )
    op.create_geospatial_index(
        "idx_patrol_track", "patrol", ["track"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_patrol_user_id"), "patrol", ["user_id"], unique=False)
    op.create_index("uq_patrol_open", "patrol", ["user_id"], unique=True, postgresql_where="ended_at IS NULL")
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_refresh_token_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(op.f("ix_refresh_token_user_id"), "refresh_token", ["user_id"], unique=False)
    op.create_table(
        "case_activity",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=True),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("minutes_used", sa.Integer(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["app_user.id"], name=op.f("fk_case_activity_actor_id_app_user")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_activity_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_activity")),
        sa.UniqueConstraint("case_id", "seq", name="uq_case_activity_case_seq"),
    )
    op.create_index(op.f("ix_case_activity_at"), "case_activity", ["at"], unique=False)
    op.create_geospatial_table(
        "patrol_checkin",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patrol_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["patrol_id"], ["patrol.id"], name=op.f("fk_patrol_checkin_patrol_id_patrol"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_checkin")),
    )
    op.create_index(op.f("ix_patrol_checkin_patrol_id"), "patrol_checkin", ["patrol_id"], unique=False)
    op.create_geospatial_table(
        "patrol_point",
        sa.Column("patrol_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patrol_id"], ["patrol.id"], name=op.f("fk_patrol_point_patrol_id_patrol"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("patrol_id", "at", name=op.f("pk_patrol_point")),
    )
    op.create_geospatial_table(
        "attachment",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("activity_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "exif_geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("flags", postgresql.ARRAY(sa.String(length=32)), server_default="{}", nullable=False),
        sa.Column("uploader_id", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('report', 'handling', 'check', 'verify')", name=op.f("ck_attachment_kind")),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_attachment_sha256")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_attachment_size")),
        sa.ForeignKeyConstraint(
            ["activity_id"], ["case_activity.id"], name=op.f("fk_attachment_activity_id_case_activity")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_attachment_case_id_cases")),
        sa.ForeignKeyConstraint(["uploader_id"], ["app_user.id"], name=op.f("fk_attachment_uploader_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    op.create_index(op.f("ix_attachment_case_id"), "attachment", ["case_id"], unique=False)
    op.create_index(op.f("ix_attachment_sha256"), "attachment", ["sha256"], unique=False)
    op.add_column("app_user", sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("app_user", "token_version")
    op.drop_index(op.f("ix_attachment_sha256"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_case_id"), table_name="attachment")
    op.drop_geospatial_table("attachment")
    op.drop_geospatial_table("patrol_point")
    op.drop_index(op.f("ix_patrol_checkin_patrol_id"), table_name="patrol_checkin")
    op.drop_geospatial_table("patrol_checkin")
    op.drop_index(op.f("ix_case_activity_at"), table_name="case_activity")
    op.drop_table("case_activity")
    op.drop_index(op.f("ix_refresh_token_user_id"), table_name="refresh_token")
    op.drop_table("refresh_token")
    op.drop_index("uq_patrol_open", table_name="patrol", postgresql_where="ended_at IS NULL")
    op.drop_index(op.f("ix_patrol_user_id"), table_name="patrol")
    op.drop_geospatial_index("idx_patrol_track", table_name="patrol", postgresql_using="gist", column_name="track")
    op.drop_geospatial_table("patrol")
    op.drop_index(op.f("ix_idempotency_key_created_at"), table_name="idempotency_key")
    op.drop_table("idempotency_key")
    op.drop_index("ix_cases_updated", table_name="cases")
    op.drop_index("ix_cases_unit_status", table_name="cases")
    op.drop_index("ix_cases_status_received", table_name="cases")
    op.drop_index("ix_cases_reporter", table_name="cases")
    op.drop_index("ix_cases_grid", table_name="cases")
    op.drop_index("ix_cases_geog", table_name="cases", postgresql_using="gist")
    op.drop_index(op.f("ix_cases_district_code"), table_name="cases")
    op.drop_index(
        "ix_cases_deadline_open",
        table_name="cases",
        postgresql_where=sa.text("closed_at IS NULL AND cancelled_at IS NULL"),
    )
    op.drop_index(op.f("ix_cases_category_code"), table_name="cases")
    op.drop_geospatial_index("idx_cases_geom", table_name="cases", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("cases")
    op.execute("DROP SEQUENCE case_no_seq")
