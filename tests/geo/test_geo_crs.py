"""Tests for geo.crs (WGS84/GCJ-02/BD-09, EPSG reprojection), geo.measure and geo.errors."""

from __future__ import annotations

import pickle

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geo.crs import (
    CRS_NAMES,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    distance_m,
    from_wgs84,
    from_wgs84_array,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometry_from_wgs84,
    geometry_to_wgs84,
    normalize_crs,
    out_of_china,
    reprojector,
    to_wgs84,
    to_wgs84_array,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.errors import GeoInputError
from geo.measure import area_m2, length_m

china_lon = st.floats(min_value=72.004, max_value=137.8347, allow_nan=False)
china_lat = st.floats(min_value=0.8293, max_value=55.8271, allow_nan=False)


def test_error_attributes_and_pickle() -> None:
    err = GeoInputError("bad bbox", field="bbox", index=3)
    assert isinstance(err, ValueError)
    assert (str(err), err.message, err.field, err.index) == ("bad bbox", "bad bbox", "bbox", 3)
    again = pickle.loads(pickle.dumps(err))
    assert (again.message, again.field, again.index) == ("bad bbox", "bbox", 3)
    assert GeoInputError("x").field is None


def test_wgs84_to_gcj02_known_value_tiananmen() -> None:
    lon, lat = wgs84_to_gcj02(116.397428, 39.90923)
    assert lon == pytest.approx(116.403669, abs=1e-5)
    assert lat == pytest.approx(39.910629, abs=1e-5)


def test_known_values_from_reference_implementation() -> None:
    # Values published by wandergis/coordTransform for (116.404, 39.915).
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-9)
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-9)
    # The reference inverses are one-step approximations; ours iterate, so compare loosely.
    assert gcj02_to_wgs84(116.404, 39.915) == pytest.approx((116.39775550083061, 39.91359571849836), abs=1e-5)
    assert bd09_to_gcj02(116.404, 39.915) == pytest.approx((116.39762729119315, 39.90865673957631), abs=1e-5)


def test_gcj02_offset_is_a_few_hundred_metres_in_beijing() -> None:
    lon, lat = wgs84_to_gcj02(116.397428, 39.90923)
    assert 300 < distance_m(116.397428, 39.90923, lon, lat) < 700
    blon, blat = wgs84_to_bd09(116.397428, 39.90923)
    assert 800 < distance_m(116.397428, 39.90923, blon, blat) < 1500


@pytest.mark.parametrize(("lon", "lat"), [(2.3522, 48.8566), (139.6917, 35.6895), (-74.006, 40.7128), (72.0, 30.0)])
def test_gcj02_is_identity_outside_china(lon: float, lat: float) -> None:
    assert out_of_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_out_of_china_box_edges() -> None:
    assert not out_of_china(72.004, 0.8293)
    assert not out_of_china(137.8347, 55.8271)
    assert out_of_china(72.0039, 30.0)
    assert out_of_china(110.0, 55.83)


def test_gcj02_inverse_converges_below_1e9_degrees() -> None:
    glon, glat = 110.2341234, 32.2212345
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    back = wgs84_to_gcj02(wlon, wlat)
    assert abs(back[0] - glon) < 1e-9 and abs(back[1] - glat) < 1e-9
    blon, blat = 110.2341234, 32.2212345
    g = bd09_to_gcj02(blon, blat)
    b2 = gcj02_to_bd09(*g)
    assert abs(b2[0] - blon) < 1e-9 and abs(b2[1] - blat) < 1e-9


@settings(max_examples=300, deadline=None, database=None)
@given(lon=china_lon, lat=china_lat)
@example(lon=72.004, lat=36.0)
@example(lon=72.004, lat=0.8293)
@example(lon=137.8347, lat=55.8271)
@example(lon=116.397428, lat=39.90923)
def test_round_trip_gcj02_within_half_metre(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert distance_m(lon, lat, *back) < 0.5


@settings(max_examples=300, deadline=None, database=None)
@given(lon=china_lon, lat=china_lat)
@example(lon=72.004, lat=36.0)
@example(lon=72.004, lat=0.8293)
@example(lon=137.8347, lat=55.8271)
@example(lon=116.397428, lat=39.90923)
def test_round_trip_bd09_within_half_metre(lon: float, lat: float) -> None:
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert distance_m(lon, lat, *back) < 0.5
    via_names = to_wgs84(*from_wgs84(lon, lat, "bd09"), "BD-09")
    assert distance_m(lon, lat, *via_names) < 0.5


@settings(max_examples=100, deadline=None, database=None)
@given(lon=china_lon, lat=china_lat)
def test_vectorised_matches_scalar(lon: float, lat: float) -> None:
    for crs in ("gcj02", "bd09"):
        x, y = from_wgs84_array([lon], [lat], crs)
        assert (float(x[0]), float(y[0])) == pytest.approx(from_wgs84(lon, lat, crs), abs=1e-12)
        bx, by = to_wgs84_array(x, y, crs)
        assert (float(bx[0]), float(by[0])) == pytest.approx(to_wgs84(float(x[0]), float(y[0]), crs), abs=1e-9)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("WGS84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("4326", "wgs84"),
        ("cgcs2000", "wgs84"),
        ("EPSG:4490", "wgs84"),
        ("gcj-02", "gcj02"),
        ("GCJ02", "gcj02"),
        ("bd-09", "bd09"),
        (" Bd09 ", "bd09"),
    ],
)
def test_crs_aliases(alias: str, expected: str) -> None:
    assert normalize_crs(alias) == expected
    assert expected in CRS_NAMES
    assert to_wgs84(*from_wgs84(110.23, 32.22, alias), alias) == pytest.approx((110.23, 32.22), abs=1e-9)


