"""Tests for geo.loaders: GeoJSON/Shapefile/GeoPackage/CSV reading, reprojection and error reporting."""

from __future__ import annotations

import math
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely

from geo.errors import GeoInputError
from geo.loaders import LoadedColumns, LoadedFeature, read_file, read_layer
from geo.measure import area_m2

Writer = Callable[..., Path]
Project = Callable[[Any, int], np.ndarray[Any, Any]]


def coords(lc: LoadedColumns) -> np.ndarray[Any, Any]:
    xy: np.ndarray[Any, Any] = shapely.get_coordinates(lc.geometries)
    return xy


def fields_for(sample: Any) -> dict[str, np.ndarray[Any, Any]]:
    return {
        "n": np.arange(len(sample.lon), dtype=np.int64),
        "name": np.array(sample.names, dtype=object),
    }


@pytest.mark.parametrize("epsg", [4547, 4546, 32649])
@pytest.mark.parametrize(("ext", "driver"), [("geojson", "GeoJSON"), ("shp", "ESRI Shapefile"), ("gpkg", "GPKG")])
def test_points_are_reprojected_to_wgs84(
    ext: str, driver: str, epsg: int, sample: Any, project: Project, write_layer: Writer
) -> None:
    projected = project(sample.points, epsg)
    assert shapely.get_coordinates(projected)[0, 0] > 1000  # really metres
    path = write_layer(f"pts.{ext}", projected, crs=f"EPSG:{epsg}", fields=fields_for(sample), geometry_type="Point")
    lc = read_file(path)
    assert (lc.driver, lc.source_epsg, lc.count, lc.errors) == (driver, epsg, 4, {})
    assert lc.fields == ["n", "name"]
    assert lc.path == str(path)
    np.testing.assert_allclose(coords(lc), np.column_stack([sample.lon, sample.lat]), atol=1e-8)
    assert [lc.properties(i)["name"] for i in range(4)] == ["十堰", "茅箭区", "张湾区", None]
    assert lc.properties(2)["n"] == 2
    assert lc.ok_mask.tolist() == [True] * 4


def test_polygon_layer_from_cgcs2000_gk(project: Project, write_layer: Writer) -> None:
    wgs = shapely.box(110.20, 32.20, 110.21, 32.21)
    path = write_layer("poly.gpkg", project([wgs], 4547), crs="EPSG:4547", geometry_type="Polygon")
    lc = read_file(path)
    assert lc.source_epsg == 4547
    poly = lc.geometries[0]
    assert poly.geom_type == "Polygon"
    np.testing.assert_allclose(shapely.get_coordinates(poly), shapely.get_coordinates(wgs), atol=1e-8)
    assert area_m2(poly) == pytest.approx(area_m2(wgs), rel=1e-6)


@pytest.mark.parametrize("epsg", [4326, 4490])
def test_geographic_files_are_kept(epsg: int, sample: Any, write_layer: Writer) -> None:
    lc = read_file(write_layer("g.gpkg", sample.points, crs=f"EPSG:{epsg}"))
    assert lc.source_epsg == epsg
    np.testing.assert_array_equal(coords(lc), np.column_stack([sample.lon, sample.lat]))


def test_crs_argument_overrides_file(sample: Any, project: Project, write_layer: Writer) -> None:
    # Projected coordinates in a file that claims EPSG:4326: the classic wrong-SRID upload.
    path = write_layer("wrong.gpkg", project(sample.points, 4547), crs="EPSG:4326")
    with pytest.raises(GeoInputError) as exc:
        read_file(path)
    assert "coordinates look projected (x=" in str(exc.value)
    assert "but the file's CRS is EPSG:4326; pass --crs with the right EPSG code" in str(exc.value)
    assert exc.value.field == "crs"
    lc = read_file(path, crs=4547)
    assert lc.source_epsg == 4547
    np.testing.assert_allclose(coords(lc), np.column_stack([sample.lon, sample.lat]), atol=1e-8)


def test_projected_coordinates_in_plain_geojson(write_geojson: Writer) -> None:
    path = write_geojson("metres.geojson", [_pt(500123.0, 3565432.0), _pt(500200.0, 3565500.0)])
    with pytest.raises(GeoInputError) as exc:
        read_file(path)
    assert str(exc.value) == (
        "coordinates look projected (x=500123.0, y=3565432.0) but the file's CRS is EPSG:4326; "
        "pass --crs with the right EPSG code"
    )


def test_projected_csv_without_crs(write_text: Writer) -> None:
    path = write_text("m.csv", "id,wkt\n1,POINT (500123 3565432)\n")
    with pytest.raises(GeoInputError, match="the file has no CRS, so EPSG:4326 was assumed"):
        read_file(path)
    lc = read_file(path, crs=32649)
    assert lc.geometries[0].x == pytest.approx(111.0013, abs=1e-4)


