"""Tests for geo.validate: lon/lat checks, jurisdiction membership, geometry checks and bbox parsing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import shapely

from geo.errors import GeoInputError
from geo.measure import distance_m
from geo.validate import Jurisdiction, check_geometry, check_lonlat, parse_bbox

# --- check_lonlat -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat"), [(110.23, 32.22), (-180, -90), (180, 90), (0, 0), (np.float64(1.5), np.int64(2))]
)
def test_check_lonlat_accepts(lon: Any, lat: Any) -> None:
    check_lonlat(lon, lat)


@pytest.mark.parametrize(
    ("lon", "lat", "message", "field"),
    [
        (math.nan, 32.0, "longitude must be a finite number", "lon"),
        (math.inf, 32.0, "longitude must be a finite number", "lon"),
        (110.0, -math.inf, "latitude must be a finite number", "lat"),
        (110.0, math.nan, "latitude must be a finite number", "lat"),
        (200.0, 32.0, "longitude 200.0 is out of range [-180, 180]", "lon"),
        (-180.5, 32.0, "longitude -180.5 is out of range [-180, 180]", "lon"),
        (110.0, 91.0, "latitude 91.0 is out of range [-90, 90]", "lat"),
        (110.0, -90.0001, "latitude -90.0001 is out of range [-90, 90]", "lat"),
        ("110", 32.0, "longitude must be a number, got str", "lon"),
        (True, 32.0, "longitude must be a number, got bool", "lon"),
        (110.0, None, "latitude must be a number, got NoneType", "lat"),
    ],
)
def test_check_lonlat_rejects(lon: Any, lat: Any, message: str, field: str) -> None:
    with pytest.raises(GeoInputError) as exc:
        check_lonlat(lon, lat)
    assert str(exc.value) == message
    assert exc.value.field == field


def test_check_lonlat_custom_field_and_index() -> None:
    with pytest.raises(GeoInputError) as exc:
        check_lonlat(1.0, 100.0, field="location", index=7)
    assert (exc.value.field, exc.value.index) == ("location", 7)


# --- Jurisdiction -------------------------------------------------------------------------------

SHIYAN = (110.0, 32.0, 110.5, 32.5)


def east_of(lon: float, lat: float, metres: float) -> float:
    return lon + metres / (111_320.0 * math.cos(math.radians(lat)))


def test_jurisdiction_contains_and_buffer() -> None:
    j = Jurisdiction.from_bounds(*SHIYAN, buffer_m=500)
    assert j.contains(110.23, 32.22)
    assert j.contains(110.5, 32.25)  # on the edge of the area
    inside_buffer = east_of(110.5, 32.25, 450)
    outside_buffer = east_of(110.5, 32.25, 560)
    assert distance_m(110.5, 32.25, inside_buffer, 32.25) == pytest.approx(450, rel=0.01)
    assert j.contains(inside_buffer, 32.25)
    assert not j.contains(outside_buffer, 32.25)
    j.check_point(inside_buffer, 32.25)
    # The buffered bounds grow by ~500 m (≈ 0.0045° of latitude) on each side.
    _, minlat, maxlon, _ = j.bounds
    assert minlat == pytest.approx(32.0 - 500 / 111_000, abs=1e-4)
    assert maxlon == pytest.approx(east_of(110.5, 32.5, 500), abs=1e-4)


def test_jurisdiction_swapped_coordinates() -> None:
    j = Jurisdiction.from_bounds(*SHIYAN, buffer_m=500)
    with pytest.raises(GeoInputError) as exc:
        j.check_point(32.22, 110.23)
    assert "longitude and latitude look swapped" in str(exc.value)
    assert "(110.23, 32.22)" in str(exc.value)


def test_jurisdiction_outside_point_message() -> None:
    j = Jurisdiction.from_bounds(*SHIYAN, buffer_m=500)
    with pytest.raises(GeoInputError) as exc:
        j.check_point(116.4, 39.9, field="location")
    assert str(exc.value) == "point (116.4, 39.9) is outside the jurisdiction (500 m buffer)"
    assert exc.value.field == "location"


def test_jurisdiction_check_point_validates_numbers_first() -> None:
    j = Jurisdiction.from_bounds(*SHIYAN)
    with pytest.raises(GeoInputError, match="longitude must be a finite number"):
        j.check_point(math.nan, 32.2)
    with pytest.raises(GeoInputError, match=r"latitude 95\.0 is out of range"):
        j.check_point(110.2, 95.0)


def test_jurisdiction_from_polygon_without_buffer() -> None:
    tri = shapely.Polygon([(110.0, 32.0), (110.4, 32.0), (110.0, 32.4), (110.0, 32.0)])
    j = Jurisdiction(tri)
    assert j.contains(110.1, 32.1)
    assert not j.contains(110.3, 32.3)  # inside the bbox but outside the triangle
    with pytest.raises(GeoInputError, match=r"outside the jurisdiction \(0 m buffer\)"):
        j.check_point(110.3, 32.3)
    multi = shapely.MultiPolygon([tri, shapely.box(111.0, 33.0, 111.1, 33.1)])
    assert Jurisdiction(multi, 100).contains(111.05, 33.05)


def test_jurisdiction_rejects_bad_area() -> None:
    with pytest.raises(GeoInputError, match="must be a Polygon or MultiPolygon, got LineString"):
        Jurisdiction(shapely.LineString([(0, 0), (1, 1)]))
    with pytest.raises(GeoInputError, match="buffer must be a finite number"):
        Jurisdiction.from_bounds(*SHIYAN, buffer_m=-1)
    with pytest.raises(GeoInputError, match="are empty"):
        Jurisdiction.from_bounds(110.5, 32.0, 110.0, 32.5)


# --- check_geometry -----------------------------------------------------------------------------

POLYS = {"Polygon", "MultiPolygon"}


def test_check_geometry_accepts_valid_polygon() -> None:
    check_geometry(shapely.box(110.0, 32.0, 110.1, 32.1), expected=POLYS)
    check_geometry(shapely.Point(110.0, 32.0, 5.0))


def test_check_geometry_self_intersection() -> None:
    bowtie = shapely.Polygon([(110.0, 32.0), (110.1, 32.1), (110.1, 32.0), (110.0, 32.1), (110.0, 32.0)])
    with pytest.raises(GeoInputError) as exc:
        check_geometry(bowtie, expected=POLYS)
    assert str(exc.value).startswith("invalid geometry: Self-intersection[")
    assert "110.05 32.05" in str(exc.value)
    assert exc.value.field == "geometry"


def test_check_geometry_hole_outside_shell() -> None:
    poly = shapely.Polygon(
        [(110.0, 32.0), (110.1, 32.0), (110.1, 32.1), (110.0, 32.1)],
        holes=[[(110.2, 32.2), (110.3, 32.2), (110.3, 32.3), (110.2, 32.2)]],
    )
    with pytest.raises(GeoInputError, match="invalid geometry: Hole lies outside shell"):
        check_geometry(poly)


@pytest.mark.parametrize(
    ("geom", "message"),
    [
        (shapely.LineString([(110, 32), (110.1, 32.1)]), "geometry type LineString is not allowed; expected"),
        (shapely.Polygon(), "Polygon geometry is empty"),
        (None, "geometry is missing"),
        (shapely.Point(math.nan, 32.0), "geometry coordinates must be finite numbers"),
        (shapely.Point(110.0, 32.0, math.inf), "geometry coordinates must be finite numbers"),
        (shapely.box(500_000, 3_500_000, 501_000, 3_501_000), "look projected"),
        (shapely.Point(110.0, 95.0), "geometry latitude out of range at (110.0, 95.0)"),
    ],
)
def test_check_geometry_rejects(geom: Any, message: str) -> None:
    expected = POLYS if isinstance(geom, shapely.LineString) else None
    with pytest.raises(GeoInputError) as exc:
        check_geometry(geom, expected=expected, index=4)
    assert message in str(exc.value)
    assert exc.value.index == 4


# --- parse_bbox ---------------------------------------------------------------------------------


def test_parse_bbox_ok() -> None:
    assert parse_bbox("110.2,32.1,110.3,32.3") == (110.2, 32.1, 110.3, 32.3)
    assert parse_bbox(" 110.2 , 32.1 ,110.3, 32.3 ") == (110.2, 32.1, 110.3, 32.3)
    assert parse_bbox("110,32,110,32") == (110.0, 32.0, 110.0, 32.0)
    assert parse_bbox("100,20,120,40", max_span_deg=30) == (100.0, 20.0, 120.0, 40.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("110.3,32.1,110.2,32.3", "bbox min longitude 110.3 is greater than max longitude 110.2"),
        ("110.2,32.4,110.3,32.3", "bbox min latitude 32.4 is greater than max latitude 32.3"),
        ("60,30,110,30.5", "bbox spans 50.0° of longitude; at most 2.0° allowed"),
        ("110,10,110.5,40", "bbox spans 30.0° of latitude; at most 2.0° allowed"),
        ("110.2,32.1,110.3", "bbox must be 4 comma-separated numbers minlon,minlat,maxlon,maxlat; got 3 values"),
        ("1,2,3,4,5", "got 5 values"),
        ("", "got 1 value"),
        ("110.2,nan,110.3,32.3", "bbox value 'nan' is not a finite number"),
        ("110.2,32.1,inf,32.3", "bbox value 'inf' is not a finite number"),
        ("110.2,abc,110.3,32.3", "bbox value 'abc' is not a number"),
        ("110.2,32.1,110.3,", "bbox value '' is not a number"),
        ("-181,32.1,110.3,32.3", "bbox min longitude -181.0 is out of range [-180, 180]"),
        ("110.2,32.1,110.3,91", "bbox max latitude 91.0 is out of range [-90, 90]"),
    ],
)
def test_parse_bbox_errors(text: str, message: str) -> None:
    with pytest.raises(GeoInputError) as exc:
        parse_bbox(text)
    assert message in str(exc.value)
    assert exc.value.field == "bbox"
