"""Attribute values, odd geometries, trusted (unchecked) imports and the problem cap."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg
import numpy as np
import pytest
import shapely

from grid_mgmt.imports import report as report_module
from grid_mgmt.imports.layers import get_spec
from grid_mgmt.imports.service import ImportReport, LayerData, import_layer
from grid_mgmt.imports.values import convert
from tests.importer.importer_synth import DEG_LAT, DEG_LON, LAT0, LATTICE, LON0


def data(geoms: list[shapely.Geometry | None], **columns: list[object]) -> LayerData:
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    return LayerData(arr, dict(columns))


def kinds(report: ImportReport) -> dict[int | None, set[str]]:
    out: dict[int | None, set[str]] = {}
    for p in report.problems:
        out.setdefault(p.index, set()).add(p.kind)
    return out


def test_value_conversion() -> None:
    spec = get_spec("components")
    dates, errors = convert(spec.column("survey_date"), ["2024-05-06", "2024/5/7", "20240508", None, "", "soon"])
    assert dates[:5] == [dt.date(2024, 5, 6), dt.date(2024, 5, 7), dt.date(2024, 5, 8), None, None]
    assert list(errors) == [5] and "a date" in errors[5]
    days = np.array(["2024-01-02", "NaT"], dtype="datetime64[ms]")
    assert convert(spec.column("survey_date"), days) == ([dt.date(2024, 1, 2), None], {})
    pipes = get_spec("pipelines")
    ints, errors = convert(pipes.column("diameter_mm"), [300.0, "150", np.nan, 2.5, 0])
    assert ints[:3] == [300, 150, None] and set(errors) == {3, 4}
    assert convert(pipes.column("diameter_mm"), np.array([1, 2]))[0] == [1, 2]
    codes, _ = convert(spec.column("grid_code"), [4.20323001001001e14, " 420323001001002 ", None])
    assert codes == ["420323001001001", "420323001001002", None]
    attrs, errors = convert(spec.column("attributes"), [{"材质": "铸铁"}, '{"a": 1}', "[1]", "{bad"])
    assert json.loads(attrs[0]) == {"材质": "铸铁"} and json.loads(attrs[1]) == {"a": 1}
    assert set(errors) == {2, 3}
    status, errors = convert(spec.column("status"), ["完好", "Damaged", "intact", "lost"])
    assert status[:3] == ["intact", "damaged", "intact"] and list(errors) == [3]
    assert convert(spec.column("accuracy_class"), ["a", "B"]) == (["A", "B"], {})
    active, errors = convert(get_spec("units").column("active"), [True, "是", "0", "maybe"])
    assert active[:3] == [True, True, False] and list(errors) == [3]


async def test_component_attributes_land_typed(dsn: str, pg: asyncpg.Connection) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    comps = LATTICE.components(3)
    report = await import_layer(
        dsn,
        "components",
        data(
            list(comps.geometries),
            **comps.columns,
            survey_date=["2024-05-06", None, "2023/12/01"],
            accuracy_class=["A", None, "B"],
            attributes=[{"材质": "铸铁"}, None, '{"height_m": 9}'],
            supervisor_unit_code=["CGJ", "CGJ", None],
            owner_unit_code=["SW01", None, "LD01"],
            note=["  ", "新装", None],
        ),
    )
    assert report.ok, report.to_text()
    rows = {r["code"]: r for r in await pg.fetch("SELECT * FROM component")}
    first = rows[comps.columns["code"][0]]
    assert first["survey_date"] == dt.date(2024, 5, 6) and first["accuracy_class"] == "A"
    assert json.loads(first["attributes"]) == {"材质": "铸铁"} and first["note"] is None
    assert json.loads(rows[comps.columns["code"][1]]["attributes"]) == {}


async def test_bad_values_are_reported_per_feature(dsn: str) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    comps = LATTICE.components(4)
    report = await import_layer(
        dsn,
        "components",
        data(
            list(comps.geometries),
            **comps.columns,
            accuracy_class=["D", None, None, None],
            status=[None, "stolen", None, None],
            name=[None, None, "名" * 101, None],
            survey_date=[None, None, None, "yesterday"],
        ),
    )
    assert kinds(report) == {0: {"bad_value"}, 1: {"bad_value"}, 2: {"bad_value"}, 3: {"bad_value"}}
    text = report.to_text()
    assert "accuracy_class 'D' is not one of A, B, C" in text and "'stolen'" in text and "at most 100" in text


async def test_odd_geometries(dsn: str, pg: asyncpg.Connection) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    x, y = LON0 + 0.5 * DEG_LON, LAT0 - 0.5 * DEG_LAT
    geoms = [
        shapely.Point(x, y, 12.5),  # 3D: stored 2D
        shapely.GeometryCollection([shapely.Point(x, y)]),
        shapely.Point(np.nan, np.nan),
        None,
        shapely.Point(),
        shapely.MultiPoint([(x, y), (x + 1e-5, y)]),
    ]
    codes = [f"420323010100000{i}" for i in range(1, 7)]
    report = await import_layer(dsn, "components", data(geoms, code=codes))
    assert kinds(report) == {
        1: {"wrong_geometry_type"},
        2: {"invalid_geometry"},
        3: {"missing_field"},
        4: {"missing_field"},
    }
    keep = [0, 5]
    ok = await import_layer(dsn, "components", data([geoms[i] for i in keep], code=[codes[i] for i in keep]))
    assert ok.ok, ok.to_text()
    dims = await pg.fetch("SELECT ST_NDims(geom) d, ST_GeometryType(geom) t FROM component ORDER BY code")
    assert [(r["d"], r["t"]) for r in dims] == [(2, "ST_Point"), (2, "ST_MultiPoint")]


async def test_unchecked_import_still_guarded_by_the_database(dsn: str, pg: asyncpg.Connection) -> None:
    x0, y0 = LON0, LAT0 - DEG_LAT
    bow = shapely.Polygon([(x0, y0), (x0 + DEG_LON, y0 + DEG_LAT), (x0 + DEG_LON, y0), (x0, y0 + DEG_LAT)])
    trusted = await import_layer(dsn, "grids", LATTICE.grids(), check_geometry=False)
    assert trusted.ok and trusted.inserted == 64
    report = await import_layer(dsn, "grids", data([bow], code=["420323001001001"], name=["x"]), check_geometry=False)
    assert not report.ok
    [problem] = report.problems
    assert problem.kind == "invalid_geometry"
    assert await pg.fetchval("SELECT ST_IsValid(geom) FROM grid WHERE code = '420323001001001'")


async def test_problem_list_is_capped_per_kind(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "MAX_PER_KIND", 5)
    grids = LATTICE.grids()
    codes = [c[:12] + c[13:] for c in grids.columns["code"]]
    report = await import_layer(dsn, "grids", data(list(grids.geometries), code=codes, name=grids.columns["name"]))
    assert len(report.problems) == 6
    assert report.problems[-1].index is None and "59 more features" in report.problems[-1].message


async def test_grid_validity_period(dsn: str) -> None:
    grids = LATTICE.grids()
    valid_from = ["2020-01-01"] * 64
    valid_to: list[object] = [None] * 64
    valid_to[3] = "2019-12-31"
    report = await import_layer(
        dsn, "grids", data(list(grids.geometries), **grids.columns, valid_from=valid_from, valid_to=valid_to)
    )
    assert kinds(report) == {3: {"bad_value"}}
    assert "valid_to 2019-12-31 is before valid_from 2020-01-01" in report.problems[0].message
