"""import_layer: validation problems, upserts, derived columns and the all-or-nothing write."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest
import shapely
import shapely.affinity

from grid_mgmt.imports import repository, service
from grid_mgmt.imports.service import LAYERS, ImportReport, LayerData, import_layer
from tests.importer.importer_synth import DEG_LAT, DEG_LON, LAT0, LATTICE, LON0


def kinds(report: ImportReport) -> dict[int | None, set[str]]:
    out: dict[int | None, set[str]] = {}
    for p in report.problems:
        out.setdefault(p.index, set()).add(p.kind)
    return out


def data(geoms: list[shapely.Geometry | None], **columns: list[object]) -> LayerData:
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    return LayerData(arr, dict(columns))


async def test_unknown_layer_names_the_valid_ones(dsn: str) -> None:
    with pytest.raises(ValueError) as info:
        await import_layer(dsn, "roads", data([]))
    assert str(info.value) == "unknown layer 'roads'; use one of regions, grids, components, pipelines, units"
    assert LAYERS == ("regions", "grids", "components", "pipelines", "units")


async def test_grids_import_then_reimport_updates(dsn: str, pg: asyncpg.Connection) -> None:
    grids = LATTICE.grids()
    stages: list[str] = []
    report = await import_layer(dsn, "grids", grids, progress=lambda s, d, t: stages.append(s))
    assert report.ok, report.to_text()
    assert (report.total, report.inserted, report.updated) == (64, 64, 0)
    assert {"validating", "loading", "upserting"} <= set(stages)
    row = await pg.fetchrow("SELECT community_code, area_m2, valid_from FROM grid WHERE code = '420323001001001'")
    assert row["community_code"] == "420323001001"
    assert row["area_m2"] == pytest.approx(10_000, rel=0.01)
    assert row["valid_from"] is not None

    grids.columns["name"] = list(grids.columns["name"])
    grids.columns["name"][0] = "东风路网格"
    grids.columns["land_use"] = ["residential"] * 64
    again = await import_layer(dsn, "grids", grids)
    assert again.ok, again.to_text()
    assert (again.inserted, again.updated) == (0, 64)
    code0 = grids.columns["code"][0]
    row = await pg.fetchrow("SELECT name, land_use FROM grid WHERE code = $1", code0)
    assert (row["name"], row["land_use"]) == ("东风路网格", "residential")
    assert await pg.fetchval("SELECT count(*) FROM grid") == 64

    same = await import_layer(dsn, "grids", grids)  # nothing changed: no row is rewritten
    assert (same.inserted, same.updated, same.unchanged) == (0, 0, 64)
    assert "inserted 0, updated 0, unchanged 64" in same.to_text()
    geoms = list(grids.geometries)
    geoms[1] = shapely.affinity.translate(geoms[1], 1e-7, 0)  # ~1 cm east
    moved = await import_layer(dsn, "grids", data(geoms, **grids.columns))
    assert (moved.inserted, moved.updated, moved.unchanged) == (0, 1, 63)
    xmin = await pg.fetchval("SELECT ST_XMin(geom) FROM grid WHERE code = $1", grids.columns["code"][1])
    assert xmin == pytest.approx(LON0 + DEG_LON + 1e-7, abs=1e-12)


async def test_dry_run_writes_nothing_and_counts(dsn: str, pg: asyncpg.Connection) -> None:
    report = await import_layer(dsn, "grids", LATTICE.grids(), dry_run=True)
    assert report.ok and report.dry_run
    assert (report.inserted, report.updated) == (64, 0)
    assert "would insert 64, update 0, leave 0 unchanged" in report.to_text()
    assert await pg.fetchval("SELECT count(*) FROM grid") == 0
    grids = LATTICE.grids()
    assert (await import_layer(dsn, "grids", grids)).ok
    names = list(grids.columns["name"])
    names[7] = "改名"
    again = await import_layer(
        dsn, "grids", data(list(grids.geometries), code=grids.columns["code"], name=names), dry_run=True
    )
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 63)
    assert await pg.fetchval("SELECT count(*) FROM grid WHERE name = '改名'") == 0


async def test_self_intersecting_polygon_rejects_the_file(dsn: str, pg: asyncpg.Connection) -> None:
    grids = LATTICE.grids()
    geoms = list(grids.geometries)
    x0, y0 = LON0, LAT0 - DEG_LAT
    geoms[3] = shapely.Polygon([(x0, y0), (x0 + DEG_LON, y0 + DEG_LAT), (x0 + DEG_LON, y0), (x0, y0 + DEG_LAT)])
    report = await import_layer(dsn, "grids", data(geoms, **grids.columns))
    assert not report.ok
    [problem] = report.problems
    assert (problem.index, problem.kind, problem.code) == (3, "invalid_geometry", grids.columns["code"][3])
    assert "Self-intersection" in problem.message
    assert await pg.fetchval("SELECT count(*) FROM grid") == 0
    assert "invalid_geometry (1):" in report.to_text()


async def test_duplicate_codes_report_every_feature(dsn: str, pg: asyncpg.Connection) -> None:
    comps = LATTICE.components(10)
    codes = list(comps.columns["code"])
    codes[4] = codes[1]
    codes[5] = codes[7] = codes[2]
    report = await import_layer(dsn, "components", data(list(comps.geometries), code=codes))
    found = {p.index for p in report.problems if p.kind == "duplicate_code"}
    assert found == {1, 4, 2, 5, 7}
    assert "3 times" in next(p.message for p in report.problems if p.index == 5)
    assert await pg.fetchval("SELECT count(*) FROM component") == 0


async def test_malformed_codes(dsn: str) -> None:
    grids = LATTICE.grids()
    codes = list(grids.columns["code"])
    codes[0] = codes[0][:14]  # old 14-digit CJ/T 213 code
    codes[1] = codes[1][:-1] + "A"
    codes[2] = None
    report = await import_layer(dsn, "grids", data(list(grids.geometries), code=codes, name=grids.columns["name"]))
    got = kinds(report)
    assert got[0] == {"malformed_code"} and got[1] == {"malformed_code"}
    assert got[2] == {"missing_field"}
    assert "15 digits" in report.problems[0].message


async def test_grid_crossing_its_community(dsn: str, pg: asyncpg.Connection) -> None:
    # cells (0, 3.5)-(1, 4.5) straddle communities 420323001001 and 420323001002
    straddle = LATTICE.box(0, 0, 1, 1)
    straddle = shapely.affinity.translate(straddle, 0, -3.5 * DEG_LAT)
    sliver = shapely.affinity.scale(LATTICE.box(3, 3, 4, 4), 1 + 1e-7, 1 + 1e-7)  # ~0.001 m² outside: tolerated
    report = await import_layer(
        dsn,
        "grids",
        data([straddle, sliver], code=["420323001001901", "420323001001016"], name=["跨界", "微差"]),
    )
    assert kinds(report) == {0: {"crosses_community"}}
    message = report.problems[0].message
    assert "420323001001" in message and "50.0%" in message
    assert await pg.fetchval("SELECT count(*) FROM grid") == 0


async def test_components_get_their_grid_and_defaults(dsn: str, pg: asyncpg.Connection) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    comps = LATTICE.components(300)
    edge = shapely.Point(LON0 + DEG_LON, LAT0 - 0.5 * DEG_LAT)  # on the edge of grids ...001 and ...002
    corner = shapely.Point(LON0 + 4 * DEG_LON, LAT0 - 4 * DEG_LAT)  # corner of four communities
    line = shapely.LineString(
        [(LON0 + 0.2 * DEG_LON, LAT0 - 0.5 * DEG_LAT), (LON0 + 0.8 * DEG_LON, LAT0 - 0.5 * DEG_LAT)]
    )
    geoms = [*comps.geometries, edge, corner, line]
    codes = [*comps.columns["code"], "4203230118900001", "4203230118900002", "4203230101900003"]
    status = ["完好"] * 300 + ["damaged", None, "intact"]
    report = await import_layer(dsn, "components", data(geoms, code=codes, status=status))
    assert report.ok, report.to_text()
    assert report.inserted == 303
    rows = {r["code"]: r for r in await pg.fetch("SELECT code, grid_code, category_code, name, status FROM component")}
    assert rows["4203230118900001"]["grid_code"] == "420323001001001"
    assert rows["4203230118900002"]["grid_code"] == "420323001001016"  # smallest of the four at the corner
    assert rows["4203230101900003"]["grid_code"] == "420323001001001"
    assert rows["4203230118900001"]["category_code"] == "C0118"
    assert rows["4203230118900001"]["name"] == "路灯"
    assert rows["4203230118900002"]["status"] == "intact"
    assert {r["status"] for r in rows.values()} == {"intact", "damaged"}
    outside = await pg.fetchval(
        "SELECT count(*) FROM component c JOIN grid g ON g.code = c.grid_code"
        " WHERE NOT ST_Intersects(g.geom, ST_PointOnSurface(c.geom))"
    )
    assert outside == 0


async def test_component_outside_every_grid(dsn: str, pg: asyncpg.Connection) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    comps = LATTICE.components(5)
    geoms = list(comps.geometries)
    geoms[2] = shapely.Point(110.5, 32.5)
    report = await import_layer(dsn, "components", data(geoms, **comps.columns))
    assert kinds(report) == {2: {"outside_grids"}}
    assert "110.500000 32.500000" in report.problems[0].message
    assert await pg.fetchval("SELECT count(*) FROM component") == 0


async def test_unknown_references(dsn: str) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    comps = LATTICE.components(4)
    codes = list(comps.columns["code"])
    codes[0] = "4203230199000001"  # class C0199 is not in the dictionary
    report = await import_layer(
        dsn,
        "components",
        data(
            list(comps.geometries),
            code=codes,
            maintainer_unit_code=[None, "NOPE", "SW01", None],
            category_code=[None, None, None, "E0104"],
            grid_code=[None, None, "420323009009009", None],
        ),
    )
    got = kinds(report)
    assert got == {
        0: {"unknown_reference"},
        1: {"unknown_reference"},
        2: {"unknown_reference"},
        3: {"bad_value", "unknown_reference"},  # E0104 is an event class, and not the class in the code
    }
    messages = {p.index: p.message for p in report.problems}
    assert "C0199" in messages[0] and "NOPE" in messages[1] and "420323009009009" in messages[2]
    assert "E0104" in messages[3]
    assert "there is no component class C0199 in the database" in messages[0]

    grids = await import_layer(
        dsn, "grids", data([LATTICE.box(0, 0, 1, 1)], code=["420323003001001"], name=["不存在的社区"])
    )
    assert kinds(grids) == {0: {"unknown_reference"}}
    assert "community 420323003001" in grids.problems[0].message


async def test_database_error_becomes_a_problem(
    dsn: str, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    before = await pg.fetchval("SELECT count(*) FROM component")

    async def no_check(conn: asyncpg.Connection, batch: object) -> None:
        return None

    monkeypatch.setattr(service, "_check_references", no_check)
    comps = LATTICE.components(3)
    report = await import_layer(
        dsn, "components", data(list(comps.geometries), **comps.columns, owner_unit_code=["SW01", "GHOST", None])
    )
    assert not report.ok
    [problem] = report.problems
    assert problem.kind == "unknown_reference"
    assert "foreign key" in problem.message and "GHOST" in problem.message
    assert await pg.fetchval("SELECT count(*) FROM component") == before


async def test_bulk_mode_rebuilds_indexes_and_keeps_keys(
    dsn: str, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await import_layer(dsn, "grids", LATTICE.grids())).ok
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'component' ORDER BY 1"
    before = await pg.fetch(indexes)
    monkeypatch.setattr(repository, "BULK_MIN_ROWS", 1)
    comps = LATTICE.components(2000)
    report = await import_layer(
        dsn, "components", data(list(comps.geometries), **comps.columns, maintainer_unit_code=["SW01"] * 2000)
    )
    assert report.ok, report.to_text()
    assert report.inserted == 2000
    assert await pg.fetch(indexes) == before
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pg.execute("UPDATE component SET grid_code = '420323009009009' WHERE code = $1", comps.columns["code"][0])
    # all exist now: the upsert path in bulk mode; a column the file lacks (maintainer) is left as it was
    again = await import_layer(dsn, "components", data(list(comps.geometries), **comps.columns, status=["破损"] * 2000))
    assert (again.inserted, again.updated) == (0, 2000), again.to_text()
    assert await pg.fetchval("SELECT count(*) FROM component WHERE maintainer_unit_code = 'SW01'") == 2000
    assert await pg.fetchval("SELECT count(*) FROM component WHERE status = 'damaged'") == 2000
    assert await pg.fetch(indexes) == before


async def test_units_with_parents_in_the_file(dsn: str, pg: asyncpg.Connection) -> None:
    area = LATTICE.box(0, 0, 4, 4)
    report = await import_layer(
        dsn,
        "units",
        data(
            [area, None, None, None],
            code=["ZS-WATER", "ZS-W-1", "ZS-W-2", "CITY-2"],
            name=["竹山水务", "一所", "二所", "新局"],
            kind=["water", "water", "water", "bureau"],
            parent_code=[None, "ZS-WATER", "SW01", None],
            region_code=["420323", None, None, None],
        ),
    )
    assert report.ok, report.to_text()
    rows = {r["code"]: r for r in await pg.fetch("SELECT code, level, ST_GeometryType(service_area) t FROM unit")}
    assert rows["ZS-WATER"]["level"] == 1 and rows["ZS-WATER"]["t"] == "ST_MultiPolygon"
    assert rows["ZS-W-1"]["level"] == 2 and rows["ZS-W-1"]["t"] is None
    assert rows["ZS-W-2"]["level"] == 3

    bad = await import_layer(
        dsn,
        "units",
        data(
            [None, None],
            code=["X1", "X2"],
            name=["a", "b"],
            kind=["bureau", "spaceship"],
            parent_code=["NOWHERE", None],
            level=[2, 2],
        ),
    )
    assert kinds(bad) == {0: {"unknown_reference"}, 1: {"bad_value"}}
    too_deep = await import_layer(
        dsn, "units", data([None], code=["ZS-W-2-A"], name=["组"], kind=["water"], parent_code=["ZS-W-2"])
    )
    assert kinds(too_deep) == {0: {"bad_value"}}
    assert "level 3, the lowest" in too_deep.problems[0].message


async def test_regions_promote_polygons_and_derive_level(dsn: str, pg: asyncpg.Connection) -> None:
    report = await import_layer(
        dsn,
        "regions",
        data(
            [LATTICE.box(0, 8, 4, 12), LATTICE.box(4, 8, 8, 12)],
            code=["420323001003", "420323002003"],
            name=["新社区", "另一个"],
            level=[None, "street"],
        ),
    )
    assert kinds(report) == {1: {"bad_value"}}
    ok = await import_layer(dsn, "regions", data([LATTICE.box(0, 8, 4, 12)], code=["420323001003"], name=["新社区"]))
    assert ok.ok, ok.to_text()
    row = await pg.fetchrow(
        "SELECT level, parent_code, ST_GeometryType(geom) t, area_m2 FROM region WHERE code = '420323001003'"
    )
    assert (row["level"], row["parent_code"], row["t"]) == ("community", "420323001", "ST_MultiPolygon")
    assert row["area_m2"] == pytest.approx(160_000, rel=0.01)


async def test_pipelines_types_and_values(dsn: str, pg: asyncpg.Connection) -> None:
    a = shapely.LineString([(LON0, LAT0), (LON0 + DEG_LON, LAT0)])
    b = shapely.MultiLineString([[(LON0, LAT0 - DEG_LAT), (LON0 + DEG_LON, LAT0 - DEG_LAT)]])
    report = await import_layer(
        dsn,
        "pipelines",
        data(
            [a, b],
            code=["GS-001", "GS-002"],
            kind=["给水", "gas"],
            diameter_mm=["300", 150.0],
            owner_unit_code=["SW01", None],
            year_built=[1998, None],
        ),
    )
    assert report.ok, report.to_text()
    rows = await pg.fetch("SELECT code, kind, diameter_mm, ST_GeometryType(geom) t FROM pipeline ORDER BY code")
    assert [(r["kind"], r["diameter_mm"], r["t"]) for r in rows] == [
        ("water", 300, "ST_LineString"),
        ("gas", 150, "ST_LineString"),
    ]
    bad = await import_layer(
        dsn,
        "pipelines",
        data(
            [LATTICE.box(0, 0, 1, 1), a, a],
            code=["P1", "P2", "P3"],
            kind=["water", "oil", "water"],
            diameter_mm=[100, 100, -5],
        ),
    )
    assert kinds(bad) == {0: {"wrong_geometry_type"}, 1: {"bad_value"}, 2: {"bad_value"}}
    assert "Polygon" in bad.problems[0].message


async def test_missing_columns_and_read_errors(dsn: str) -> None:
    grids = LATTICE.grids()
    no_name = await import_layer(dsn, "grids", data(list(grids.geometries), code=grids.columns["code"]))
    assert [(p.index, p.kind) for p in no_name.problems] == [(None, "missing_field")]
    assert "'name'" in no_name.problems[0].message
    geoms = list(grids.geometries)
    geoms[5] = None
    broken = LayerData(np.array(geoms, dtype=object), grids.columns, {5: "unparsable geometry"})
    report = await import_layer(dsn, "grids", broken)
    assert kinds(report) == {5: {"read_error"}}


async def test_projected_coordinates_are_caught(dsn: str) -> None:
    report = await import_layer(
        dsn, "grids", data([shapely.box(385_000, 3_567_000, 385_100, 3_567_100)], code=["420323001001001"], name=["x"])
    )
    assert kinds(report) == {0: {"invalid_geometry"}}
    assert "projected" in report.problems[0].message


async def test_report_text_groups_and_limits(dsn: str) -> None:
    grids = LATTICE.grids()
    codes = [c[:12] + c[13:] for c in grids.columns["code"]]  # 14-digit CJ/T 213 style
    report = await import_layer(dsn, "grids", data(list(grids.geometries), code=codes, name=grids.columns["name"]))
    text = report.to_text(limit=3)
    assert text.splitlines()[0].startswith("grids: REJECTED, nothing written: 64 problems")
    assert "malformed_code (64):" in text
    assert "… and 61 more" in text
    assert len(text.splitlines()) == 1 + 1 + 3 + 1
