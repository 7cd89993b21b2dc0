"""SQLAlchemy/PostGIS expression helpers for SRID-4326 geometry columns (no database needed to build)."""

from __future__ import annotations

from typing import Any, Final

from geoalchemy2 import Geography
from sqlalchemy import Float, Integer, String, and_, bindparam, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "SRID",
    "as_geojson",
    "dwithin_m",
    "envelope",
    "geography",
    "intersects_bbox",
    "point",
]

#: Storage SRID of every geometry column (WGS84 lon/lat).
SRID: Final = 4326

# Plain ``geography`` (no typmod) so ``CAST(geom AS geography)`` matches a functional index built on
# ``(geom::geography)``; geoalchemy2 would otherwise render ``geography(GEOMETRY,-1)``.
_GEOGRAPHY: Final = Geography(geometry_type=None, spatial_index=False)

Bbox = tuple[float, float, float, float]


def _srid() -> ColumnElement[int]:
    # Inline constant: keeps the SQL readable and the SRID out of the parameter list.
    return literal_column(str(SRID), Integer)


def _num(name: str, value: float) -> ColumnElement[float]:
    return bindparam(name, float(value), type_=Float, unique=True)


def point(lon: float, lat: float) -> ColumnElement[Any]:
    """``ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)`` with bound parameters."""
    return func.ST_SetSRID(func.ST_MakePoint(_num("lon", lon), _num("lat", lat)), _srid())


def envelope(minlon: float, minlat: float, maxlon: float, maxlat: float) -> ColumnElement[Any]:
    """``ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)`` with bound parameters."""
    return func.ST_MakeEnvelope(
        _num("minlon", minlon), _num("minlat", minlat), _num("maxlon", maxlon), _num("maxlat", maxlat), _srid()
    )


def intersects_bbox(col: ColumnElement[Any], bbox: Bbox) -> ColumnElement[bool]:
    """``col && envelope AND ST_Intersects(col, envelope)``: GiST-index friendly bbox filter.

    ``bbox`` is (minlon, minlat, maxlon, maxlat), e.g. from :func:`geo.validate.parse_bbox`.
    """
    env = envelope(*bbox)
    return and_(col.op("&&", is_comparison=True)(env), func.ST_Intersects(col, env))


def geography(col: ColumnElement[Any]) -> ColumnElement[Any]:
    """``CAST(col AS geography)``, i.e. ``col::geography`` (distances in metres on the ellipsoid)."""
    return cast(col, _GEOGRAPHY)


def dwithin_m(col: ColumnElement[Any], lon: float, lat: float, meters: float) -> ColumnElement[bool]:
    """``ST_DWithin(col::geography, point::geography, :meters)``: within ``meters`` of (lon, lat).

    To be index-assisted the table needs a functional GiST index on the geography cast, e.g.
    ``CREATE INDEX ix_case_geog ON "case" USING gist ((geom::geography));`` — a plain index on
    ``geom`` is not used for geography distance tests.
    """
    return func.ST_DWithin(geography(col), geography(point(lon, lat)), _num("meters", meters))


def as_geojson(col: ColumnElement[Any], digits: int = 7) -> ColumnElement[str]:
    """``ST_AsGeoJSON(col, digits)`` returning text (7 digits ≈ 1 cm)."""
    return func.ST_AsGeoJSON(col, literal_column(str(int(digits)), Integer), type_=String)
