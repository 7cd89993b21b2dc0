"""SQL of the importer (asyncpg): reference look-ups, grid and community geometry, COPY staging and upsert."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import numpy as np
import shapely

from grid_mgmt.imports.checks import GeomArray
from grid_mgmt.imports.layers import PG_TYPES, LayerSpec

Progress = Callable[[str, int, int], None]

STAGE = "_import_stage"
COPY_CHUNK = 100_000
#: Drop and rebuild the secondary indexes when the batch has at least this many rows...
BULK_MIN_ROWS = 50_000
#: ...and at least this share of the rows already in the table.
BULK_MIN_SHARE = 0.5


ANALYZE_AFTER_ROWS = 1000
"""A batch at least this large refreshes the table's statistics at once (autovacuum may take minutes)."""


async def existing_codes(
    conn: asyncpg.Connection, table: str, codes: Sequence[str], where: str | None = None
) -> set[str]:
    """Which of `codes` are codes of rows of `table` (matching `where`)."""
    if not codes:
        return set()
    extra = f" AND ({where})" if where else ""
    rows = await conn.fetch(f"SELECT code FROM {table} WHERE code = ANY($1::text[]){extra}", list(codes))
    return {r["code"] for r in rows}


async def category_names(conn: asyncpg.Connection, codes: Sequence[str]) -> dict[str, str]:
    """Names of the given component classes."""
    rows = await conn.fetch("SELECT code, name FROM category WHERE code = ANY($1::text[])", list(codes))
    return {r["code"]: r["name"] for r in rows}


async def unit_levels(conn: asyncpg.Connection, codes: Sequence[str]) -> dict[str, int]:
    """Levels of the given units."""
    rows = await conn.fetch("SELECT code, level FROM unit WHERE code = ANY($1::text[])", list(codes))
    return {r["code"]: int(r["level"]) for r in rows}


async def load_grids(
    conn: asyncpg.Connection, bounds: tuple[float, float, float, float]
) -> tuple[list[str], GeomArray]:
    """Current unit grids meeting `bounds` (minx, miny, maxx, maxy), sorted by code, as (codes, geometries)."""
    rows = await conn.fetch(
        "SELECT code, ST_AsBinary(geom) AS wkb FROM grid"
        " WHERE geom && ST_MakeEnvelope($1, $2, $3, $4, 4326) AND (valid_to IS NULL OR valid_to >= CURRENT_DATE)"
        " ORDER BY code",
        *bounds,
    )
    codes = [r["code"] for r in rows]
    geoms: GeomArray = shapely.from_wkb(np.array([r["wkb"] for r in rows], dtype=object))
    return codes, geoms


async def load_communities(conn: asyncpg.Connection, codes: Sequence[str]) -> dict[str, Any]:
    """Community boundaries (shapely) by code."""
    rows = await conn.fetch(
        "SELECT code, ST_AsBinary(geom) AS wkb FROM region WHERE level = 'community' AND code = ANY($1::text[])",
        list(codes),
    )
    return {r["code"]: shapely.from_wkb(r["wkb"]) for r in rows}


async def _secondary_indexes(conn: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(i.relname) AS name, pg_get_indexdef(i.oid) AS def"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace"
        " WHERE x.indrelid = $1::regclass AND NOT x.indisprimary AND NOT x.indisunique AND NOT x.indisexclusion",
        table,
    )
    return [(r["name"], r["def"]) for r in rows]


async def _use_bulk_mode(conn: asyncpg.Connection, table: str, rows: int) -> bool:
    """Whether rebuilding the secondary indexes beats maintaining them row by row for this batch."""
    if rows < BULK_MIN_ROWS:
        return False
    row = await conn.fetchrow(
        "SELECT greatest(reltuples, 0)::bigint AS estimate,"
        " pg_has_role(relowner, 'USAGE') AND has_schema_privilege(relnamespace, 'CREATE') AS may_rebuild"
        " FROM pg_class WHERE oid = $1::regclass",
        table,
    )
    assert row is not None  # DROP INDEX needs the table's owner, CREATE INDEX the schema's CREATE privilege
    return bool(row["may_rebuild"]) and rows >= BULK_MIN_SHARE * int(row["estimate"])