def test_degrees_in_projected_file(sample: Any, write_layer: Writer) -> None:
    path = write_layer("deg.gpkg", sample.points, crs="EPSG:4547")
    with pytest.raises(GeoInputError, match=r"look like longitude/latitude degrees \(x=110.23, y=32.22\)"):
        read_file(path)
    assert read_file(path, crs=4326).errors == {}


def test_swapped_axes_in_file(write_geojson: Writer) -> None:
    path = write_geojson("swap.geojson", [_pt(32.22, 110.23), _pt(32.3, 110.25)])
    with pytest.raises(GeoInputError, match="axes swapped"):
        read_file(path)


def test_single_out_of_range_feature_is_reported_not_raised(write_geojson: Writer) -> None:
    path = write_geojson("one.geojson", [_pt(110.2, 32.2), _pt(110.3, 32.3), _pt(500000.0, 3500000.0)])
    lc = read_file(path)
    assert lc.errors == {2: "coordinates out of longitude/latitude range"}
    assert lc.geometries[2] is None and lc.ok_count == 2


def test_unknown_epsg(sample: Any, write_layer: Writer) -> None:
    path = write_layer("u.gpkg", sample.points, crs="EPSG:4326")
    with pytest.raises(GeoInputError) as exc:
        read_file(path, crs=999999)
    assert str(exc.value) == "unknown EPSG code 999999"


def test_unidentifiable_crs(sample: Any, write_layer: Writer) -> None:
    local = "+proj=tmerc +lat_0=0 +lon_0=110.5 +k=1 +x_0=50000 +y_0=-3000000 +ellps=GRS80 +units=m +no_defs"
    t = pyproj.Transformer.from_crs(4326, pyproj.CRS.from_proj4(local), always_xy=True)
    x, y = t.transform(sample.lon, sample.lat)
    path = write_layer("local.gpkg", shapely.points(x, y), crs=pyproj.CRS.from_proj4(local).to_wkt())
    with pytest.raises(GeoInputError, match=r"cannot identify the CRS of local\.gpkg"):
        read_file(path)


def test_per_feature_errors_are_collected(write_geojson: Writer) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[110, 32], [110.1, 32.1], [110.1, 32], [110, 32.1], [110, 32]]]}
    features = [
        _pt(110.2, 32.2, name="ok"),
        {"type": "Feature", "properties": {"name": "null"}, "geometry": None},
        {"type": "Feature", "properties": {"name": "bowtie"}, "geometry": bowtie},
        _pt(110.3, 32.3, name="ok2"),
    ]
    path = write_geojson("mixed.geojson", features)
    unchecked = read_file(path)
    assert unchecked.errors == {1: "missing geometry"}
    assert not unchecked.geometries[2].is_valid  # left for the caller to judge
    lc = read_file(path, check_valid=True)
    assert lc.errors == {1: "missing geometry", 2: "invalid geometry: Self-intersection[110.05 32.05]"}
    assert [g is None for g in lc.geometries] == [False, True, True, False]
    assert lc.ok_count == 2
    repaired = read_file(path, make_valid=True)
    assert repaired.errors == {1: "missing geometry"}
    assert repaired.geometries[2].geom_type == "MultiPolygon"
    assert repaired.geometries[2].is_valid


def test_non_finite_coordinates(write_layer: Writer) -> None:
    with np.errstate(invalid="ignore"):
        geoms = [shapely.Point(110.2, 32.2), shapely.LineString([(110.2, 32.2), (math.nan, 32.3)])]
    lc = read_file(write_layer("nan.gpkg", geoms, crs="EPSG:4326"))
    assert lc.errors == {1: "coordinates must be finite numbers"}


def test_shapefile_in_zip(sample: Any, project: Project, write_layer: Writer, tmp_path: Path) -> None:
    shp = write_layer("roads.shp", project(sample.points, 4547), crs="EPSG:4547", fields=fields_for(sample))
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shp.parent.glob("roads.*"):
            zf.write(part, f"数据/道路{part.suffix}")
        zf.writestr("readme.txt", "hello")
    lc = read_file(archive)
    assert (lc.driver, lc.source_epsg, lc.count) == ("ESRI Shapefile", 4547, 4)
    np.testing.assert_allclose(coords(lc), np.column_stack([sample.lon, sample.lat]), atol=1e-8)
    assert lc.properties(1)["name"] == "茅箭区"


