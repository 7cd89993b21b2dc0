"""Layer-specific rules: derived columns (levels, parents, communities, classes, grids) and spatial checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import numpy as np
import shapely
from shapely.errors import GEOSException

from grid_mgmt.imports import repository, spatial
from grid_mgmt.imports.checks import GeomArray
from grid_mgmt.imports.layers import REGION_LEVELS_BY_LENGTH, LayerSpec
from grid_mgmt.imports.report import Problems


@dataclass
class Batch:
    """The features being imported, column by column, as they move through validation."""

    spec: LayerSpec
    codes: list[str | None]
    columns: dict[str, list[Any]]  # typed values by table column (includes "code")
    geoms: GeomArray
    usable: np.ndarray[Any, np.dtype[np.bool_]]  # geometry fit for spatial rules
    problems: Problems
    good_code: list[bool] = field(default_factory=list)  # code present and well formed
    unknown: dict[str, set[str]] = field(default_factory=dict)  # column -> referenced codes that do not exist
    referenced: dict[str, list[str]] = field(default_factory=dict)  # column -> referenced codes that exist

    @property
    def size(self) -> int:
        return len(self.codes)


def _derive(batch: Batch, column: str, derived: list[str | None], mismatch: str) -> None:
    """Fill `column` from `derived` where empty; where given and different, report `mismatch`."""
    given = batch.columns.get(column)
    if given is None:
        batch.columns[column] = derived
        return
    for i, (g, d) in enumerate(zip(given, derived, strict=True)):
        if g is None:
            given[i] = d
        elif d is not None and g != d:
            batch.problems.add(i, "bad_value", mismatch.format(given=g, derived=d, code=batch.codes[i]))


async def derive(conn: asyncpg.Connection, batch: Batch) -> None:
    """Columns that follow from the code (or from other rows) before references are checked."""
    layer = batch.spec.layer
    codes = [c if ok else None for c, ok in zip(batch.codes, batch.good_code, strict=True)]
    if layer == "regions":
        _derive(
            batch,
            "level",
            [None if c is None else REGION_LEVELS_BY_LENGTH[len(c)] for c in codes],
            "level {given!r} does not match the {derived}-level code {code}",
        )
        parents = batch.columns.get("parent_code")
        derived = [None if c is None or len(c) == 6 else c[:-3] for c in codes]
        if parents is None:
            batch.columns["parent_code"] = derived
        else:
            for i, (p, c) in enumerate(zip(parents, codes, strict=True)):
                if p is None:
                    parents[i] = derived[i]
                elif c is not None and (len(p) not in (6, 9) or len(p) >= len(c) or not c.startswith(p)):
                    batch.problems.add(i, "bad_value", f"parent_code {p} is not a district or street prefix of {c}")
    elif layer == "grids":
        _derive(
            batch,
            "community_code",
            [None if c is None else c[:12] for c in codes],
            "community_code {given} does not match the first 12 digits of code {code}",
        )
        valid_to = batch.columns.get("valid_to")
        if valid_to is not None:
            valid_from = batch.columns.get("valid_from") or [None] * batch.size
            today = dt.date.today()  # the database's default for an empty valid_from
            for i, (start, end) in enumerate(zip(valid_from, valid_to, strict=True)):
                if end is not None and end < (start or today):
                    batch.problems.add(i, "bad_value", f"valid_to {end} is before valid_from {start or today}")
    elif layer == "components":
        _derive(
            batch,
            "category_code",
            [None if c is None else "C" + c[6:-6] for c in codes],
            "category_code {given} does not match the class in code {code} ({derived})",
        )
    elif layer == "units":
        await _unit_levels(conn, batch)


async def _unit_levels(conn: asyncpg.Connection, batch: Batch) -> None:
    """Level 1 ⇔ no parent; a missing level is the parent's level + 1 (parent in the file or the database)."""
    parents = batch.columns.get("parent_code") or [None] * batch.size
    batch.columns.setdefault("parent_code", parents)
    levels = batch.columns.setdefault("level", [None] * batch.size)
    if any(v is None for v in levels):
        in_file = {c: i for i, c in enumerate(batch.codes) if c is not None}
        db_levels = await repository.unit_levels(conn, sorted({p for p in parents if p is not None} - set(in_file)))

        def level_of(i: int, depth: int = 0) -> int | None:
            if levels[i] is not None or depth > 3:
                return cast(int | None, levels[i])
            parent = parents[i]
            if parent is None:
                return 1
            up = level_of(in_file[parent], depth + 1) if parent in in_file else db_levels.get(parent)
            return None if up is None else up + 1

        for i in range(batch.size):
            if levels[i] is None:
                levels[i] = level_of(i)
                known_parent = parents[i] in in_file or parents[i] in db_levels
                if levels[i] is None and known_parent:  # an unknown parent is reported as a reference
                    batch.problems.add(i, "missing_field", "level is empty and the parent unit's level is unknown")
    for i, (level, parent) in enumerate(zip(levels, parents, strict=True)):
        if level == 1 and parent is not None:
            batch.problems.add(i, "bad_value", f"a level-1 unit has no parent, but parent_code is {parent}")
        elif level is not None and level != 1 and parent is None:
            batch.problems.add(i, "bad_value", f"a level-{level} unit needs a parent_code")
        elif level is not None and level > 3:
            batch.problems.add(i, "bad_value", f"unit {parent} is level 3, the lowest: it cannot have sub-units")


