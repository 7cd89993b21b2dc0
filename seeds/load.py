"""Load a generated city into PostGIS: layers through the importer, dictionaries and users with asyncpg."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from argon2 import PasswordHasher

from grid_mgmt.imports.service import import_layer
from seeds.categories import COLUMNS as CATEGORY_COLUMNS
from seeds.generator import City, generate_city
from seeds.open311 import load_open311
from seeds.params import CityParams
from seeds.routing import load_routing
from seeds.users import USER_COLUMNS

Progress = Callable[[str, int, int], None]

#: Tables the seed fills, in load order (the counts `load_city` returns).
TABLES = (
    "category",
    "region",
    "unit",
    "grid",
    "pipeline",
    "component",
    "duty_grid",
    "duty_grid_grid",
    "app_user",
    "duty_grid_worker",
)
#: Usernames the seed owns besides the ones of the city it loads (left over from a bigger city).
DEMO_USERNAMES = (
    r"^(admin|acceptor[0-9]+|leader[0-9]+|dispatcher[0-9]+|supervisor[0-9]+|worker[0-9]+|unit-[0-9A-Za-z_-]+)$"
)


#: Tables emptied as a whole when the city is replaced (children first).
_TRUNCATED = ("duty_grid_worker", "duty_grid_grid", "duty_grid", "component", "pipeline", "grid")


class SeedError(RuntimeError):
    """Loading the city failed; the message says which step and why."""


async def load_city(
    dsn: str,
    city: City | None = None,
    *,
    scale: str | float | CityParams = "demo",
    progress: Progress | None = None,
    replace: bool = True,
) -> dict[str, int]:
    """Load `city` (generated at `scale` when None) into the database at `dsn` (a plain postgresql:// DSN).

    With `replace`, the previous city (regions, grids, units, components, pipelines, duty grids and the demo
    users) is deleted first; classes are always upserted by code, everything else by code / username, so
    loading twice gives the same rows. Returns the row count of every table the seed fills.
    """
    if city is None:
        city = generate_city(scale)
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "grid-mgmt seed"})
    try:
        if replace:
            _step(progress, "clearing", 0, 1)
            await _clear(conn, city)
            _step(progress, "clearing", 1, 1)
        _step(progress, "categories", 0, len(city.categories))
        await _upsert_categories(conn, city.categories)
        _step(progress, "categories", len(city.categories), len(city.categories))
    finally:
        await conn.close()

    for layer, data in city.layers().items():

        def forward(stage: str, done: int, total: int, layer: str = layer) -> None:
            if progress:
                progress(f"{layer}: {stage}", done, total)

        report = await import_layer(dsn, layer, data, progress=forward)
        if not report.ok:
            raise SeedError(f"the {layer} layer of the generated city was rejected:\n{report.to_text()}")

    conn = await asyncpg.connect(dsn, server_settings={"application_name": "grid-mgmt seed"})
    try:
        async with conn.transaction():
            _step(progress, "duty grids", 0, len(city.duty_grids))
            await _upsert(
                conn,
                "duty_grid",
                ("code", "name", "community_code"),
                [(d["code"], d["name"], d["community_code"]) for d in city.duty_grids],
                ("code",),
            )
            await _upsert(conn, "duty_grid_grid", ("grid_code", "duty_grid_code"), city.duty_grid_grids, ("grid_code",))
            _step(progress, "duty grids", len(city.duty_grids), len(city.duty_grids))
            _step(progress, "users", 0, len(city.users))
            password_hash = PasswordHasher().hash(city.password)  # once: every demo user shares it
            columns = ("password_hash", *USER_COLUMNS)
            records = [(password_hash, *(u[c] for c in USER_COLUMNS)) for u in city.users]
            await _upsert(conn, "app_user", columns, records, ("username",))
            ids = {
                r["username"]: r["id"]
                for r in await conn.fetch(
                    "SELECT id, username FROM app_user WHERE username = ANY($1::text[])",
                    [u["username"] for u in city.users],
                )
            }
            workers = [(duty, ids[username]) for duty, username in city.duty_grid_workers]
            await _upsert(
                conn,
                "duty_grid_worker",
                ("duty_grid_code", "user_id"),
                workers,
                ("duty_grid_code", "user_id"),
                update=False,
            )
            _step(progress, "users", len(city.users), len(city.users))
            await load_routing(conn)
            await load_open311(conn)
        # Fresh statistics at once: until autovacuum gets to them the planner takes the new tables for empty and
        # answers e.g. a worker's duty grids (every token's scope) by scanning all 100,000 rows (14 ms → 0.05 ms).
        await conn.execute("ANALYZE " + ", ".join(TABLES))
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}
    finally:
        await conn.close()


async def is_loaded(dsn: str) -> bool:
    """Whether the database already holds a city (unit grids and a class dictionary); False without a schema."""
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM grid) AND EXISTS (SELECT 1 FROM category)"))
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()


def _step(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress:
        progress(stage, done, total)


async def _clear(conn: asyncpg.Connection, city: City) -> None:
    """Delete the previous city, children before parents, in one transaction.

    The big tables are truncated when nothing else references them (fast); otherwise their rows are deleted,
    which fails with a clear message when other rows (cases …) still point at them.
    """
    usernames = [u["username"] for u in city.users]
    try:
        async with conn.transaction():
            try:
                async with conn.transaction():  # a savepoint: a refused TRUNCATE must not abort the rest
                    await conn.execute(f"TRUNCATE {', '.join(_TRUNCATED)}")
            except asyncpg.FeatureNotSupportedError:  # another table has a foreign key to one of them
                for table in _TRUNCATED:
                    await conn.execute(f"DELETE FROM {table}")
            await conn.execute(
                "DELETE FROM app_user WHERE username = ANY($1::text[]) OR username ~ $2", usernames, DEMO_USERNAMES
            )
            for table in ("routing_rule", "unit", "region"):
                await conn.execute(f"DELETE FROM {table}")
    except asyncpg.ForeignKeyViolationError as exc:
        raise SeedError(
            f"cannot replace the city: other rows still reference it ({exc.detail or exc}); "
            "load into an empty database, or load with replace=False to upsert over it"
        ) from exc


async def _upsert_categories(conn: asyncpg.Connection, categories: list[dict[str, Any]]) -> None:
    json_columns = {"time_limits", "open311_attributes"}
    records = [
        tuple(json.dumps(c[k], ensure_ascii=False) if k in json_columns else c[k] for k in CATEGORY_COLUMNS)
        for c in categories
    ]
    await _upsert(conn, "category", CATEGORY_COLUMNS, records, ("code",), touch="updated_at")


async def _upsert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
    key: Sequence[str],
    *,
    update: bool = True,
    touch: str | None = None,
) -> None:
    """COPY `records` into a staging table shaped like `table`'s `columns`, then insert-or-update by `key`."""
    stage = f"_seed_{table}"
    names = ", ".join(columns)
    async with conn.transaction():
        await conn.execute(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA")
        await conn.copy_records_to_table(stage, records=list(records), columns=list(columns))
        sets = [f"{c} = EXCLUDED.{c}" for c in columns if c not in key] + ([f"{touch} = now()"] if touch else [])
        action = f"DO UPDATE SET {', '.join(sets)}" if update and sets else "DO NOTHING"
        await conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} ON CONFLICT ({', '.join(key)}) {action}"
        )
        await conn.execute(f"DROP TABLE {stage}")
