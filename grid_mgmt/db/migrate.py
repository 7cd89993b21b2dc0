"""Run Alembic programmatically: upgrade to head, report the current and head revisions."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (creates the PostGIS extension in the first migration)."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    """The newest migration shipped with this code."""
    script = ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://unused/unused"))
    head = script.get_current_head()
    assert head is not None
    return head