def test_wgs84_aliases_are_identity() -> None:
    assert to_wgs84(110.23, 32.22, "EPSG:4490") == (110.23, 32.22)
    assert from_wgs84(110.23, 32.22, "cgcs2000") == (110.23, 32.22)


def test_unknown_crs_message() -> None:
    with pytest.raises(GeoInputError) as exc:
        to_wgs84(1.0, 2.0, "x")
    assert str(exc.value) == "unknown crs 'x'; use one of wgs84, gcj02, bd09"
    assert exc.value.field == "crs"
    with pytest.raises(GeoInputError, match="unknown crs 'EPSG:3857'"):
        from_wgs84(1.0, 2.0, "EPSG:3857")


def test_convert_between_gcj02_and_bd09() -> None:
    assert convert(116.404, 39.915, "gcj02", "bd09") == pytest.approx(gcj02_to_bd09(116.404, 39.915), abs=1e-9)
    assert convert(116.404, 39.915, "bd09", "bd09") == (116.404, 39.915)


def test_geometry_conversion_moves_every_vertex() -> None:
    poly = shapely.box(110.2, 32.2, 110.3, 32.3)
    gcj = geometry_from_wgs84(poly, "gcj02")
    for (x, y), (gx, gy) in zip(poly.exterior.coords, gcj.exterior.coords, strict=True):
        assert (gx, gy) == pytest.approx(wgs84_to_gcj02(x, y), abs=1e-12)
    back = geometry_to_wgs84(gcj, "gcj02")
    assert shapely.get_coordinates(back) == pytest.approx(shapely.get_coordinates(poly), abs=1e-9)
    assert geometry_to_wgs84(poly, "wgs84") is poly


def test_reprojector_utm49n_central_meridian() -> None:
    pt = reprojector(32649)(shapely.Point(500000.0, 3565000.0))
    assert pt.x == pytest.approx(111.0, abs=1e-9)
    assert pt.y == pytest.approx(32.2216107, abs=1e-6)


@pytest.mark.parametrize("epsg", [4547, 4546, 32649])
def test_reprojector_round_trips_pyproj(epsg: int) -> None:
    fwd = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = fwd.transform(110.23, 32.22)
    line = reprojector(epsg)(shapely.LineString([(x, y), (x + 1000.0, y + 1000.0)]))
    assert line.coords[0] == pytest.approx((110.23, 32.22), abs=1e-9)
    # 1000 m east and north is ~1414 m away (grid scale factor ≈ 1).
    assert distance_m(*line.coords[0], *line.coords[1]) == pytest.approx(1414.2, rel=2e-3)


@pytest.mark.parametrize("epsg", [4326, 4490])
def test_reprojector_identity(epsg: int) -> None:
    pt = shapely.Point(110.23, 32.22)
    assert reprojector(epsg)(pt) is pt


@pytest.mark.parametrize("epsg", [999999, 0, -5])
def test_reprojector_unknown_epsg(epsg: int) -> None:
    with pytest.raises(GeoInputError) as exc:
        reprojector(epsg)
    assert str(exc.value) == f"unknown EPSG code {epsg}"


def test_reprojector_rejects_vertical_crs() -> None:
    with pytest.raises(GeoInputError, match="not a horizontal coordinate system"):
        reprojector(5773)


def test_reprojector_on_arrays() -> None:
    fwd = pyproj.Transformer.from_crs(4326, 4547, always_xy=True)
    x, y = fwd.transform(np.array([110.23, 110.3]), np.array([32.22, 32.25]))
    out = reprojector(4547)(shapely.points(x, y))
    assert shapely.get_coordinates(out) == pytest.approx(np.array([[110.23, 32.22], [110.3, 32.25]]), abs=1e-9)


def test_distance_and_measures() -> None:
    assert distance_m(110.0, 32.0, 110.0, 33.0) == pytest.approx(111195.08, abs=0.01)
    assert distance_m(110.0, 32.0, 110.0, 32.0) == 0.0
    assert distance_m(0.0, 0.0, 180.0, 0.0) == pytest.approx(20015114.4, rel=1e-6)
    line = shapely.LineString([(110.0, 32.0), (110.0, 33.0)])
    assert length_m(line) == pytest.approx(110_900, rel=2e-3)  # ellipsoidal metres per degree at 32.5°N
    square = shapely.box(110.0, 32.0, 110.01, 32.01)
    assert area_m2(square) == pytest.approx(0.01 * 110_900 * 0.01 * 94_000, rel=0.01)
    assert area_m2(shapely.Point(1, 1)) == 0.0
