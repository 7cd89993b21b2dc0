"""Refresh-token families: every token descends from one login, and a reused token ends only that login's chain.

Before, the family was the whole user: a phone that replayed a rotated token ended every session of its user on
every device. Existing rows each become a family of their own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("refresh_token", sa.Column("family_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE refresh_token SET family_id = id")
    op.alter_column("refresh_token", "family_id", nullable=False)
    op.create_index(op.f("ix_refresh_token_family_id"), "refresh_token", ["family_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_refresh_token_family_id"), table_name="refresh_token")
    op.drop_column("refresh_token", "family_id")
