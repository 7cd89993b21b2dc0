"""Tests for geo.sql: PostGIS expressions compile to the expected SQL with the postgresql dialect."""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ClauseElement

from geo.sql import SRID, as_geojson, dwithin_m, envelope, geography, intersects_bbox, point

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

poi = Table(
    "poi",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("geom", Geometry("POINT", srid=4326)),
)


def sql(expr: ClauseElement) -> tuple[str, dict[str, Any]]:
    compiled = expr.compile(dialect=DIALECT)
    return " ".join(str(compiled).split()), dict(compiled.params)


def literal(expr: ClauseElement) -> str:
    return " ".join(str(expr.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True})).split())


def test_srid() -> None:
    assert SRID == 4326


def test_point() -> None:
    text, params = sql(point(110.23, 32.22))
    assert text == "ST_SetSRID(ST_MakePoint(%(lon_1)s, %(lat_1)s), 4326)"
    assert params == {"lon_1": 110.23, "lat_1": 32.22}


def test_envelope() -> None:
    text, params = sql(envelope(110.2, 32.1, 110.3, 32.3))
    assert text == "ST_MakeEnvelope(%(minlon_1)s, %(minlat_1)s, %(maxlon_1)s, %(maxlat_1)s, 4326)"
    assert params == {"minlon_1": 110.2, "minlat_1": 32.1, "maxlon_1": 110.3, "maxlat_1": 32.3}


def test_intersects_bbox_uses_index_operator_and_exact_test() -> None:
    text, params = sql(intersects_bbox(poi.c.geom, (110.2, 32.1, 110.3, 32.3)))
    env = "ST_MakeEnvelope(%(minlon_1)s, %(minlat_1)s, %(maxlon_1)s, %(maxlat_1)s, 4326)"
    assert text == f"(poi.geom && {env}) AND ST_Intersects(poi.geom, {env})"
    assert params == {"minlon_1": 110.2, "minlat_1": 32.1, "maxlon_1": 110.3, "maxlat_1": 32.3}


def test_dwithin_casts_to_plain_geography() -> None:
    text, params = sql(dwithin_m(poi.c.geom, 110.23, 32.22, 500))
    assert text == (
        "ST_DWithin(CAST(poi.geom AS geography), "
        "CAST(ST_SetSRID(ST_MakePoint(%(lon_1)s, %(lat_1)s), 4326) AS geography), %(meters_1)s)"
    )
    assert params == {"lon_1": 110.23, "lat_1": 32.22, "meters_1": 500.0}


def test_geography_and_geojson() -> None:
    assert sql(geography(poi.c.geom)) == ("CAST(poi.geom AS geography)", {})
    assert sql(as_geojson(poi.c.geom)) == ("ST_AsGeoJSON(poi.geom, 7)", {})
    assert sql(as_geojson(poi.c.geom, digits=5)) == ("ST_AsGeoJSON(poi.geom, 5)", {})


def test_full_query() -> None:
    stmt = (
        select(poi.c.id, as_geojson(poi.c.geom).label("geojson"))
        .where(intersects_bbox(poi.c.geom, (110.2, 32.1, 110.3, 32.3)))
        .where(dwithin_m(poi.c.geom, 110.25, 32.2, 1000))
    )
    assert literal(stmt) == (
        "SELECT poi.id, ST_AsGeoJSON(poi.geom, 7) AS geojson FROM poi "
        "WHERE (poi.geom && ST_MakeEnvelope(110.2, 32.1, 110.3, 32.3, 4326)) "
        "AND ST_Intersects(poi.geom, ST_MakeEnvelope(110.2, 32.1, 110.3, 32.3, 4326)) "
        "AND ST_DWithin(CAST(poi.geom AS geography), "
        "CAST(ST_SetSRID(ST_MakePoint(110.25, 32.2), 4326) AS geography), 1000.0)"
    )


def test_two_points_get_distinct_parameters() -> None:
    text, params = sql(select(point(1, 2), point(3, 4)))
    assert params == {"lon_1": 1.0, "lat_1": 2.0, "lon_2": 3.0, "lat_2": 4.0}
    assert "%(lon_2)s" in text
