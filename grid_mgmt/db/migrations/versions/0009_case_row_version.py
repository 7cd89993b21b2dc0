"""`cases.row_version`: bumped by a trigger on every UPDATE of a case row, whoever writes it.

The case list keeps each case's encoded JSON per process (`cases.encoded`) and reads only the ids and row versions
of a page; a cached case is used while its row version is the one in the table. `version` cannot serve: it is the
compare-and-set version of the lifecycle, and the deadline jobs change a case (the `overdue` flag) without it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("row_version", sa.BigInteger(), server_default="0", nullable=False))
    op.execute("""
        CREATE FUNCTION cases_bump_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.row_version := OLD.row_version + 1;
            RETURN NEW;
        END $$""")
    op.execute("""
        CREATE TRIGGER cases_row_version BEFORE UPDATE ON cases
        FOR EACH ROW EXECUTE FUNCTION cases_bump_row_version()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER cases_row_version ON cases")
    op.execute("DROP FUNCTION cases_bump_row_version()")
    op.drop_column("cases", "row_version")
