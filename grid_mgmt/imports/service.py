"""Import a city layer: validate every feature, then write all of them in one transaction, or none."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np
import shapely

from grid_mgmt.imports import repository, rules
from grid_mgmt.imports.checks import GeomArray, check_codes, normalize_geometries
from grid_mgmt.imports.layers import LAYERS, LayerSpec, get_spec
from grid_mgmt.imports.report import ImportReport, Problem, Problems
from grid_mgmt.imports.values import as_text, convert

__all__ = ["LAYERS", "ImportReport", "LayerData", "Problem", "import_layer"]

Progress = Callable[[str, int, int], None]

_VALIDATION_STEPS = 6
_KEY = re.compile(r"Key \((?P<col>[^)]*)\)=\((?P<val>[^)]*)\)")
_ROW = re.compile(r"Failing row contains \((?P<code>[^,)]*)")


class _RollBack(Exception):
    """Raised inside the write transaction of a dry run to undo the staging."""


@dataclass
class LayerData:
    """Features read from a file: WGS84 geometries (None where absent) and field-mapped columns."""

    geometries: np.ndarray[Any, Any]
    columns: dict[str, Sequence[Any]]
    errors: dict[int, str] = field(default_factory=dict)


async def import_layer(
    dsn: str,
    layer: str,
    data: LayerData,
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
    check_geometry: bool = True,
) -> ImportReport:
    """Validate `data` as `layer`; if nothing is wrong (and not `dry_run`), upsert every feature by code.

    Progress stages: "validating" (done/total in checks), "loading" and "upserting" (in features),
    "indexing" (indexes rebuilt after a bulk load). On a dry run the counts say what would be inserted
    and updated. Any problem (or database error) means nothing is written.
    """
    spec = get_spec(layer)
    started = time.perf_counter()
    geoms: GeomArray = np.empty(len(data.geometries), dtype=object)
    geoms[:] = list(data.geometries)
    n = len(geoms)
    for name, values in data.columns.items():
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values for {n} geometries")

    def report(problems: Problems, inserted: int = 0, updated: int = 0) -> ImportReport:
        return ImportReport(
            layer=layer,
            total=n,
            inserted=inserted,
            updated=updated,
            problems=problems.finish(),
            seconds=time.perf_counter() - started,
            dry_run=dry_run,
            ignored_columns=sorted(set(data.columns) - set(spec.column_names)),
        )

    conn = await asyncpg.connect(
        dsn, server_settings={"application_name": f"grid-mgmt import {layer}", "temp_buffers": "256MB"}
    )
    try:
        batch, problems = await _validate(conn, spec, data, geoms, check_geometry, progress)
        if batch is None or problems:
            return report(problems)
        columns = {c: batch.columns[c] for c in spec.column_names if c in batch.columns}
        wkb = _wkb(batch.geoms)
        try:
            async with conn.transaction():
                inserted, updated = await repository.write(
                    conn, spec, columns, wkb, batch.referenced, progress=progress, dry_run=dry_run
                )
                if dry_run:
                    raise _RollBack
        except _RollBack:
            pass
        except (asyncpg.PostgresError, asyncpg.DataError) as exc:
            problems.add(*_from_database(exc, batch.codes))
            return report(problems)
        return report(problems, inserted, updated)
    finally:
        await conn.close()


async def _validate(
    conn: asyncpg.Connection,
    spec: LayerSpec,
    data: LayerData,
    geoms: GeomArray,
    check_geometry: bool,
    progress: Progress | None,
) -> tuple[rules.Batch | None, Problems]:
    step = 0

    def advance() -> None:
        nonlocal step
        step += 1
        if progress:
            progress("validating", step, _VALIDATION_STEPS)

    if progress:
        progress("validating", 0, _VALIDATION_STEPS)
    raw_codes = data.columns.get("code")
    codes: list[str | None] = as_text(raw_codes) if raw_codes is not None else [None] * len(geoms)
    problems = Problems(codes)
    for index, message in sorted(data.errors.items()):
        kind = _read_error_kind(message, spec)
        if kind is not None:
            problems.add(int(index), kind, message)
            problems.read_errors.add(int(index))
    missing = [c.name for c in spec.columns if c.required and c.name not in data.columns]
    for name in missing:
        problems.add(
            None, "missing_field", f"the file has no {name!r} column (map a field to it: --field-map {name}=FIELD)"
        )
    if "code" in missing:
        return None, problems
    batch = rules.Batch(spec, codes, {"code": codes}, geoms, np.zeros(len(geoms), dtype=bool), problems)
    batch.good_code = check_codes(codes, spec, problems)
    advance()

    for col in spec.columns:
        if col.name == "code" or col.name not in data.columns:
            continue
        values, errors = convert(col, data.columns[col.name])
        batch.columns[col.name] = values
        problems.add_many(sorted(errors.items()), "bad_value")
        if col.required:
            for i, v in enumerate(values):
                if v is None and i not in errors:
                    problems.add(i, "missing_field", f"{col.name} is empty")
    advance()

    batch.geoms, batch.usable = normalize_geometries(geoms, spec, problems, check=check_geometry)
    advance()
    await rules.derive(conn, batch)
    advance()
    await _check_references(conn, batch)
    advance()
    await rules.after_references(conn, batch)
    advance()
    return batch, problems


async def _check_references(conn: asyncpg.Connection, batch: rules.Batch) -> None:
    """Every referenced code must exist in the database (or, for parents, in the file itself)."""
    file_codes: set[str | None] = set()
    if any(ref.self_ref and ref.column in batch.columns for ref in batch.spec.references):
        file_codes = {c for c, ok in zip(batch.codes, batch.good_code, strict=True) if ok}
    for ref in batch.spec.references:
        values = batch.columns.get(ref.column)
        if values is None:
            continue
        wanted = {v for v in values if v is not None}
        if ref.self_ref:
            wanted -= file_codes
        found = await repository.existing_codes(conn, ref.table, sorted(wanted), ref.where)
        unknown = wanted - found
        batch.unknown[ref.column] = unknown
        batch.referenced[ref.column] = sorted(found)
        if not unknown:
            continue
        where = " nor in this file" if ref.self_ref else ""
        for i, v in enumerate(values):
            if v in unknown:
                batch.problems.add(
                    i, "unknown_reference", f"{ref.column}: there is no {ref.what} {v} in the database{where}"
                )


def _read_error_kind(message: str, spec: LayerSpec) -> str | None:
    """The problem kind of a reader's per-feature message; None for a missing geometry the layer allows."""
    text = message.lower()
    if text in ("missing geometry", "empty geometry"):
        return "missing_field" if spec.geom_required else None
    if text.startswith(("invalid geometry", "coordinates", "unreadable geometry")):
        return "invalid_geometry"
    return "read_error"


