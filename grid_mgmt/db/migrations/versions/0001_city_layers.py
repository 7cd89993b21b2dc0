"""City layers: regions, unit and duty grids, classes, units, components, pipelines, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 08:10:13.752589
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "category",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("major_code", sa.String(length=2), nullable=False),
        sa.Column("major_name", sa.String(length=50), nullable=False),
        sa.Column("minor_code", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("standard_ref", sa.String(length=100), nullable=True),
        sa.Column("register_criteria", sa.Text(), nullable=True),
        sa.Column("closure_criteria", sa.Text(), nullable=True),
        sa.Column("geometry_type", sa.String(length=20), nullable=True),
        sa.Column("responsible_unit_kind", sa.String(length=30), nullable=True),
        sa.Column("time_limits", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("duplicate_radius_m", sa.Integer(), server_default="30", nullable=False),
        sa.Column("duplicate_window_min", sa.Integer(), server_default="1440", nullable=False),
        sa.Column("public", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("subsurface", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("pipeline_kinds", postgresql.ARRAY(sa.String(length=20)), server_default="{}", nullable=False),
        sa.Column("open311_attributes", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("code ~ '^[CE][0-9]{4,5}$'", name=op.f("ck_category_code_format")),
        sa.CheckConstraint("kind IN ('component', 'event')", name=op.f("ck_category_kind")),
        sa.CheckConstraint(
            "minor_code ~ '^[0-9]{4,5}$' AND left(minor_code, 2) = major_code", name=op.f("ck_category_minor")
        ),
        sa.CheckConstraint(
            "substr(code, 2) = minor_code AND left(code, 1) = CASE kind WHEN 'component' THEN 'C' ELSE 'E' END",
            name=op.f("ck_category_code_matches"),
        ),
        sa.CheckConstraint(
            "duplicate_radius_m >= 0 AND duplicate_window_min >= 0", name=op.f("ck_category_duplicate_window")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_category")),
    )
    op.create_index(op.f("ix_category_kind"), "category", ["kind"], unique=False)
    op.create_geospatial_table(
        "region",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "(level = 'district' AND code ~ '^[0-9]{6}$') OR (level = 'street' AND code ~ '^[0-9]{9}$') OR (level = 'community' AND code ~ '^[0-9]{12}$')",
            name=op.f("ck_region_code_format"),
        ),
        sa.CheckConstraint("level IN ('district', 'street', 'community')", name=op.f("ck_region_level")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_region_geom_valid")),
        sa.CheckConstraint(
            "parent_code IS NULL OR left(code, length(parent_code)) = parent_code",
            name=op.f("ck_region_parent"),
        ),
        sa.ForeignKeyConstraint(["parent_code"], ["region.code"], name=op.f("fk_region_parent_code_region")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_region")),
    )
    op.create_geospatial_index(
        "idx_region_geom", "region", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_region_level"), "region", ["level"], unique=False)
    op.create_index(op.f("ix_region_parent_code"), "region", ["parent_code"], unique=False)
    op.create_table(
        "duty_grid",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=True),
        sa.CheckConstraint("code ~ '^[0-9A-Za-z_-]{2,32}$'", name=op.f("ck_duty_grid_code_format")),
        sa.ForeignKeyConstraint(["community_code"], ["region.code"], name=op.f("fk_duty_grid_community_code_region")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_duty_grid")),
    )
    op.create_index(op.f("ix_duty_grid_community_code"), "duty_grid", ["community_code"], unique=False)
    op.create_geospatial_table(
        "grid",
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("valid_from", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("land_use", sa.String(length=50), nullable=True),
        sa.Column("management_grade", sa.String(length=10), nullable=True),
        sa.Column("responsible_body", sa.String(length=100), nullable=True),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f("ck_grid_code_format")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_grid_geom_valid")),
        sa.CheckConstraint("left(code, 12) = community_code", name=op.f("ck_grid_in_community")),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_grid_validity")),
        sa.ForeignKeyConstraint(["community_code"], ["region.code"], name=op.f("fk_grid_community_code_region")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_grid")),
    )
    op.create_geospatial_index(
        "idx_grid_geom", "grid", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_grid_community_code"), "grid", ["community_code"], unique=False)
    op.create_geospatial_table(
        "unit",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column("region_code", sa.String(length=12), nullable=True),
        sa.Column(
            "service_area",
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
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("webhook_secret", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.CheckConstraint("code ~ '^[0-9A-Za-z_-]{2,32}$'", name=op.f("ck_unit_code_format")),
        sa.CheckConstraint(
            "kind IN ('bureau', 'department', 'street_office', 'community_office', 'water', 'drainage', 'gas', 'power', 'telecom', 'heating', 'sanitation', 'landscaping', 'traffic', 'municipal', 'other')",
            name=op.f("ck_unit_kind"),
        ),
        sa.CheckConstraint("(level = 1) = (parent_code IS NULL)", name=op.f("ck_unit_root_level")),
        sa.CheckConstraint("level BETWEEN 1 AND 3", name=op.f("ck_unit_level")),
        sa.CheckConstraint("service_area IS NULL OR ST_IsValid(service_area)", name=op.f("ck_unit_area_valid")),
        sa.ForeignKeyConstraint(["parent_code"], ["unit.code"], name=op.f("fk_unit_parent_code_unit")),
        sa.ForeignKeyConstraint(["region_code"], ["region.code"], name=op.f("fk_unit_region_code_region")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_unit")),
    )
    op.create_geospatial_index(
        "idx_unit_service_area",
        "unit",
        ["service_area"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_unit_kind"), "unit", ["kind"], unique=False)
    op.create_index(op.f("ix_unit_parent_code"), "unit", ["parent_code"], unique=False)
    op.create_index(op.f("ix_unit_region_code"), "unit", ["region_code"], unique=False)
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("district_code", sa.String(length=12), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "NOT ('unit_staff' = ANY(roles)) OR unit_code IS NOT NULL", name=op.f("ck_app_user_staff_unit")
        ),
        sa.CheckConstraint(
            "roles <@ ARRAY['worker', 'acceptor', 'leader', 'dispatcher', 'unit_staff', 'supervisor', 'admin']::varchar[] AND cardinality(roles) > 0",
            name=op.f("ck_app_user_roles"),
        ),
        sa.CheckConstraint("username ~ '^[A-Za-z0-9_.@-]{2,64}$'", name=op.f("ck_app_user_username_format")),
        sa.ForeignKeyConstraint(["district_code"], ["region.code"], name=op.f("fk_app_user_district_code_region")),
        sa.ForeignKeyConstraint(["unit_code"], ["unit.code"], name=op.f("fk_app_user_unit_code_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    op.create_index(op.f("ix_app_user_unit_code"), "app_user", ["unit_code"], unique=False)
    op.create_geospatial_table(
        "component",
        sa.Column("code", sa.String(length=17), nullable=False),
        sa.Column("category_code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "geom",
            Geometry(
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
        sa.Column("supervisor_unit_code", sa.String(length=32), nullable=True),
        sa.Column("owner_unit_code", sa.String(length=32), nullable=True),
        sa.Column("maintainer_unit_code", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="intact", nullable=False),
        sa.Column("survey_date", sa.Date(), nullable=True),
        sa.Column("change_date", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=True),
        sa.Column("accuracy_class", sa.String(length=1), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint(
            "accuracy_class IS NULL OR accuracy_class IN ('A', 'B', 'C')", name=op.f("ck_component_accuracy")
        ),
        sa.CheckConstraint("code ~ '^[0-9]{16,17}$'", name=op.f("ck_component_code_format")),
        sa.CheckConstraint(
            "status IN ('intact', 'damaged', 'missing', 'abandoned', 'removed')",
            name=op.f("ck_component_status"),
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_component_geom_valid")),
        sa.ForeignKeyConstraint(["category_code"], ["category.code"], name=op.f("fk_component_category_code_category")),
        sa.ForeignKeyConstraint(["grid_code"], ["grid.code"], name=op.f("fk_component_grid_code_grid")),
        sa.ForeignKeyConstraint(
            ["maintainer_unit_code"], ["unit.code"], name=op.f("fk_component_maintainer_unit_code_unit")
        ),
        sa.ForeignKeyConstraint(["owner_unit_code"], ["unit.code"], name=op.f("fk_component_owner_unit_code_unit")),
        sa.ForeignKeyConstraint(
            ["supervisor_unit_code"], ["unit.code"], name=op.f("fk_component_supervisor_unit_code_unit")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_component")),
    )
    op.create_geospatial_index(
        "idx_component_geom", "component", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_component_category_code"), "component", ["category_code"], unique=False)
    op.create_index(
        "ix_component_geog",
        "component",
        [sa.literal_column("(geom::geography)")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_component_grid_code"), "component", ["grid_code"], unique=False)
    op.create_index(op.f("ix_component_maintainer_unit_code"), "component", ["maintainer_unit_code"], unique=False)
    op.create_table(
        "duty_grid_grid",
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("duty_grid_code", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["duty_grid_code"],
            ["duty_grid.code"],
            name=op.f("fk_duty_grid_grid_duty_grid_code_duty_grid"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["grid_code"], ["grid.code"], name=op.f("fk_duty_grid_grid_grid_code_grid"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("grid_code", name=op.f("pk_duty_grid_grid")),
    )
    op.create_index(op.f("ix_duty_grid_grid_duty_grid_code"), "duty_grid_grid", ["duty_grid_code"], unique=False)
    op.create_geospatial_table(
        "pipeline",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("diameter_mm", sa.Integer(), nullable=True),
        sa.Column("material", sa.String(length=30), nullable=True),
        sa.Column("depth_m", sa.Float(), nullable=True),
        sa.Column("pressure_class", sa.String(length=20), nullable=True),
        sa.Column("year_built", sa.Integer(), nullable=True),
        sa.Column("owner_unit_code", sa.String(length=32), nullable=True),
        sa.Column("maintainer_unit_code", sa.String(length=32), nullable=True),
        sa.CheckConstraint("code ~ '^[0-9A-Za-z_-]{2,40}$'", name=op.f("ck_pipeline_code_format")),
        sa.CheckConstraint(
            "kind IN ('water', 'storm', 'sewage', 'gas', 'heat', 'power', 'telecom', 'industrial')",
            name=op.f("ck_pipeline_kind"),
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_pipeline_geom_valid")),
        sa.CheckConstraint("diameter_mm IS NULL OR diameter_mm > 0", name=op.f("ck_pipeline_diameter")),
        sa.ForeignKeyConstraint(
            ["maintainer_unit_code"], ["unit.code"], name=op.f("fk_pipeline_maintainer_unit_code_unit")
        ),
        sa.ForeignKeyConstraint(["owner_unit_code"], ["unit.code"], name=op.f("fk_pipeline_owner_unit_code_unit")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_pipeline")),
    )
    op.create_geospatial_index(
        "idx_pipeline_geom", "pipeline", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(
        "ix_pipeline_geog",
        "pipeline",
        [sa.literal_column("(geom::geography)")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_pipeline_kind"), "pipeline", ["kind"], unique=False)
    op.create_index(op.f("ix_pipeline_maintainer_unit_code"), "pipeline", ["maintainer_unit_code"], unique=False)
    op.create_table(
        "duty_grid_worker",
        sa.Column("duty_grid_code", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["duty_grid_code"],
            ["duty_grid.code"],
            name=op.f("fk_duty_grid_worker_duty_grid_code_duty_grid"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_duty_grid_worker_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("duty_grid_code", "user_id", name=op.f("pk_duty_grid_worker")),
    )
    op.create_index(op.f("ix_duty_grid_worker_user_id"), "duty_grid_worker", ["user_id"], unique=False)

    _create_change_tracking()


def downgrade() -> None:
    _drop_change_tracking()
    op.drop_index(op.f("ix_duty_grid_worker_user_id"), table_name="duty_grid_worker")
    op.drop_table("duty_grid_worker")
    op.drop_index(op.f("ix_pipeline_maintainer_unit_code"), table_name="pipeline")
    op.drop_index(op.f("ix_pipeline_kind"), table_name="pipeline")
    op.drop_index("ix_pipeline_geog", table_name="pipeline", postgresql_using="gist")
    op.drop_geospatial_index("idx_pipeline_geom", table_name="pipeline", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("pipeline")
    op.drop_index(op.f("ix_duty_grid_grid_duty_grid_code"), table_name="duty_grid_grid")
    op.drop_table("duty_grid_grid")
    op.drop_index(op.f("ix_component_maintainer_unit_code"), table_name="component")
    op.drop_index(op.f("ix_component_grid_code"), table_name="component")
    op.drop_index("ix_component_geog", table_name="component", postgresql_using="gist")
    op.drop_index(op.f("ix_component_category_code"), table_name="component")
    op.drop_geospatial_index("idx_component_geom", table_name="component", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("component")
    op.drop_index(op.f("ix_app_user_unit_code"), table_name="app_user")
    op.drop_table("app_user")
    op.drop_index(op.f("ix_unit_region_code"), table_name="unit")
    op.drop_index(op.f("ix_unit_parent_code"), table_name="unit")
    op.drop_index(op.f("ix_unit_kind"), table_name="unit")
    op.drop_geospatial_index(
        "idx_unit_service_area", table_name="unit", postgresql_using="gist", column_name="service_area"
    )
    op.drop_geospatial_table("unit")
    op.drop_index(op.f("ix_grid_community_code"), table_name="grid")
    op.drop_geospatial_index("idx_grid_geom", table_name="grid", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("grid")
    op.drop_index(op.f("ix_duty_grid_community_code"), table_name="duty_grid")
    op.drop_table("duty_grid")
    op.drop_index(op.f("ix_region_parent_code"), table_name="region")
    op.drop_index(op.f("ix_region_level"), table_name="region")
    op.drop_geospatial_index("idx_region_geom", table_name="region", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("region")
    op.drop_index(op.f("ix_category_kind"), table_name="category")
    op.drop_table("category")


# Users change often (logins rehash passwords, logouts bump token versions): only what caches show counts.
WATCHED_COLUMNS = {"app_user": ("username", "display_name", "phone", "active", "roles")}

TRACKED = (
    "region",
    "grid",
    "duty_grid",
    "duty_grid_grid",
    "duty_grid_worker",
    "app_user",
    "unit",
    "category",
)


def _create_change_tracking() -> None:
    """A version counter per layer, bumped by a statement trigger that also NOTIFYs `grid_mgmt_changes`.

    API processes keep caches (the locate index) keyed on these versions and reload when they move.
    """
    op.execute(
        "CREATE TABLE layer_version (layer varchar(40) PRIMARY KEY, version bigint NOT NULL DEFAULT 0,"
        " changed_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(
        """
        CREATE FUNCTION bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO layer_version (layer, version, changed_at) VALUES (TG_TABLE_NAME, 1, now())
            ON CONFLICT (layer) DO UPDATE SET version = layer_version.version + 1, changed_at = now();
            PERFORM pg_notify('grid_mgmt_changes', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table in TRACKED:
        op.execute(f"INSERT INTO layer_version (layer) VALUES ('{table}')")
        update = f"UPDATE OF {', '.join(WATCHED_COLUMNS[table])}" if table in WATCHED_COLUMNS else "UPDATE"
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR {update} OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION bump_layer_version()"
        )


def _drop_change_tracking() -> None:
    for table in TRACKED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_layer_version()")
    op.execute("DROP TABLE IF EXISTS layer_version")