async def write(
    conn: asyncpg.Connection,
    spec: LayerSpec,
    columns: dict[str, list[Any]],
    wkb: list[bytes | None] | None,
    referenced: dict[str, list[str]],
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> tuple[int, int]:
    """Inside the caller's transaction: COPY the rows into a temporary table, then upsert them by code.

    Returns (inserted, updated); an existing row whose values would not change is left alone and counted in
    neither. `columns` are typed values by table column; `wkb` the 2D WKB geometries, or None to leave the
    geometry column alone; `referenced` the distinct codes each reference column uses (all checked to exist).
    The table is locked against other writers (readers go on) so the counts are exact. A batch that is large
    next to the table is loaded with its secondary indexes dropped and rebuilt after. With `dry_run` nothing
    is locked or written: the counts are what would be (the caller rolls back to drop the staged rows).
    """
    names = list(columns)
    total = len(columns["code"])
    if not dry_run:
        await conn.execute(f"LOCK TABLE {spec.table} IN SHARE ROW EXCLUSIVE MODE")
    staged = [(name, PG_TYPES[_kind(spec, name)]) for name in names]
    if wkb is not None:
        staged.append(("g_wkb", "bytea"))
    ddl = ", ".join(f"{name} {pgtype}" for name, pgtype in staged)
    await conn.execute(f"CREATE TEMP TABLE {STAGE} ({ddl}) ON COMMIT DROP")
    series = [columns[name] for name in names] + ([wkb] if wkb is not None else [])
    stage_cols = [name for name, _ in staged]
    if progress:
        progress("loading", 0, total)
    for start in range(0, total, COPY_CHUNK):
        stop = min(start + COPY_CHUNK, total)
        records = list(zip(*(s[start:stop] for s in series), strict=True))
        await conn.copy_records_to_table(STAGE, records=records, columns=stage_cols)
        if progress:
            progress("loading", stop, total)
    await conn.execute(f"ANALYZE {STAGE}")

    defaults = dict(spec.defaults)
    values = {n: f"COALESCE(s.{n}, {defaults[n]})" if n in defaults else f"s.{n}" for n in names}
    source = f"{STAGE} s"
    if wkb is not None:
        values[spec.geom_column] = "s.g"
        source = f"(SELECT *, ST_GeomFromWKB(g_wkb, 4326) AS g FROM {STAGE}) s"
    compared = [c for c in values if c != "code"]
    differs = f"({', '.join(f't.{c}' for c in compared)}) IS DISTINCT FROM ({', '.join(values[c] for c in compared)})"
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE t.code IS NULL) AS new,"
        f" count(*) FILTER (WHERE t.code IS NOT NULL AND {differs}) AS changed, count(t.code) AS existing"
        f" FROM {source} LEFT JOIN {spec.table} t ON t.code = s.code"
    )
    assert row is not None
    new, changed, existing = int(row["new"]), int(row["changed"]), int(row["existing"])
    if dry_run:
        return new, changed
    if progress:
        progress("upserting", 0, total)
    if new + changed == 0:  # the file repeats what is stored
        if progress:
            progress("upserting", total, total)
        return 0, 0

    indexes: list[tuple[str, str]] = []
    if await _use_bulk_mode(conn, spec.table, new + changed):
        indexes = await _secondary_indexes(conn, spec.table)
        for name, _ in indexes:
            await conn.execute(f"DROP INDEX {name}")
    await _check_references_at_once(conn, spec.table, names, referenced)

    if wkb is not None:
        for column, expr in spec.computed:
            values[column] = expr.format(g="s.g")
    target = list(values)
    sql = f"INSERT INTO {spec.table} AS t ({', '.join(target)}) SELECT {', '.join(values.values())} FROM {source}"
    if existing:  # with no row to update (the table is locked), a plain INSERT skips speculative insertion
        update = [c for c in target if c != "code"]
        sql += (
            f" ON CONFLICT (code) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in update)}"
            f" WHERE ({', '.join(f't.{c}' for c in update)}) IS DISTINCT FROM"
            f" ({', '.join(f'EXCLUDED.{c}' for c in update)})"  # an unchanged row is not rewritten
        )
    await conn.execute(sql)
    if progress:
        progress("upserting", total, total)
    if indexes:
        await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for i, (_, definition) in enumerate(indexes):
            if progress:
                progress("indexing", i, len(indexes))
            await conn.execute(definition)
        if progress:
            progress("indexing", len(indexes), len(indexes))
    if indexes or new + changed >= ANALYZE_AFTER_ROWS:  # the planner must not go on taking the layer for small
        await conn.execute(f"ANALYZE {spec.table}")
    return new, changed


async def _check_references_at_once(
    conn: asyncpg.Connection, table: str, staged: list[str], referenced: dict[str, list[str]]
) -> None:
    """Replace the per-row foreign-key triggers by one locking check per referenced table, when allowed.

    Each foreign-key trigger looks up and KEY SHARE-locks the referenced row, one inserted row at a time
    (~6 µs per row and key: a third of a million-row load). Here the distinct referenced codes are locked
    FOR KEY SHARE in one statement per key (the same lock, so they cannot vanish before commit) and counted;
    then `session_replication_role = replica` skips the triggers for the rest of the transaction. Done only
    when every foreign key of the table was checked this way (not self-references), the table has no
    triggers of its own (replica mode would skip those too), and the role may set the parameter;
    otherwise the triggers stay on and do the checking.
    """
    fks = await conn.fetch(
        "SELECT a.attname AS col, c.confrelid::regclass::text AS ref, c.conrelid = c.confrelid AS self"
        " FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
        " WHERE c.conrelid = $1::regclass AND c.contype = 'f'",
        table,
    )
    fks = [fk for fk in fks if fk["col"] in staged]  # other keys stay NULL (insert) or unchanged (update)
    if any(fk["self"] or fk["col"] not in referenced for fk in fks):
        return
    own_triggers = await conn.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal", table
    )
    if own_triggers or not fks:
        return
    try:
        async with conn.transaction():  # a savepoint: anything refused here must not abort the import
            allowed = await conn.fetchval(
                "SELECT current_setting('is_superuser') = 'on'"
                " OR has_parameter_privilege('session_replication_role', 'SET')"  # PostgreSQL 15+
            )
            if not allowed:
                return
            for fk in fks:
                codes = referenced[fk["col"]]
                locked = await conn.fetchval(
                    f"SELECT count(*) FROM (SELECT 1 FROM {fk['ref']} t WHERE t.code = ANY($1::text[])"
                    " FOR KEY SHARE OF t) x",
                    codes,
                )
                if locked != len(codes):
                    return  # a row went missing since validation: let the triggers find and name it
            await conn.execute("SET LOCAL session_replication_role = replica")
    except (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedFunctionError):
        return


def _kind(spec: LayerSpec, name: str) -> str:
    col = spec.column(name)
    return col.kind if col is not None else "text"
