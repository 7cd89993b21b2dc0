"""Load GeoJSON, Shapefile (.shp/.zip), GeoPackage and CSV files into WGS84 shapely geometries."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from geo._readers import CSV_SUFFIXES, GIS_SUFFIXES, SUPPORTED, RawLayer, cannot_read, read_csv, read_gis, unpacked
from geo.crs import WGS84_EPSG, check_epsg, transformer_to_wgs84
from geo.errors import GeoInputError

__all__ = ["LoadedColumns", "LoadedFeature", "LoadedLayer", "read_file", "read_layer"]

ObjectArray = npt.NDArray[np.object_]
BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[int], None]
Validity = Literal["skip", "report", "repair"]

_CHUNK: Final = 200_000


@dataclass
class LoadedFeature:
    """One feature: 0-based position in the file, attributes, WGS84 geometry, or why it is unusable."""

    index: int
    properties: dict[str, Any]
    geometry: BaseGeometry | None
    error: str | None


@dataclass
class LoadedLayer:
    """A whole file as a list of features (convenient for small files)."""

    path: str
    driver: str
    source_epsg: int
    fields: list[str]
    features: list[LoadedFeature]


@dataclass
class LoadedColumns:
    """A whole file in columnar form (fast for big files).

    ``geometries[i]`` is a WGS84 shapely geometry, or None exactly when ``i in errors``;
    ``columns[name]`` is a numpy array (GIS formats) or a list of str/None (CSV) of length ``count``.
    """

    path: str
    driver: str
    source_epsg: int
    fields: list[str]
    geometries: ObjectArray
    columns: dict[str, Any]
    errors: dict[int, str]
    count: int

    @property
    def ok_mask(self) -> BoolArray:
        """True for features with a usable geometry."""
        missing: BoolArray = shapely.is_missing(self.geometries)
        return ~missing

    @property
    def ok_count(self) -> int:
        """Number of features with a usable geometry."""
        return self.count - len(self.errors)

    def properties(self, i: int) -> dict[str, Any]:
        """Attributes of feature ``i`` as plain Python values (NaN/NaT become None)."""
        return {name: _py(_item(col, i)) for name, col in self.columns.items()}

    def iter_features(self) -> Iterator[LoadedFeature]:
        """Yield every feature in file order (converts each column to Python values once)."""
        lists = [(name, col.tolist() if isinstance(col, np.ndarray) else col) for name, col in self.columns.items()]
        for i in range(self.count):
            props = {name: _py(values[i]) for name, values in lists}
            yield LoadedFeature(i, props, self.geometries[i], self.errors.get(i))

    def to_layer(self) -> LoadedLayer:
        """Convert to the row-oriented :class:`LoadedLayer`."""
        return LoadedLayer(self.path, self.driver, self.source_epsg, list(self.fields), list(self.iter_features()))


def _item(col: Any, i: int) -> Any:
    value = col[i]
    return value.item() if isinstance(value, np.generic) else value


def _py(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def read_file(
    path: str | Path,
    *,
    crs: int | None = None,
    wkt_column: str | None = None,
    progress: Progress | None = None,
    layer: str | int | None = None,
    encoding: str | None = None,
    check_valid: bool = False,
    make_valid: bool = False,
) -> LoadedColumns:
    """Read a vector file and return its features reprojected to WGS84 (EPSG:4326).

    Formats: GeoJSON (.geojson/.json), Shapefile (.shp, or a .zip holding one), GeoPackage (.gpkg),
    FlatGeobuf (.fgb) and CSV with a WKT column (wkt/geometry/geom, or ``wkt_column``; EWKT
    ``SRID=n;`` prefixes are honoured) or lon/lat columns (lon/lat, lng/lat, x/y, 经度/纬度).

    The source CRS is read from the file; ``crs`` (an EPSG code) overrides it, and a file without a
    CRS is assumed to be EPSG:4326. Coordinates that cannot be lon/lat after reprojection (e.g.
    metres in a file declared EPSG:4326) raise GeoInputError, as do unreadable files and unknown
    EPSG codes. Problems with single features (missing/empty/unparsable geometry, non-finite or
    out-of-range coordinates) are collected in ``errors`` instead. OGC validity is left to the caller
    unless ``check_valid=True`` (then "invalid geometry: Self-intersection[x y]" etc. go into
    ``errors``) or ``make_valid=True`` (invalid geometries are repaired with ``shapely.make_valid``).
    Z values are dropped. ``progress(n)`` is called with the number of features processed so far.
    """
    if crs is not None:
        check_epsg(crs)
    # Non-finite coordinates are reported per feature, so silence numpy/shapely "invalid value" warnings.
    with _gc_paused(), np.errstate(invalid="ignore"):
        validity: Validity = "repair" if make_valid else "report" if check_valid else "skip"
        return _read(Path(path), crs, wkt_column, progress, layer, encoding, validity)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: building millions of small objects otherwise triggers it constantly."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read(
    p: Path,
    crs: int | None,
    wkt_column: str | None,
    progress: Progress | None,
    layer: str | int | None,
    encoding: str | None,
    validity: Validity,
) -> LoadedColumns:
    suffix = p.suffix.lower()
    if not p.exists():
        raise cannot_read(p, "no such file")
    if suffix in CSV_SUFFIXES:
        raw = read_csv(p, p, wkt_column=wkt_column, encoding=encoding, progress=progress)
    elif suffix in GIS_SUFFIXES or suffix == ".zip":
        with unpacked(p) as real:
            raw = read_gis(real, p, layer=layer, encoding=encoding)
    else:
        raise cannot_read(p, f"unsupported file type {suffix or '(none)'!r}; use {SUPPORTED}")
    epsg, origin = _source_epsg(raw, crs, p)
    geoms, errors = _finish(raw, epsg, origin, validity=validity, progress=progress)
    return LoadedColumns(str(p), raw.driver, epsg, raw.fields, geoms, raw.columns, errors, len(geoms))


def read_layer(path: str | Path, **kwargs: Any) -> LoadedLayer:
    """Like :func:`read_file` (same keyword arguments) but as a list of :class:`LoadedFeature`."""
    return read_file(path, **kwargs).to_layer()


# --- CRS ----------------------------------------------------------------------------------------


def _source_epsg(raw: RawLayer, crs: int | None, path: Path) -> tuple[int, str]:
    """EPSG code to reproject from, plus how we got it (for error messages)."""
    if crs is not None:
        return int(crs), f"the CRS given is EPSG:{crs}"
    text = raw.crs_text
    if not text:
        return WGS84_EPSG, f"the file has no CRS, so EPSG:{WGS84_EPSG} was assumed"
    if text.upper().startswith("EPSG:") and text[5:].isdigit():
        code = int(text[5:])
    else:
        try:
            found = pyproj.CRS.from_user_input(text).to_epsg(min_confidence=70)
        except CRSError:
            found = None
        if found is None:
            name = text.split('"')[1] if text.count('"') >= 2 else text[:60]
            raise GeoInputError(
                f"cannot identify the CRS of {path.name} ({name}); pass --crs with the right EPSG code",
                field="crs",
            )
        code = found
    check_epsg(code)
    return code, f"the file's CRS is EPSG:{code}"


# --- validation and reprojection ----------------------------------------------------------------


def _finish(
    raw: RawLayer, epsg: int, origin: str, *, validity: Validity, progress: Progress | None
) -> tuple[ObjectArray, dict[int, str]]:
    geoms = raw.geometries
    errors = raw.errors
    n = len(geoms)
    missing = shapely.is_missing(geoms)
    _add(errors, missing, "missing geometry")
    _add(errors, shapely.is_empty(geoms) & ~missing, "empty geometry")
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    finite = np.isfinite(coords).all(axis=1)
    _add(errors, _owners(owner[~finite], n), "coordinates must be finite numbers")

    usable = _usable(n, errors)
    keep = usable[owner] & finite  # coordinates of usable features
    _check_plausible(coords[keep], owner[keep], epsg, origin, errors, usable)

    out: ObjectArray = geoms.copy()
    out[~_usable(n, errors)] = None
    transformer = transformer_to_wgs84(epsg)
    for start in range(0, n, _CHUNK):
        part = out[start : start + _CHUNK]
        if transformer is not None:
            part = shapely.transform(part, _project(transformer))
            out[start : start + _CHUNK] = part
        if progress is not None:
            progress(min(n, start + _CHUNK))
    if transformer is not None:
        _check_reprojected(out, raw, epsg, origin, errors)
    if validity != "skip":
        _check_valid(out, errors, repair=validity == "repair")
    if errors:
        out[np.fromiter(errors.keys(), dtype=np.intp, count=len(errors))] = None
    if progress is not None and n == 0:
        progress(0)
    return out, dict(sorted(errors.items()))


def _project(transformer: pyproj.Transformer) -> Callable[[Any], Any]:
    def apply(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = transformer.transform(xy[:, 0], xy[:, 1], errcheck=False)
        return np.column_stack([x, y])

    return apply


def _add(errors: dict[int, str], mask_or_idx: npt.NDArray[Any], message: str) -> None:
    idx = np.flatnonzero(mask_or_idx) if mask_or_idx.dtype == np.bool_ else mask_or_idx
    for i in idx.tolist():
        errors.setdefault(i, message)


def _owners(owner_idx: npt.NDArray[np.intp], n: int) -> npt.NDArray[np.intp]:
    """Sorted distinct feature indices owning the given coordinates (O(n), no sort)."""
    mask = np.zeros(n, dtype=bool)
    mask[owner_idx] = True
    return np.flatnonzero(mask)


def _usable(n: int, errors: dict[int, str]) -> BoolArray:
    ok = np.ones(n, dtype=bool)
    if errors:
        ok[np.fromiter(errors.keys(), dtype=np.intp, count=len(errors))] = False
    return ok


def _xy(x: float, y: float) -> str:
    return f"x={x:.1f}, y={y:.1f}" if max(abs(x), abs(y)) >= 1000 else f"x={x:.6g}, y={y:.6g}"


def _check_plausible(
    xy: npt.NDArray[np.float64],
    owner: npt.NDArray[np.intp],
    epsg: int,
    origin: str,
    errors: dict[int, str],
    usable: BoolArray,
) -> None:
    """Catch a wrong CRS before reprojecting: metres declared as degrees, or degrees as metres."""
    n_usable = int(usable.sum())
    if n_usable == 0:
        return
    out_of_range = (np.abs(xy[:, 0]) > 180.0) | (np.abs(xy[:, 1]) > 90.0)
    geographic = check_epsg(epsg).is_geographic
    if geographic:
        bad = _owners(owner[out_of_range], len(usable))
        if bad.size == 0:
            return
        first = int(np.flatnonzero(out_of_range)[0])
        x, y = float(xy[first, 0]), float(xy[first, 1])
        if bad.size * 2 > n_usable:
            swapped = bool((np.abs(xy[out_of_range, 0]) <= 90.0).all() & (np.abs(xy[out_of_range, 1]) <= 180.0).all())
            if swapped:
                raise GeoInputError(
                    f"coordinates look like (latitude, longitude) with the axes swapped ({_xy(x, y)}); "
                    "longitude must come first",
                    field="crs",
                )
            raise GeoInputError(
                f"coordinates look projected ({_xy(x, y)}) but {origin}; pass --crs with the right EPSG code",
                field="crs",
            )
        for i in bad.tolist():
            errors.setdefault(i, "coordinates out of longitude/latitude range")
        return
    # Projected CRS: if (nearly) every feature lies within ±180/±90 these are degrees, not metres.
    degree_like = n_usable - _owners(owner[out_of_range], len(usable)).size
    if degree_like * 2 > n_usable and xy.size:
        first = int(np.flatnonzero(~out_of_range)[0])
        x, y = float(xy[first, 0]), float(xy[first, 1])
        raise GeoInputError(
            f"coordinates look like longitude/latitude degrees ({_xy(x, y)}) but {origin}, "
            "a projected CRS in metres; pass --crs 4326 (or the right EPSG code)",
            field="crs",
        )


def _check_reprojected(out: ObjectArray, raw: RawLayer, epsg: int, origin: str, errors: dict[int, str]) -> None:
    """After reprojection every coordinate must be a finite lon/lat; else the CRS is probably wrong."""
    coords, owner = shapely.get_coordinates(out, return_index=True)
    bad_pt = ~np.isfinite(coords).all(axis=1) | (np.abs(coords[:, 0]) > 180.0) | (np.abs(coords[:, 1]) > 90.0)
    if not bad_pt.any():
        return
    bad = _owners(owner[bad_pt], len(out))
    n_usable = len(out) - len(errors)
    if bad.size * 2 > n_usable:
        first = int(bad[0])
        src = shapely.get_coordinates(raw.geometries[first])
        x, y = (float(src[0, 0]), float(src[0, 1])) if len(src) else (math.nan, math.nan)
        raise GeoInputError(
            f"coordinates cannot be reprojected to longitude/latitude ({_xy(x, y)}) but {origin}; "
            "pass --crs with the right EPSG code",
            field="crs",
        )
    for i in bad.tolist():
        errors.setdefault(i, f"coordinates cannot be reprojected from EPSG:{epsg}")


def _check_valid(out: ObjectArray, errors: dict[int, str], *, repair: bool) -> None:
    present = ~shapely.is_missing(out)
    invalid = np.flatnonzero(present & ~shapely.is_valid(out))
    if invalid.size == 0:
        return
    if repair:
        out[invalid] = shapely.make_valid(out[invalid])
        return
    reasons = shapely.is_valid_reason(out[invalid])
    for i, reason in zip(invalid.tolist(), reasons.tolist(), strict=True):
        errors.setdefault(i, f"invalid geometry: {reason}")
