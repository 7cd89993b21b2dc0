"""Input checks for coordinates, geometries, bounding boxes and jurisdiction membership."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, Final, cast

import numpy as np
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from geo.errors import GeoInputError

__all__ = ["Jurisdiction", "check_geometry", "check_lonlat", "parse_bbox"]

_AXES: Final = {"lon": ("longitude", 180.0), "lat": ("latitude", 90.0)}


def _fmt(value: float) -> str:
    """Short, exact-looking number for messages (110.3 rather than 110.29999999999998)."""
    return repr(round(float(value), 9))


def _check_number(value: object, axis: str, *, field: str | None, index: int | None, check_range: bool = True) -> float:
    name, limit = _AXES[axis]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise GeoInputError(f"{name} must be a number, got {type(value).__name__}", field=field or axis, index=index)
    number = float(value)
    if not math.isfinite(number):
        raise GeoInputError(f"{name} must be a finite number", field=field or axis, index=index)
    if check_range and not -limit <= number <= limit:
        raise GeoInputError(
            f"{name} {_fmt(number)} is out of range [-{limit:g}, {limit:g}]", field=field or axis, index=index
        )
    return number


def check_lonlat(lon: float, lat: float, *, field: str | None = None, index: int | None = None) -> None:
    """Reject non-numbers (and bools), NaN, ±inf, lon outside [-180, 180] and lat outside [-90, 90].

    The error's ``field`` is ``field`` when given, else ``"lon"`` / ``"lat"``.
    """
    _check_number(lon, "lon", field=field, index=index)
    _check_number(lat, "lat", field=field, index=index)


class Jurisdiction:
    """The area a deployment serves: a WGS84 (Multi)Polygon grown by ``buffer_m`` metres.

    The buffer is computed in a local azimuthal equidistant projection centred on the area, so it is
    accurate to well under a metre for city- or province-sized areas. Point tests use a prepared
    geometry and take about a microsecond.
    """

    def __init__(self, area: BaseGeometry, buffer_m: float = 0.0) -> None:
        if not isinstance(area, Polygon | MultiPolygon):
            raise GeoInputError(
                f"jurisdiction must be a Polygon or MultiPolygon, got {area.geom_type}", field="jurisdiction"
            )
        if not math.isfinite(buffer_m) or buffer_m < 0:
            raise GeoInputError(f"buffer must be a finite number ≥ 0, got {buffer_m}", field="buffer_m")
        check_geometry(area, field="jurisdiction")
        self.area: BaseGeometry = area
        self.buffer_m: float = float(buffer_m)
        self.shape: BaseGeometry = _buffer_metres(area, self.buffer_m) if buffer_m > 0 else area
        shapely.prepare(self.shape)

    @classmethod
    def from_bounds(
        cls, minlon: float, minlat: float, maxlon: float, maxlat: float, buffer_m: float = 0.0
    ) -> Jurisdiction:
        """Jurisdiction covering a lon/lat rectangle (e.g. a city's extent) plus ``buffer_m`` metres."""
        check_lonlat(minlon, minlat, field="jurisdiction")
        check_lonlat(maxlon, maxlat, field="jurisdiction")
        if minlon >= maxlon or minlat >= maxlat:
            raise GeoInputError(
                f"jurisdiction bounds ({minlon}, {minlat}, {maxlon}, {maxlat}) are empty", field="jurisdiction"
            )
        return cls(box(minlon, minlat, maxlon, maxlat), buffer_m)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minlon, minlat, maxlon, maxlat) of the buffered area."""
        return cast(tuple[float, float, float, float], tuple(float(v) for v in self.shape.bounds))

    def contains(self, lon: float, lat: float) -> bool:
        """True if (lon, lat) lies inside the buffered jurisdiction (boundary included)."""
        return bool(shapely.intersects_xy(self.shape, lon, lat))

    def check_point(self, lon: float, lat: float, *, field: str | None = None, index: int | None = None) -> None:
        """Raise GeoInputError unless (lon, lat) is a valid coordinate inside the jurisdiction.

        Spots swapped axes: if (lat, lon) would be inside, the message says
        "longitude and latitude look swapped".
        """
        x = _check_number(lon, "lon", field=field, index=index, check_range=False)
        y = _check_number(lat, "lat", field=field, index=index, check_range=False)
        in_range = -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0
        if in_range and self.contains(x, y):
            return
        # Swapped axes usually also put "latitude" out of range (e.g. 110.2), so test this first.
        if -90.0 <= x <= 90.0 and -180.0 <= y <= 180.0 and self.contains(y, x):
            raise GeoInputError(
                f"point ({lon}, {lat}) is outside the jurisdiction; longitude and latitude look swapped "
                f"(did you mean ({lat}, {lon})?)",
                field=field,
                index=index,
            )
        check_lonlat(x, y, field=field, index=index)
        raise GeoInputError(
            f"point ({lon}, {lat}) is outside the jurisdiction ({self.buffer_m:g} m buffer)",
            field=field,
            index=index,
        )

    def __repr__(self) -> str:
        b = ", ".join(f"{v:.5f}" for v in self.bounds)
        return f"Jurisdiction(bounds=({b}), buffer_m={self.buffer_m:g})"


def _buffer_metres(area: BaseGeometry, buffer_m: float) -> BaseGeometry:
    """Buffer a lon/lat geometry by metres via a local azimuthal equidistant projection."""
    centre = area.centroid
    local = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 +units=m +no_defs")
    fwd = pyproj.Transformer.from_crs(4326, local, always_xy=True)
    inv = pyproj.Transformer.from_crs(local, 4326, always_xy=True)

    def project(t: pyproj.Transformer) -> Any:
        def apply(coords: np.ndarray[Any, np.dtype[np.float64]]) -> Any:
            x, y = t.transform(coords[:, 0], coords[:, 1])
            return np.column_stack([x, y])

        return apply

    grown = shapely.transform(area, project(fwd)).buffer(buffer_m, quad_segs=16)
    return cast(BaseGeometry, shapely.transform(grown, project(inv)))


def check_geometry(
    geom: BaseGeometry | None,
    *,
    expected: Iterable[str] | None = None,
    field: str = "geometry",
    index: int | None = None,
) -> None:
    """Check a WGS84 shapely geometry before storing it.

    Rejects None/empty geometries, types not in ``expected`` (e.g. ``{"Polygon", "MultiPolygon"}``),
    non-finite coordinates, lon/lat out of range and OGC-invalid geometries; for the latter the
    message is ``"invalid geometry: " + shapely.is_valid_reason(g)`` (e.g. "Self-intersection[x y]").
    """
    if geom is None or not isinstance(geom, BaseGeometry):
        raise GeoInputError("geometry is missing", field=field, index=index)
    if expected is not None:
        allowed = set(expected)
        if geom.geom_type not in allowed:
            raise GeoInputError(
                f"geometry type {geom.geom_type} is not allowed; expected {' or '.join(sorted(allowed))}",
                field=field,
                index=index,
            )
    if geom.is_empty:
        raise GeoInputError(f"{geom.geom_type} geometry is empty", field=field, index=index)
    coords = shapely.get_coordinates(geom, include_z=bool(shapely.has_z(geom)))
    if not np.isfinite(coords).all():
        raise GeoInputError("geometry coordinates must be finite numbers", field=field, index=index)
    lon, lat = coords[:, 0], coords[:, 1]
    bad_lon = np.flatnonzero(np.abs(lon) > 180.0)
    bad_lat = np.flatnonzero(np.abs(lat) > 90.0)
    if bad_lon.size or bad_lat.size:
        i = int(bad_lon[0] if bad_lon.size else bad_lat[0])
        hint = "; the coordinates look projected, not lon/lat" if max(abs(lon[i]), abs(lat[i])) > 1000 else ""
        which = "longitude" if bad_lon.size else "latitude"
        raise GeoInputError(
            f"geometry {which} out of range at ({_fmt(lon[i])}, {_fmt(lat[i])}){hint}", field=field, index=index
        )
    if not shapely.is_valid(geom):
        raise GeoInputError(f"invalid geometry: {shapely.is_valid_reason(geom)}", field=field, index=index)


def parse_bbox(text: str, *, max_span_deg: float = 2.0) -> tuple[float, float, float, float]:
    """Parse "minlon,minlat,maxlon,maxlat" (a ``bbox`` query parameter) into four floats.

    Errors (GeoInputError, field="bbox") for a wrong number of values, non-numbers, NaN/inf,
    values out of range, min > max, and boxes spanning more than ``max_span_deg`` in either axis.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise GeoInputError(
            f"bbox must be 4 comma-separated numbers minlon,minlat,maxlon,maxlat; got {len(parts)} "
            f"value{'s' if len(parts) != 1 else ''}",
            field="bbox",
        )
    values: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise GeoInputError(f"bbox value {part!r} is not a number", field="bbox") from None
        if not math.isfinite(value):
            raise GeoInputError(f"bbox value {part!r} is not a finite number", field="bbox")
        values.append(value)
    minlon, minlat, maxlon, maxlat = values
    for value, name, limit in (
        (minlon, "min longitude", 180.0),
        (maxlon, "max longitude", 180.0),
        (minlat, "min latitude", 90.0),
        (maxlat, "max latitude", 90.0),
    ):
        if not -limit <= value <= limit:
            raise GeoInputError(f"bbox {name} {_fmt(value)} is out of range [-{limit:g}, {limit:g}]", field="bbox")
    for lo, hi, axis in ((minlon, maxlon, "longitude"), (minlat, maxlat, "latitude")):
        if lo > hi:
            raise GeoInputError(f"bbox min {axis} {_fmt(lo)} is greater than max {axis} {_fmt(hi)}", field="bbox")
    for lo, hi, axis in ((minlon, maxlon, "longitude"), (minlat, maxlat, "latitude")):
        span = hi - lo
        if span > max_span_deg:
            raise GeoInputError(
                f"bbox spans {round(span, 6)}° of {axis}; at most {float(max_span_deg)}° allowed", field="bbox"
            )
    return minlon, minlat, maxlon, maxlat