async def after_references(conn: asyncpg.Connection, batch: Batch) -> None:
    """Spatial rules and defaults that need the referenced rows."""
    if batch.spec.layer == "grids":
        await _grids_in_communities(conn, batch)
    elif batch.spec.layer == "components":
        await _assign_grids(conn, batch)
        await _default_names(conn, batch)


async def _grids_in_communities(conn: asyncpg.Connection, batch: Batch) -> None:
    communities = batch.columns["community_code"]
    wanted = sorted({c for c in communities if c is not None} - batch.unknown.get("community_code", set()))
    shapes = await repository.load_communities(conn, wanted)
    idx = np.array([i for i, c in enumerate(communities) if batch.usable[i] and c in shapes], dtype=np.int64)
    if not idx.size:
        return
    pair: GeomArray = np.array([shapes[communities[i]] for i in idx.tolist()], dtype=object)
    try:
        outside, area = spatial.outside_area_m2(batch.geoms[idx], pair)
    except GEOSException:  # only reachable when geometry checks were switched off
        valid = shapely.is_valid(batch.geoms[idx]) & shapely.is_valid(pair)
        for i in idx[~valid].tolist():
            batch.problems.add(
                i, "invalid_geometry", "invalid geometry: " + str(shapely.is_valid_reason(batch.geoms[i]))
            )
        idx, pair = idx[valid], pair[valid]
        outside, area = spatial.outside_area_m2(batch.geoms[idx], pair)
    for k in np.flatnonzero((outside > spatial.MAX_OUTSIDE_M2) | (outside > spatial.MAX_OUTSIDE_SHARE * area)).tolist():
        i = int(idx[k])
        batch.problems.add(
            i,
            "crosses_community",
            f"grid crosses the boundary of community {communities[i]}: {outside[k]:,.1f} m² of its "
            f"{area[k]:,.1f} m² ({outside[k] / area[k]:.1%}) lie outside (allowed: "
            f"{spatial.MAX_OUTSIDE_M2:g} m² and {spatial.MAX_OUTSIDE_SHARE:.0%})",
        )


async def _assign_grids(conn: asyncpg.Connection, batch: Batch) -> None:
    """grid_code of the grid holding each component that has none; report components in no grid."""
    given = batch.columns.get("grid_code")
    if given is None:
        need = np.flatnonzero(batch.usable)
        given = batch.columns["grid_code"] = [None] * batch.size
    else:
        need = np.array([i for i, g in enumerate(given) if g is None and batch.usable[i]], dtype=np.int64)
    if not need.size:
        return
    points = spatial.anchor_points(batch.geoms[need])
    xs, ys = shapely.get_x(points), shapely.get_y(points)
    bounds = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    grid_codes, grid_geoms = await repository.load_grids(conn, bounds)
    found = spatial.assign_grids(points, grid_geoms)
    ok = found >= 0
    codes_arr = np.array([*grid_codes, None], dtype=object)
    assigned = codes_arr[np.where(ok, found, len(grid_codes))]
    if ok.all() and len(need) == batch.size:
        batch.columns["grid_code"] = assigned.tolist()
    else:
        for i, code in zip(need.tolist(), assigned.tolist(), strict=True):
            given[i] = code
    in_file = set(batch.referenced.get("grid_code", []))  # given in the file and known to exist
    batch.referenced["grid_code"] = sorted(in_file.union(codes_arr[np.unique(found[ok])].tolist()))
    for k in np.flatnonzero(~ok).tolist():
        batch.problems.add(
            int(need[k]),
            "outside_grids",
            f"the component at ({xs[k]:.6f} {ys[k]:.6f}) lies in no current unit grid;"
            " give its grid_code or fix its position",
        )


async def _default_names(conn: asyncpg.Connection, batch: Batch) -> None:
    """Components without a name are named after their class (the standard's default)."""
    names = batch.columns.get("name")
    categories = batch.columns["category_code"]
    if names is not None and all(v is not None for v in names):
        return
    known = await repository.category_names(conn, sorted({c for c in categories if c is not None}))
    if names is None:
        batch.columns["name"] = list(map(known.get, categories))
    else:
        for i, v in enumerate(names):
            if v is None:
                names[i] = known.get(categories[i]) if categories[i] is not None else None
