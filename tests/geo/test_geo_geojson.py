"""Tests for geo.geojson: msgspec GeoJSON structs, shapely/WKB conversion and validation messages."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
import shapely

from geo.errors import GeoInputError
from geo.geojson import (
    Feature,
    FeatureCollection,
    Geometry,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
    decode_geometry,
    encode,
    from_shapely,
    geojson_bytes_from_wkb,
    geometry_from_wkb,
    to_shapely,
    wkb_from_geometry,
)

SQUARE = [[110.0, 32.0], [110.1, 32.0], [110.1, 32.1], [110.0, 32.1], [110.0, 32.0]]
HOLE = [[110.02, 32.02], [110.02, 32.08], [110.08, 32.08], [110.08, 32.02], [110.02, 32.02]]

VALID = [
    ({"type": "Point", "coordinates": [110.23, 32.22]}, "POINT (110.23 32.22)"),
    ({"type": "Point", "coordinates": [110.23, 32.22, 150]}, "POINT Z (110.23 32.22 150)"),
    ({"type": "MultiPoint", "coordinates": [[110, 32], [111, 33]]}, "MULTIPOINT ((110 32), (111 33))"),
    ({"type": "LineString", "coordinates": [[110, 32], [111, 33]]}, "LINESTRING (110 32, 111 33)"),
    (
        {"type": "MultiLineString", "coordinates": [[[110, 32], [111, 33]], [[112, 34], [113, 35]]]},
        "MULTILINESTRING ((110 32, 111 33), (112 34, 113 35))",
    ),
    (
        {"type": "Polygon", "coordinates": [SQUARE, HOLE]},
        "POLYGON ((110 32, 110.1 32, 110.1 32.1, 110 32.1, 110 32), "
        "(110.02 32.02, 110.02 32.08, 110.08 32.08, 110.08 32.02, 110.02 32.02))",
    ),
    (
        {"type": "MultiPolygon", "coordinates": [[SQUARE], [[[111, 33], [111.1, 33], [111, 33.1], [111, 33]]]]},
        "MULTIPOLYGON (((110 32, 110.1 32, 110.1 32.1, 110 32.1, 110 32)), ((111 33, 111.1 33, 111 33.1, 111 33)))",
    ),
]


@pytest.mark.parametrize(("doc", "wkt"), VALID)
def test_decode_and_to_shapely(doc: dict[str, Any], wkt: str) -> None:
    g = decode_geometry(json.dumps(doc))
    assert type(g).__name__ == doc["type"]
    shp = to_shapely(g)
    assert shapely.equals_exact(shp, shapely.from_wkt(wkt), tolerance=0)
    # Encoding gives back the same document (numbers as floats).
    assert json.loads(encode(g)) == json.loads(json.dumps(doc))


@pytest.mark.parametrize(("doc", "wkt"), VALID)
def test_from_shapely_round_trip(doc: dict[str, Any], wkt: str) -> None:
    shp = shapely.force_2d(shapely.from_wkt(wkt))
    g = from_shapely(shp)
    assert type(g).__name__ == doc["type"]
    assert shapely.equals(to_shapely(g), shp)


def test_from_shapely_orients_rings_per_rfc7946() -> None:
    clockwise = shapely.Polygon(SQUARE[::-1], holes=[HOLE[::-1]])
    g = from_shapely(clockwise)
    assert isinstance(g, Polygon)
    exterior, hole = (shapely.LinearRing(r) for r in g.coordinates)
    assert exterior.is_ccw
    assert not hole.is_ccw


def test_from_shapely_drops_z_and_rounds() -> None:
    g = from_shapely(shapely.Point(110.123456789, 32.987654321, 50.0), precision=6)
    assert g == Point([110.123457, 32.987654])


def test_from_shapely_rejects_empty_and_collections() -> None:
    with pytest.raises(GeoInputError, match="empty Polygon"):
        from_shapely(shapely.Polygon())
    with pytest.raises(GeoInputError, match="unsupported geometry type GeometryCollection"):
        from_shapely(shapely.GeometryCollection([shapely.Point(1, 2)]))


@pytest.mark.parametrize(
    ("geom", "message"),
    [
        (Polygon([[[110, 32], [110.1, 32], [110.1, 32.1], [110, 32.1]]]), "exterior ring is not closed"),
        (Polygon([[[110, 32], [110.1, 32], [110, 32]]]), "exterior ring must have at least 4 positions, got 3"),
        (Polygon([SQUARE, HOLE[:-1]]), "polygon hole 1 is not closed"),
        (Polygon([]), "Polygon has no coordinates"),
        (MultiPolygon([[SQUARE], [SQUARE[:-1]]]), "polygon 1 exterior ring is not closed"),
        (LineString([[110, 32]]), "linestring must have at least 2 positions, got 1"),
        (MultiLineString([[[110, 32], [111, 33]], [[110, 32]]]), "line 1 must have at least 2 positions"),
        (Point([110.0]), "point must have 2 or 3 numbers, got 1"),
        (Point([110.0, 32.0, 1.0, 2.0]), "point must have 2 or 3 numbers, got 4"),
        (Point([math.nan, 32.0]), "point contains a non-finite number"),
        (Point([110.0, math.inf]), "point contains a non-finite number"),
        (Point([190.0, 32.0]), "point has longitude 190.0 outside [-180, 180]"),
        (Point([110.0, -95.0]), "point has latitude -95.0 outside [-90, 90]"),
        (MultiPoint([[110, 32], [110, 32, 5]]), "multipoint mixes 2D and 3D positions"),
        (LineString([[110, 32], [500000.0, 3500000.0]]), "linestring position 1 has longitude 500000.0"),
    ],
)
def test_to_shapely_errors(geom: Geometry, message: str) -> None:
    with pytest.raises(GeoInputError) as exc:
        to_shapely(geom)
    assert message in str(exc.value)
    assert exc.value.field == "geometry"


def test_unclosed_ring_reports_first_and_last_positions() -> None:
    with pytest.raises(GeoInputError) as exc:
        to_shapely(decode_geometry(b'{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}'))
    assert str(exc.value) == "exterior ring is not closed: first position [0.0, 0.0] != last [0.0, 1.0]"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}', "length >= 4"),
        (b'{"type":"Point","coordinates":[1]}', "length >= 2"),
        (b'{"type":"Point","coordinates":[1,2,3,4]}', "length <= 3"),
        (b'{"type":"Point","coordinates":["a","b"]}', "Expected `float`"),
        (b'{"type":"Circle","coordinates":[1,2]}', "Invalid value 'Circle'"),
        (b'{"coordinates":[1,2]}', "missing required field `type`"),
        (b'{"type":"Point"}', "missing required field `coordinates`"),
        (b'{"type":"Point","coordinates":[1,2]', "malformed JSON"),
        ("not json", "malformed JSON"),
    ],
)
def test_decode_geometry_errors(raw: bytes | str, message: str) -> None:
    with pytest.raises(GeoInputError) as exc:
        decode_geometry(raw)
    assert message in str(exc.value)
    assert exc.value.field == "geometry"


def test_feature_collection_encoding() -> None:
    fc = FeatureCollection(
        [Feature(Point([110.23, 32.22]), {"name": "十堰"}, id=7), Feature(None, {"n": 1})],
    )
    doc = json.loads(encode(fc))
    assert doc == {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [110.23, 32.22]},
                "properties": {"name": "十堰"},
                "id": 7,
            },
            {"type": "Feature", "geometry": None, "properties": {"n": 1}},
        ],
    }
    paged = json.loads(encode(FeatureCollection([], next_cursor="abc")))
    assert paged == {"type": "FeatureCollection", "features": [], "next_cursor": "abc"}


def test_feature_decoding_with_msgspec() -> None:
    raw = b'{"type":"Feature","id":"a1","properties":{"k":1},"geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]}}'
    f = msgspec.json.decode(raw, type=Feature)
    assert f == Feature(LineString([[1.0, 2.0], [3.0, 4.0]]), {"k": 1}, id="a1")
    fc = msgspec.json.decode(b'{"type":"FeatureCollection","features":[]}', type=FeatureCollection)
    assert fc.next_cursor is None


def test_json_schema_is_generated() -> None:
    schema = msgspec.json.schema(FeatureCollection)
    defs = schema["$defs"]
    assert {"Point", "Polygon", "MultiPolygon", "Feature", "FeatureCollection"} <= set(defs)
    assert defs["Point"]["properties"]["coordinates"] == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 3,
    }


def test_wkb_round_trip() -> None:
    g = Polygon([SQUARE, HOLE])
    wkb = wkb_from_geometry(g)
    assert isinstance(wkb, bytes)
    assert shapely.get_srid(shapely.from_wkb(wkb)) == 0
    assert shapely.equals_exact(shapely.from_wkb(wkb), to_shapely(g), tolerance=0)
    assert geometry_from_wkb(wkb) == g


def test_wkb_drops_z_for_storage() -> None:
    wkb = wkb_from_geometry(Point([110.0, 32.0, 99.0]))
    assert not shapely.has_z(shapely.from_wkb(wkb))


def test_wkb_validates_input() -> None:
    with pytest.raises(GeoInputError, match="not closed"):
        wkb_from_geometry(Polygon([SQUARE[:-1]]))


def test_geometry_from_postgis_ewkb_with_srid() -> None:
    ewkb = shapely.to_wkb(shapely.set_srid(shapely.Point(110.23, 32.22), 4326), include_srid=True)
    assert geometry_from_wkb(ewkb) == Point([110.23, 32.22])
    assert json.loads(geojson_bytes_from_wkb(ewkb)) == {"type": "Point", "coordinates": [110.23, 32.22]}
    assert json.loads(geojson_bytes_from_wkb(ewkb, precision=1)) == {"type": "Point", "coordinates": [110.2, 32.2]}


def test_bad_wkb() -> None:
    with pytest.raises(GeoInputError, match="invalid WKB geometry"):
        geometry_from_wkb(b"\x01\x02garbage")