@pytest.mark.parametrize(("ext", "driver"), [("gdb", "OpenFileGDB"), ("fgb", "FlatGeobuf")])
def test_other_gdal_formats(ext: str, driver: str, sample: Any, project: Project, write_layer: Writer) -> None:
    fields = {"n": np.arange(4, dtype=np.int32), "name": np.array(sample.names, dtype=object)}
    projected = project(sample.points, 4547)
    path = write_layer(f"city.{ext}", projected, crs="EPSG:4547", fields=fields, geometry_type="Point")
    lc = read_file(path)
    assert (lc.driver, lc.source_epsg, lc.count, lc.errors) == (driver, 4547, 4, {})
    order = np.asarray(lc.columns["n"], dtype=int)  # FlatGeobuf's spatial index reorders features
    np.testing.assert_allclose(coords(lc), np.column_stack([sample.lon, sample.lat])[order], atol=1e-8)
    assert [lc.properties(i)["name"] for i in range(4)] == [sample.names[i] for i in order]


def test_bad_zips(sample: Any, write_layer: Writer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("a.txt", "x")
    with pytest.raises(GeoInputError, match=r"cannot read empty.zip: no shapefile \(.shp\) found in the zip"):
        read_file(empty)
    shp = write_layer("a.shp", sample.points, crs="EPSG:4326")
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        for part in shp.parent.glob("a.*"):
            zf.write(part, part.name)
            zf.write(part, "b" + part.suffix)
    with pytest.raises(GeoInputError, match="several shapefiles"):
        read_file(two)
    layers = tmp_path / "layers.zip"
    with zipfile.ZipFile(layers, "w") as zf:
        zf.writestr("a.geojson", "{}")
        zf.writestr("b.geojson", "{}")
    with pytest.raises(GeoInputError, match=r"several layers \(a.geojson, b.geojson\)"):
        read_file(layers)
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip")
    with pytest.raises(GeoInputError, match=r"cannot read fake\.zip: not a valid zip file"):
        read_file(fake)


def test_unreadable_files(write_text: Writer, tmp_path: Path) -> None:
    with pytest.raises(GeoInputError, match=r"^cannot read bad.geojson: "):
        read_file(write_text("bad.geojson", "{ this is not json"))
    with pytest.raises(GeoInputError, match=r"cannot read data.xyz: unsupported file type '.xyz'"):
        read_file(write_text("data.xyz", "1 2 3"))
    with pytest.raises(GeoInputError, match=r"cannot read missing\.gpkg: no such file"):
        read_file(tmp_path / "missing.gpkg")
    with pytest.raises(GeoInputError, match=r"cannot read empty\.csv: the file is empty"):
        read_file(write_text("empty.csv", ""))


# --- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["wkt", "WKT", "geometry", "geom"])
def test_csv_wkt_column_detection(column: str, write_text: Writer) -> None:
    lc = read_file(write_text("w.csv", f'name,{column}\n十堰,"POINT (110.23 32.22)"\n'))
    assert (lc.driver, lc.source_epsg, lc.fields, lc.errors) == ("CSV", 4326, ["name"], {})
    assert lc.geometries[0].equals(shapely.Point(110.23, 32.22))
    assert lc.columns == {"name": ["十堰"]}


@pytest.mark.parametrize(("lon", "lat"), [("lon", "lat"), ("lng", "lat"), ("X", "Y"), ("经度", "纬度")])
def test_csv_lonlat_columns(lon: str, lat: str, write_text: Writer) -> None:
    lc = read_file(write_text("p.csv", f"id,{lon},{lat}\n1,110.23,32.22\n2,110.3,32.25\n"))
    np.testing.assert_array_equal(coords(lc), [[110.23, 32.22], [110.3, 32.25]])
    assert lc.fields == ["id"] and lc.columns["id"] == ["1", "2"]


def test_csv_reprojected_with_crs_argument(project: Project, sample: Any, write_text: Writer) -> None:
    pts = project(sample.points, 4547)
    rows = "".join(f'{i},"{shapely.to_wkt(p, rounding_precision=-1)}"\n' for i, p in enumerate(pts))
    lc = read_file(write_text("gk.csv", "id,wkt\n" + rows), crs=4547)
    assert lc.source_epsg == 4547
    np.testing.assert_allclose(coords(lc), np.column_stack([sample.lon, sample.lat]), atol=1e-8)


def test_csv_ewkt_srid(project: Project, sample: Any, write_text: Writer) -> None:
    p = project(sample.points[:1], 32649)[0]
    lc = read_file(write_text("e.csv", f'id,wkt\n1,"SRID=32649;{shapely.to_wkt(p, rounding_precision=-1)}"\n'))
    assert lc.source_epsg == 32649
    assert (lc.geometries[0].x, lc.geometries[0].y) == pytest.approx((110.23, 32.22), abs=1e-8)
    mixed = write_text("mixed.csv", 'wkt\n"SRID=4326;POINT (1 2)"\n"SRID=4547;POINT (1 2)"\n')
    with pytest.raises(GeoInputError, match=r"rows use different SRIDs \(4326, 4547\)"):
        read_file(mixed)


def test_csv_custom_wkt_column_and_delimiter(write_text: Writer) -> None:
    lc = read_file(write_text("c.csv", "name;shape_wkt\nA;POINT (110 32)\n"), wkt_column="shape_wkt")
    assert lc.geometries[0].equals(shapely.Point(110, 32)) and lc.columns["name"] == ["A"]
    with pytest.raises(GeoInputError, match="no column named 'nope'; columns are name, shape_wkt"):
        read_file(write_text("c2.csv", "name,shape_wkt\nA,POINT (110 32)\n"), wkt_column="nope")
    with pytest.raises(GeoInputError, match="no geometry column"):
        read_file(write_text("c3.csv", "name,value\nA,1\n"))


def test_csv_gbk_encoding(write_text: Writer) -> None:
    lc = read_file(write_text("gbk.csv", "名称,经度,纬度\n十堰市,110.79,32.63\n", encoding="gbk"))
    assert lc.columns == {"名称": ["十堰市"]}
    assert lc.geometries[0].equals(shapely.Point(110.79, 32.63))


def test_csv_per_row_errors(write_text: Writer) -> None:
    text = (
        "id,wkt,note\n"
        '0,"POINT (110.2 32.2)",ok\n'
        "1,garbage,x\n"
        "2,,empty cell\n"
        "3,POINT EMPTY,x\n"
        '4,"POLYGON ((110 32, 110.1 32.1, 110.1 32, 110 32.1, 110 32))",bowtie\n'
        '5,"POINT (110.3 32.3)"\n'
        "\n"
        '6,"POINT (110.4 32.4)",ok\n'
    )
    lc = read_file(write_text("bad.csv", text), check_valid=True)
    assert lc.count == 7
    assert lc.errors[1].startswith("unparsable WKT (ParseException") and lc.errors[1].endswith(": 'garbage'")
    assert lc.errors[2] == "missing geometry"
    assert lc.errors[3] == "empty geometry"
    assert lc.errors[4] == "invalid geometry: Self-intersection[110.05 32.05]"
    assert lc.errors[5] == "row has 2 values but the header has 3"
    assert set(lc.errors) == {1, 2, 3, 4, 5}
    assert lc.geometries[6].equals(shapely.Point(110.4, 32.4))
    assert lc.columns["note"][2] == "empty cell" and lc.columns["note"][5] is None


def test_csv_bad_lonlat_values(write_text: Writer) -> None:
    lc = read_file(write_text("ll.csv", "lon,lat\n110.2,32.2\nabc,32\n,\nnan,32\n110.3,32.3\n"))
    assert lc.errors == {
        1: "longitude 'abc' is not a number",
        2: "missing longitude",
        3: "coordinates must be finite numbers",
    }
    assert lc.ok_count == 2


def test_read_layer_and_progress(sample: Any, write_layer: Writer) -> None:
    seen: list[int] = []
    path = write_layer("l.gpkg", sample.points, crs="EPSG:4326", fields=fields_for(sample))
    assert read_file(path, progress=seen.append).count == 4
    assert seen[-1] == 4 and seen == sorted(seen)
    layer = read_layer(path)
    assert (layer.driver, layer.source_epsg, layer.fields) == ("GPKG", 4326, ["n", "name"])
    assert layer.features[1] == LoadedFeature(1, {"n": 1, "name": "茅箭区"}, layer.features[1].geometry, None)
    assert layer.features[3].properties == {"n": 3, "name": None}


def test_one_million_points_load_in_a_few_seconds(write_layer: Writer) -> None:
    n = 1_000_000
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(110.0, 111.0, n), rng.uniform(32.0, 33.0, n)
    x, y = pyproj.Transformer.from_crs(4326, 32649, always_xy=True).transform(lon, lat)
    no_index = {"SPATIAL_INDEX": "NO"}  # only to make writing the fixture faster
    path = write_layer("big.gpkg", shapely.points(x, y), crs="EPSG:32649", layer_options=no_index)
    started = time.perf_counter()
    lc = read_file(path)
    elapsed = time.perf_counter() - started
    assert lc.count == n and lc.errors == {}
    xy = shapely.get_coordinates(lc.geometries[[0, n // 2, n - 1]])
    np.testing.assert_allclose(xy, np.column_stack([lon, lat])[[0, n // 2, n - 1]], atol=1e-8)
    assert elapsed < 15, f"loading {n} points took {elapsed:.1f}s"


def _pt(x: float, y: float, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": [x, y]}}