def _wkb(geoms: GeomArray) -> list[bytes | None] | None:
    """WKB (2D) of every geometry, or None when no feature has one (the geometry column is left alone)."""
    missing = shapely.is_missing(geoms)
    if missing.all():
        return None
    wkb: list[bytes | None] = shapely.to_wkb(geoms, output_dimension=2).tolist()
    return wkb


def _from_database(exc: Exception, codes: list[str | None]) -> tuple[int | None, str, str, str | None]:
    """(index, kind, message, code) for a database error raised while writing."""
    sqlstate = getattr(exc, "sqlstate", None)
    constraint = getattr(exc, "constraint_name", None) or ""
    detail = getattr(exc, "detail", None) or ""
    kind = {"23505": "duplicate_code", "23503": "unknown_reference", "23502": "missing_field"}.get(
        sqlstate or "", "bad_value" if (sqlstate or "").startswith(("22", "23")) else "database_error"
    )
    if constraint.endswith(("geom_valid", "area_valid")):
        kind = "invalid_geometry"
    code = None
    key = _KEY.search(detail)
    row = _ROW.search(detail)
    if key and key["col"] == "code":
        code = key["val"]
    elif row:
        code = row["code"]
    index = None
    if code is not None:
        index = next((i for i, c in enumerate(codes) if c == code), None)
        if index is None:
            code = None
    text = getattr(exc, "message", None) or str(exc)
    message = f"the database refused the rows, nothing was written: {text}" + (f" ({detail})" if detail else "")
    return index, kind, message, code
