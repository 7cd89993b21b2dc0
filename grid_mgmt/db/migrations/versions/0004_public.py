"""Public side: citizens' reports (tracking code, token, rating), contact details kept apart, Open311 keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 12:53:30.875441
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open311_key",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_key")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_open311_key_key_sha256")),
    )
    op.create_table(
        "case_contact",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("phone IS NOT NULL OR email IS NOT NULL", name=op.f("ck_case_contact_something")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_contact_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_contact")),
    )
    op.create_index("ix_case_contact_phone", "case_contact", ["phone"], unique=False)
    op.create_index("ix_case_contact_purge_after", "case_contact", ["purge_after"], unique=False)
    op.create_table(
        "public_report",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("tracking_code", sa.String(length=10), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=10), server_default="web", nullable=False),
        sa.Column("api_key_id", sa.BigInteger(), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("channel IN ('web', 'open311')", name=op.f("ck_public_report_channel")),
        sa.CheckConstraint("tracking_code ~ '^[A-Z0-9]{10}$'", name=op.f("ck_public_report_tracking_code_format")),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name=op.f("ck_public_report_rating_range")),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["open311_key.id"],
            name=op.f("fk_public_report_api_key_id_open311_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_public_report_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_public_report")),
        sa.UniqueConstraint("tracking_code", name=op.f("uq_public_report_tracking_code")),
    )
    # Open311's request list: the newest cases of a received_at window, read in index order
    op.create_index("ix_cases_received", "cases", ["received_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_received", table_name="cases")
    op.drop_table("public_report")
    op.drop_index("ix_case_contact_purge_after", table_name="case_contact")
    op.drop_index("ix_case_contact_phone", table_name="case_contact")
    op.drop_table("case_contact")
    op.drop_table("open311_key")
