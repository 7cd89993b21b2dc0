"""`grid-mgmt import`: real files (GeoJSON, Shapefile, GeoPackage, CSV+WKT), reprojection, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import asyncpg
import numpy as np
import pyogrio.raw
import pyproj
import pytest
import shapely

from grid_mgmt.imports import cli
from tests.importer.importer_synth import DEG_LAT, DEG_LON, LAT0, LATTICE, LON0, feature_collection

ROOT = Path(__file__).resolve().parents[2]


async def run_cli(dsn: str, *args: str) -> tuple[int, str, str]:
    """Run `python -m grid_mgmt.imports.cli ARGS` against the test database: (exit code, stdout, stderr)."""
    env = {**os.environ, "GRID_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "grid_mgmt.imports.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def grids_geojson(path: Path, names: dict[int, str] | None = None, broken: int | None = None) -> Path:
    grids = LATTICE.grids()
    geoms = list(grids.geometries)
    if broken is not None:  # a bow tie
        x0, y0 = LON0, LAT0 - DEG_LAT
        geoms[broken] = shapely.Polygon(
            [(x0, y0), (x0 + DEG_LON, y0 + DEG_LAT), (x0 + DEG_LON, y0), (x0, y0 + DEG_LAT)]
        )
    props = [
        {"BSM": c, "MC": (names or {}).get(i, n), "OBJECTID": i}
        for i, (c, n) in enumerate(zip(grids.columns["code"], grids.columns["name"], strict=True))
    ]
    path.write_text(json.dumps(feature_collection(geoms, props), ensure_ascii=False), encoding="utf-8")
    return path


async def checksum(pg: asyncpg.Connection, table: str) -> tuple[int, str]:
    row = await pg.fetchrow(
        f"SELECT count(*) n, md5(coalesce(string_agg(code || name || ST_AsText(geom), ',' ORDER BY code), '')) s FROM {table}"
    )
    return row["n"], row["s"]


async def test_geojson_import_with_field_map_then_upsert(dsn: str, pg: asyncpg.Connection, tmp_path: Path) -> None:
    path = grids_geojson(tmp_path / "grids.geojson")
    code, out, err = await run_cli(dsn, "grids", str(path), "--field-map", "code=BSM,name=MC")
    assert code == 0, err
    assert "inserted 64, updated 0" in out
    assert "ignored fields (no such column): OBJECTID" in out
    grids_geojson(path, names={0: "改过的名字"})
    code, out, err = await run_cli(dsn, "grids", str(path), "--field-map", "code=BSM", "--field-map", "name=MC")
    assert code == 0, err
    assert "inserted 0, updated 1, unchanged 63" in out
    assert await pg.fetchval("SELECT name FROM grid WHERE code = '420323001001001'") == "改过的名字"


async def test_broken_file_leaves_the_table_unchanged(dsn: str, pg: asyncpg.Connection, tmp_path: Path) -> None:
    path = grids_geojson(tmp_path / "grids.geojson")
    assert (await run_cli(dsn, "grids", str(path), "--field-map", "code=BSM,name=MC"))[0] == 0
    before = await checksum(pg, "grid")
    bad = grids_geojson(tmp_path / "bad.geojson", names={1: "新名字", 2: "也新"}, broken=3)
    code, _out, err = await run_cli(dsn, "grids", str(bad), "--field-map", "code=BSM,name=MC")
    assert code == 1
    assert "REJECTED, nothing written" in err
    assert "#3 420323001001004" in err and "Self-intersection" in err
    assert await checksum(pg, "grid") == before


def _projected(epsg: int, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    to = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = to.transform(lon, lat)
    return np.asarray(x), np.asarray(y)


async def _grids_loaded(dsn: str, tmp_path: Path) -> None:
    assert (await run_cli(dsn, "grids", str(grids_geojson(tmp_path / "g.geojson")), "--field-map", "code=BSM,name=MC"))[
        0
    ] == 0


@pytest.mark.parametrize(("suffix", "driver", "epsg"), [(".shp", "ESRI Shapefile", 4547), (".gpkg", "GPKG", 32649)])
async def test_projected_files_land_at_the_right_lonlat(
    dsn: str, pg: asyncpg.Connection, tmp_path: Path, suffix: str, driver: str, epsg: int
) -> None:
    await _grids_loaded(dsn, tmp_path)
    comps = LATTICE.components(50, seed=7)
    lon, lat = shapely.get_x(comps.geometries), shapely.get_y(comps.geometries)
    x, y = _projected(epsg, lon, lat)
    path = tmp_path / f"components{suffix}"
    pyogrio.raw.write(
        path,
        shapely.to_wkb(shapely.points(x, y)),
        [np.array(comps.columns["code"], dtype=object), np.array(["SW01"] * 50, dtype=object)],
        ["BSM", "YHDW"],
        driver=driver,
        geometry_type="Point",
        crs=f"EPSG:{epsg}",
    )
    code, out, err = await run_cli(
        dsn, "components", str(path), "--crs", str(epsg), "--field-map", "code=BSM,maintainer_unit_code=YHDW"
    )
    assert code == 0, err
    assert "inserted 50" in out
    rows = await pg.fetch("SELECT code, ST_X(geom) x, ST_Y(geom) y, maintainer_unit_code m FROM component")
    got = {r["code"]: (r["x"], r["y"], r["m"]) for r in rows}
    for c, lo, la in zip(comps.columns["code"], lon, lat, strict=True):
        gx, gy, m = got[c]
        assert abs(gx - lo) < 1e-7 and abs(gy - la) < 1e-7  # ~1 cm
        assert m == "SW01"


async def test_csv_with_wkt_in_cgcs2000_gauss_kruger(dsn: str, pg: asyncpg.Connection, tmp_path: Path) -> None:
    lon = np.array([LON0, LON0 + 3 * DEG_LON, LON0 + 5 * DEG_LON])
    lat = np.array([LAT0, LAT0 - DEG_LAT, LAT0 - 2 * DEG_LAT])
    x, y = _projected(4547, lon, lat)
    wkt = shapely.to_wkt(shapely.linestrings(np.column_stack([x, y])), rounding_precision=4)
    path = tmp_path / "pipes.csv"
    path.write_text(
        f'code,kind,diameter_mm,material,owner_unit_code,WKT\nWS-0001,给水,300,球墨铸铁,SW01,"{wkt}"\n',
        encoding="utf-8",
    )
    code, _out, err = await run_cli(dsn, "pipelines", str(path), "--crs", "EPSG:4547")
    assert code == 0, err
    row = await pg.fetchrow(
        "SELECT kind, diameter_mm, ST_NPoints(geom) n, ST_X(ST_EndPoint(geom)) x, ST_Y(ST_EndPoint(geom)) y FROM pipeline"
    )
    assert (row["kind"], row["diameter_mm"], row["n"]) == ("water", 300, 3)
    assert row["x"] == pytest.approx(lon[-1], abs=1e-6) and row["y"] == pytest.approx(lat[-1], abs=1e-6)


async def test_projected_coordinates_declared_as_wgs84(dsn: str, pg: asyncpg.Connection, tmp_path: Path) -> None:
    x, y = _projected(4547, np.array([LON0]), np.array([LAT0]))
    box = shapely.box(x[0], y[0], x[0] + 100, y[0] + 100)
    path = tmp_path / "metres.geojson"
    path.write_text(json.dumps(feature_collection([box], [{"code": "420323001001001", "name": "x"}])))
    code, _out, err = await run_cli(dsn, "grids", str(path))
    assert code == 1
    assert "projected" in err and "--crs" in err
    assert await pg.fetchval("SELECT count(*) FROM grid") == 0


async def test_usage_errors_exit_2(dsn: str, tmp_path: Path) -> None:
    path = grids_geojson(tmp_path / "grids.geojson")
    code, _, err = await run_cli(dsn, "roads", str(path))
    assert code == 2
    assert "invalid choice: 'roads'" in err and "'regions', 'grids', 'components', 'pipelines', 'units'" in err
    code, _, err = await run_cli(dsn, "grids", str(tmp_path / "nope.geojson"))
    assert (code, "no such file" in err) == (2, True)
    code, _, err = await run_cli(dsn, "grids", str(path), "--crs", "99999")
    assert (code, "unknown EPSG code 99999" in err) == (2, True)
    code, _, err = await run_cli(dsn, "grids", str(path), "--crs", "utm")
    assert (code, "--crs must be an EPSG code" in err) == (2, True)
    code, _, err = await run_cli(dsn, "grids", str(path), "--field-map", "code")
    assert (code, "COLUMN=FIELD" in err) == (2, True)
    code, _, err = await run_cli(dsn, "grids", str(path), "--field-map", "code=NOSUCH")
    assert code == 2
    assert "'NOSUCH'" in err and "BSM, MC, OBJECTID" in err
    code, _, err = await run_cli(dsn, "grids", str(path), "--field-map", "colour=MC")
    assert (code, "no column 'colour'" in err) == (2, True)


async def test_dry_run_and_missing_column(dsn: str, pg: asyncpg.Connection, tmp_path: Path) -> None:
    path = grids_geojson(tmp_path / "grids.geojson")
    code, out, _ = await run_cli(dsn, "grids", str(path), "--field-map", "code=BSM,name=MC", "--dry-run")
    assert code == 0 and "would insert 64" in out
    code, _, err = await run_cli(dsn, "grids", str(path), "--field-map", "code=BSM")
    assert code == 1 and "the file has no 'name' column" in err
    assert await pg.fetchval("SELECT count(*) FROM grid") == 0


def test_case_insensitive_fields_and_map_helpers() -> None:
    fields = {"CODE": [1], "Name": ["a"], "MC": ["b"], "extra": [0]}
    assert cli.map_fields(fields, {}, "grids") == {"code": [1], "name": ["a"], "MC": ["b"], "extra": [0]}
    assert cli.map_fields(fields, {"name": "MC"}, "grids") == {"name": ["b"], "code": [1], "Name": ["a"], "extra": [0]}
    assert cli.parse_field_map(["code=BSM, name=MC", ""], "grids") == {"code": "BSM", "name": "MC"}
    assert cli.parse_crs("EPSG:4547") == 4547 and cli.parse_crs(None) is None


def test_main_command_registers_import(capsys: pytest.CaptureFixture[str]) -> None:
    from grid_mgmt.cli import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["import", "roads", "x.geojson"])
    assert info.value.code == 2
    assert "invalid choice: 'roads'" in capsys.readouterr().err
