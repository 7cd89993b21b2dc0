"""Vectorized per-feature checks: code format and duplicates, geometry presence, type, coordinates, validity."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import shapely

from grid_mgmt.imports.layers import LayerSpec
from grid_mgmt.imports.report import Problems

GeomArray = np.ndarray[Any, np.dtype[np.object_]]

# shapely type ids
_POINT, _LINESTRING, _LINEARRING, _POLYGON, _MULTIPOINT, _MULTILINESTRING, _MULTIPOLYGON, _COLLECTION = range(8)
_TYPE_NAMES = {
    _POINT: "Point",
    _LINESTRING: "LineString",
    _LINEARRING: "LinearRing",
    _POLYGON: "Polygon",
    _MULTIPOINT: "MultiPoint",
    _MULTILINESTRING: "MultiLineString",
    _MULTIPOLYGON: "MultiPolygon",
    _COLLECTION: "GeometryCollection",
}


def check_codes(codes: list[str | None], spec: LayerSpec, problems: Problems) -> list[bool]:
    """Missing and malformed codes, and every feature whose code another feature also has.

    Returns, per feature, whether its code is present and well formed.
    """
    match = spec.code_pattern.fullmatch
    good = [c is not None and match(c) is not None for c in codes]
    if not all(good):
        for i, (code, ok) in enumerate(zip(codes, good, strict=True)):
            if code is None:
                problems.add(i, "missing_field", "code is empty")
            elif not ok:
                problems.add(i, "malformed_code", f"code {code!r} is not {spec.code_hint}")
    present = [c for c in codes if c is not None]
    if len(set(present)) == len(present):
        return good
    counts = Counter(present)
    positions: dict[str, list[int]] = defaultdict(list)
    for i, code in enumerate(codes):
        if code is not None and counts[code] > 1:
            positions[code].append(i)
    for code, where in positions.items():
        listed = ", ".join(f"#{j}" for j in where[:20]) + (" …" if len(where) > 20 else "")
        for i in where:
            problems.add(i, "duplicate_code", f"code {code} occurs {len(where)} times in the file (features {listed})")
    return good


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def normalize_geometries(
    geoms: GeomArray, spec: LayerSpec, problems: Problems, *, check: bool = True
) -> tuple[GeomArray, np.ndarray[Any, np.dtype[np.bool_]]]:
    """Geometries of the layer's type (single-part multis unwrapped, polygons promoted) with problems noted.

    Returns the geometries and a mask of those fit for spatial rules (present, right type, valid). Features
    with a problem keep their geometry in the result; the caller rejects the whole file anyway. With `check`
    False only presence and type are checked (trusted data; the database still checks validity).
    """
    out: GeomArray = np.array(geoms, dtype=object, copy=True)
    n = len(out)
    missing = shapely.is_missing(out)
    empty = np.zeros(n, dtype=bool)
    empty[~missing] = shapely.is_empty(out[~missing])
    absent = missing | empty
    if spec.geom_required:
        for i in np.flatnonzero(missing).tolist():
            problems.add(i, "missing_field", "the feature has no geometry")
        for i in np.flatnonzero(empty).tolist():
            problems.add(i, "missing_field", "the feature's geometry is empty")
    present = ~absent
    types = shapely.get_type_id(out)
    parts = np.zeros(n, dtype=np.int64)
    multi = present & np.isin(types, (_MULTIPOINT, _MULTILINESTRING, _MULTIPOLYGON, _COLLECTION))
    parts[multi] = shapely.get_num_geometries(out[multi])
    wrong = np.zeros(n, dtype=bool)
    expected = ""
    if spec.geom_kind in ("polygon", "linestring"):
        single, multi_id = (_POLYGON, _MULTIPOLYGON) if spec.geom_kind == "polygon" else (_LINESTRING, _MULTILINESTRING)
        unwrap = present & (types == multi_id) & (parts == 1)
        out[unwrap] = shapely.get_geometry(out[unwrap], 0)
        wrong = present & (types != single) & ~unwrap
        expected = _TYPE_NAMES[single] + f" (or a single-part {_TYPE_NAMES[multi_id]})"
    elif spec.geom_kind == "multipolygon":
        promote = present & (types == _POLYGON)
        if promote.any():
            idx = np.flatnonzero(promote)
            out[idx] = shapely.multipolygons(out[idx], indices=np.arange(len(idx)))
        wrong = present & ~promote & (types != _MULTIPOLYGON)
        expected = "MultiPolygon or Polygon"
    else:
        wrong = present & np.isin(types, (_LINEARRING, _COLLECTION))
        expected = "Point, LineString, Polygon or their Multi- forms"
    for i in np.flatnonzero(wrong).tolist():
        name = _TYPE_NAMES.get(int(types[i]), "unknown")
        extra = f" with {parts[i]} parts" if parts[i] > 1 else ""
        problems.add(i, "wrong_geometry_type", f"geometry is a {name}{extra}; a {spec.layer[:-1]} needs a {expected}")
    usable = present & ~wrong
    if not check:
        return out, usable
    candidates = np.flatnonzero(usable)
    bad_coords = _check_coordinates(out, candidates, problems)
    usable[bad_coords] = False
    rest = candidates[~np.isin(candidates, bad_coords)] if bad_coords.size else candidates
    if rest.size:
        valid = shapely.is_valid(out[rest])
        invalid = rest[~valid]
        if invalid.size:
            usable[invalid] = False
            reasons = shapely.is_valid_reason(out[invalid])
            for i, reason in zip(invalid.tolist(), reasons.tolist(), strict=True):
                problems.add(i, "invalid_geometry", f"invalid geometry: {reason}")
    return out, usable


def _check_coordinates(geoms: GeomArray, idx: np.ndarray[Any, Any], problems: Problems) -> np.ndarray[Any, Any]:
    """Report non-finite and out-of-range lon/lat; return the feature indices with such coordinates."""
    if not idx.size:
        return idx
    coords, owner = shapely.get_coordinates(geoms[idx], return_index=True)
    x, y = coords[:, 0], coords[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    with np.errstate(invalid="ignore"):
        in_range = finite & (np.abs(x) <= 180.0) & (np.abs(y) <= 90.0)
    if in_range.all():
        return np.empty(0, dtype=np.int64)
    bad_pos = np.flatnonzero(~in_range)
    first: dict[int, int] = {}
    for pos in bad_pos.tolist():
        first.setdefault(int(owner[pos]), pos)
    for local, pos in first.items():
        i = int(idx[local])
        if not finite[pos]:
            problems.add(i, "invalid_geometry", "coordinates must be finite numbers (found NaN or infinity)")
            continue
        hint = (
            "; the coordinates look projected, not lon/lat (wrong --crs?)"
            if max(abs(x[pos]), abs(y[pos])) > 1000
            else ""
        )
        problems.add(
            i,
            "invalid_geometry",
            f"coordinate ({_fmt(x[pos])} {_fmt(y[pos])}) is outside lon [-180, 180] / lat [-90, 90]{hint}",
        )
    return idx[np.fromiter(first.keys(), dtype=np.int64)]


def metres2_per_degree2(lat: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Square metres in one square degree at latitude `lat` on the WGS84 ellipsoid (local scale)."""
    a, e2 = 6378137.0, 0.00669437999014
    phi = np.radians(lat)
    s2 = np.sin(phi) ** 2
    m = a * (1 - e2) / (1 - e2 * s2) ** 1.5  # meridional radius of curvature
    nu = a / np.sqrt(1 - e2 * s2)  # prime vertical radius
    return np.asarray((np.pi / 180.0) ** 2 * m * nu * np.cos(phi))
