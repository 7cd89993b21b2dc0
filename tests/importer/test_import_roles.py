"""Importing as an ordinary role: no bulk tricks without ownership, foreign-key triggers without superuser."""

from __future__ import annotations

import secrets

import asyncpg
import pytest

from grid_mgmt.imports import repository
from grid_mgmt.imports.service import LayerData, import_layer
from tests.importer.importer_synth import LATTICE


async def test_plain_role_imports_without_privileged_shortcuts(
    dsn: str, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    role = f"imp_role_{secrets.token_hex(3)}"
    await pg.execute(f"CREATE ROLE {role} LOGIN")
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'component' ORDER BY 1"
    before = await pg.fetch(indexes)
    try:
        await pg.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}")
        user_dsn = dsn.replace("://postgres@", f"://{role}@", 1)
        monkeypatch.setattr(repository, "BULK_MIN_ROWS", 1)
        comps = LATTICE.components(500)
        first = await import_layer(user_dsn, "components", comps)  # not the owner: indexes maintained row by row
        assert first.ok and first.inserted == 500, first.to_text()

        # owner (with CREATE on the schema, to rebuild indexes) but not superuser: bulk mode, triggers kept
        await pg.execute(f"ALTER TABLE component OWNER TO {role}")
        await pg.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
        calls: list[str] = []

        def track(stage: str, done: int, total: int) -> None:
            calls.append(stage)

        changed = LayerData(comps.geometries, {**comps.columns, "owner_unit_code": ["SW01"] * 500})
        second = await import_layer(user_dsn, "components", changed, progress=track)
        assert "indexing" in calls  # the bulk path ran
        assert (second.inserted, second.updated) == (0, 500), second.to_text()
    finally:
        await pg.execute("ALTER TABLE component OWNER TO postgres")
        await pg.execute(f"DROP OWNED BY {role}")
        await pg.execute(f"DROP ROLE {role}")
    assert await pg.fetch(indexes) == before
    assert await pg.fetchval("SELECT count(*) FROM component WHERE owner_unit_code = 'SW01'") == 500
