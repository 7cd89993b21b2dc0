"""RFC 7946 GeoJSON geometry/feature structs (msgspec) and conversion to/from shapely and WKB."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, TypeAlias, cast

import msgspec
import numpy as np
import shapely
import shapely.errors
import shapely.geometry as sg
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from geo.errors import GeoInputError

__all__ = [
    "Feature",
    "FeatureCollection",
    "Geometry",
    "LineString",
    "MultiLineString",
    "MultiPoint",
    "MultiPolygon",
    "Point",
    "Polygon",
    "Position",
    "decode_geometry",
    "encode",
    "from_shapely",
    "geojson_bytes_from_wkb",
    "geometry_from_wkb",
    "to_shapely",
    "wkb_from_geometry",
]

#: [lon, lat] or [lon, lat, height].
Position: TypeAlias = Annotated[list[float], msgspec.Meta(min_length=2, max_length=3)]
#: A closed ring: at least 4 positions, first == last (closure is checked by :func:`to_shapely`).
Ring: TypeAlias = Annotated[list[Position], msgspec.Meta(min_length=4)]
LinePositions: TypeAlias = Annotated[list[Position], msgspec.Meta(min_length=2)]


class Point(msgspec.Struct, tag="Point", tag_field="type"):
    """GeoJSON Point."""

    coordinates: Position


class MultiPoint(msgspec.Struct, tag="MultiPoint", tag_field="type"):
    """GeoJSON MultiPoint."""

    coordinates: list[Position]


class LineString(msgspec.Struct, tag="LineString", tag_field="type"):
    """GeoJSON LineString (≥ 2 positions)."""

    coordinates: LinePositions


class MultiLineString(msgspec.Struct, tag="MultiLineString", tag_field="type"):
    """GeoJSON MultiLineString."""

    coordinates: list[LinePositions]


class Polygon(msgspec.Struct, tag="Polygon", tag_field="type"):
    """GeoJSON Polygon: exterior ring then holes, each closed with ≥ 4 positions."""

    coordinates: list[Ring]


class MultiPolygon(msgspec.Struct, tag="MultiPolygon", tag_field="type"):
    """GeoJSON MultiPolygon."""

    coordinates: list[list[Ring]]


Geometry: TypeAlias = Point | MultiPoint | LineString | MultiLineString | Polygon | MultiPolygon


class Feature(msgspec.Struct, tag="Feature", tag_field="type", omit_defaults=True):
    """GeoJSON Feature; ``id`` is left out of the output when None."""

    geometry: Geometry | None
    properties: dict[str, Any]
    id: str | int | None = None


class FeatureCollection(msgspec.Struct, tag="FeatureCollection", tag_field="type", omit_defaults=True):
    """GeoJSON FeatureCollection with an optional ``next_cursor`` foreign member for pagination."""

    features: list[Feature]
    next_cursor: str | None = None


_encoder = msgspec.json.Encoder()
_geometry_decoder = msgspec.json.Decoder(Geometry)


def encode(obj: Any) -> bytes:
    """JSON-encode a struct (Geometry, Feature, FeatureCollection …) with msgspec."""
    return _encoder.encode(obj)


def decode_geometry(raw: bytes | str) -> Geometry:
    """Decode a GeoJSON geometry object from JSON; malformed input raises GeoInputError."""
    try:
        geom: Geometry = _geometry_decoder.decode(raw)
        return geom
    except msgspec.ValidationError as exc:
        raise GeoInputError(f"invalid GeoJSON geometry: {exc}", field="geometry") from None
    except msgspec.DecodeError as exc:
        raise GeoInputError(f"malformed JSON: {exc}", field="geometry") from None


# --- GeoJSON → shapely --------------------------------------------------------------------------


class _Checker:
    """Validates nested coordinate lists and turns them into float tuples."""

    def __init__(self, field: str, index: int | None) -> None:
        self.field = field
        self.index = index

    def fail(self, message: str) -> GeoInputError:
        return GeoInputError(message, field=self.field, index=self.index)

    def position(self, pos: Sequence[Any], where: str) -> tuple[float, ...]:
        if not isinstance(pos, Sequence) or isinstance(pos, str) or not 2 <= len(pos) <= 3:
            size = len(pos) if isinstance(pos, Sequence) else "no"
            raise self.fail(f"{where} must have 2 or 3 numbers, got {size}")
        out: list[float] = []
        for value in pos:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(f"{where} must contain numbers, got {type(value).__name__}")
            number = float(value)
            if not math.isfinite(number):
                raise self.fail(f"{where} contains a non-finite number")
            out.append(number)
        lon, lat = out[0], out[1]
        if not -180.0 <= lon <= 180.0:
            raise self.fail(f"{where} has longitude {lon} outside [-180, 180]")
        if not -90.0 <= lat <= 90.0:
            raise self.fail(f"{where} has latitude {lat} outside [-90, 90]")
        return tuple(out)

    def positions(self, seq: Sequence[Sequence[Any]], where: str) -> list[tuple[float, ...]]:
        pts = [self.position(p, f"{where} position {i}") for i, p in enumerate(seq)]
        if len({len(p) for p in pts}) > 1:
            raise self.fail(f"{where} mixes 2D and 3D positions")
        return pts

    def line(self, seq: Sequence[Sequence[Any]], where: str) -> list[tuple[float, ...]]:
        if len(seq) < 2:
            raise self.fail(f"{where} must have at least 2 positions, got {len(seq)}")
        return self.positions(seq, where)

    def ring(self, seq: Sequence[Sequence[Any]], where: str) -> list[tuple[float, ...]]:
        if len(seq) < 4:
            raise self.fail(f"{where} must have at least 4 positions, got {len(seq)}")
        pts = self.positions(seq, where)
        if pts[0][:2] != pts[-1][:2]:
            raise self.fail(f"{where} is not closed: first position {list(pts[0])} != last {list(pts[-1])}")
        return pts

    def polygon(self, rings: Sequence[Sequence[Sequence[Any]]], where: str) -> sg.Polygon:
        if len(rings) == 0:
            raise self.fail(f"{where} has no rings")
        name = "exterior ring" if where == "polygon" else f"{where} exterior ring"
        shell = self.ring(rings[0], name)
        holes = [self.ring(r, f"{where} hole {i}") for i, r in enumerate(rings[1:], start=1)]
        return sg.Polygon(shell, holes)


def to_shapely(g: Geometry, *, field: str = "geometry", index: int | None = None) -> BaseGeometry:
    """Build a shapely geometry from a GeoJSON struct, checking structure and coordinate ranges.

    Checks positions (2–3 finite numbers, lon in [-180, 180], lat in [-90, 90]), line strings
    (≥ 2 positions) and linear rings (closed, ≥ 4 positions). Topological validity (e.g.
    self-intersections) is left to :func:`geo.validate.check_geometry`.
    """
    c = _Checker(field, index)
    coords: Any = getattr(g, "coordinates", None)
    if coords is None or not isinstance(coords, list):
        raise c.fail(f"{type(g).__name__} has no coordinates")
    if isinstance(g, Point):
        return sg.Point(c.position(coords, "point"))
    if len(coords) == 0:
        raise c.fail(f"{type(g).__name__} has no coordinates")
    if isinstance(g, MultiPoint):
        return shapely.multipoints(c.positions(coords, "multipoint"))
    if isinstance(g, LineString):
        return shapely.linestrings(c.line(coords, "linestring"))
    if isinstance(g, MultiLineString):
        return sg.MultiLineString([c.line(part, f"line {i}") for i, part in enumerate(coords)])
    if isinstance(g, Polygon):
        return c.polygon(coords, "polygon")
    if isinstance(g, MultiPolygon):
        return sg.MultiPolygon([c.polygon(part, f"polygon {i}") for i, part in enumerate(coords)])
    raise c.fail(f"unsupported geometry type {type(g).__name__}")


# --- shapely → GeoJSON --------------------------------------------------------------------------


def _positions(geom: BaseGeometry, precision: int | None) -> list[list[float]]:
    xy = shapely.get_coordinates(geom)
    if precision is not None:
        xy = np.round(xy, precision)
    return cast(list[list[float]], xy.tolist())


def _rings(poly: sg.Polygon, precision: int | None) -> list[list[list[float]]]:
    poly = orient(poly, sign=1.0)  # RFC 7946: exterior counter-clockwise, holes clockwise
    return [_positions(poly.exterior, precision)] + [_positions(r, precision) for r in poly.interiors]


def from_shapely(shp: BaseGeometry, *, precision: int | None = None) -> Geometry:
    """Convert a 2D shapely geometry to a GeoJSON struct (Z is dropped; polygons are RFC-oriented).

    ``precision`` rounds coordinates to that many decimals (7 ≈ 1 cm). Empty geometries and
    GeometryCollections raise GeoInputError.
    """
    if not isinstance(shp, BaseGeometry):
        raise GeoInputError(f"expected a shapely geometry, got {type(shp).__name__}", field="geometry")
    if shp.is_empty:
        raise GeoInputError(f"cannot convert an empty {shp.geom_type} to GeoJSON", field="geometry")
    if isinstance(shp, sg.Point):
        return Point(_positions(shp, precision)[0])
    if isinstance(shp, sg.MultiPoint):
        return MultiPoint(_positions(shp, precision))
    if isinstance(shp, sg.LineString | sg.LinearRing):
        return LineString(_positions(shp, precision))
    if isinstance(shp, sg.MultiLineString):
        return MultiLineString([_positions(part, precision) for part in shp.geoms])
    if isinstance(shp, sg.Polygon):
        return Polygon(_rings(shp, precision))
    if isinstance(shp, sg.MultiPolygon):
        return MultiPolygon([_rings(part, precision) for part in shp.geoms])
    raise GeoInputError(f"unsupported geometry type {shp.geom_type}", field="geometry")


# --- WKB ----------------------------------------------------------------------------------------


def _load_wkb(b: bytes) -> BaseGeometry:
    try:
        geom = shapely.from_wkb(b)
    except (shapely.errors.GEOSException, TypeError, ValueError) as exc:
        raise GeoInputError(f"invalid WKB geometry: {exc}", field="geometry") from None
    if geom is None:
        raise GeoInputError("invalid WKB geometry: empty input", field="geometry")
    return cast(BaseGeometry, geom)


def geometry_from_wkb(b: bytes) -> Geometry:
    """Convert (E)WKB bytes, e.g. from PostGIS, to a GeoJSON struct."""
    return from_shapely(_load_wkb(bytes(b)))


def wkb_from_geometry(g: Geometry) -> bytes:
    """Validate a GeoJSON struct (see :func:`to_shapely`) and return 2D ISO WKB without SRID."""
    geom = to_shapely(g)
    return cast(bytes, shapely.to_wkb(geom, hex=False, output_dimension=2, include_srid=False))


def geojson_bytes_from_wkb(b: bytes, *, precision: int | None = None) -> bytes:
    """Encode (E)WKB bytes straight to GeoJSON geometry JSON bytes."""
    return _encoder.encode(from_shapely(_load_wkb(bytes(b)), precision=precision))
