"""An index on refresh tokens' expiry, for the nightly purge of dead ones (`accounts.retention`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 22:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_refresh_token_expires_at"), "refresh_token", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_refresh_token_expires_at"), table_name="refresh_token")
