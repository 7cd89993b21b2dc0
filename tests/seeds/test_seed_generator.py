"""The generated demo city: deterministic, the right size, valid codes and geometries, every role present."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely

from grid_mgmt.db.models.unit import UNIT_KINDS
from grid_mgmt.db.models.user import ROLES
from seeds.cli import DEMO_LOGINS, demo_logins
from seeds.generator import City, generate_city
from seeds.lattice import CELL_M, LOCAL_TM
from seeds.network import pipe_specs
from seeds.params import BENCH, DEMO, parse_scale


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city("demo")


def _col(layer: Any, name: str) -> list[Any]:
    return list(layer.columns[name])


def test_same_output_every_run(city: City) -> None:
    again = generate_city("demo")
    for name, layer in city.layers().items():
        other = again.layers()[name]
        assert layer.columns == other.columns, name
        assert (shapely.to_wkb(layer.geometries) == shapely.to_wkb(other.geometries)).all(), name
    assert city.users == again.users
    assert city.duty_grids == again.duty_grids
    assert city.duty_grid_grids == again.duty_grid_grids
    assert city.duty_grid_workers == again.duty_grid_workers
    assert city.categories == again.categories


def test_counts_near_targets(city: City) -> None:
    counts = city.counts()
    assert 1800 <= counts["grid"] <= 2200
    assert 19_000 <= counts["component"] <= 21_000
    levels = Counter(_col(city.regions, "level"))
    assert levels == {"district": 1, "street": 3, "community": 12}
    assert 15 <= counts["unit"] <= 30
    assert set(_col(city.units, "level")) == {1, 2, 3}
    assert set(_col(city.pipelines, "kind")) == set(pipe_specs())


def test_region_codes_and_tree(city: City) -> None:
    codes = _col(city.regions, "code")
    names = dict(zip(codes, _col(city.regions, "name"), strict=True))
    assert names["420323"] == "竹山县"
    assert {"420323100": "城关镇", "420323101": "宝丰镇", "420323200": "潘口乡"}.items() <= names.items()
    for code, parent, level in zip(codes, _col(city.regions, "parent_code"), _col(city.regions, "level"), strict=True):
        assert len(code) == {"district": 6, "street": 9, "community": 12}[level]
        assert (
            parent is None if level == "district" else (parent == code[:-3] and codes.index(parent) < codes.index(code))
        )
        if level == "community":
            serial = int(code[9:])
            village = int(code[6:9]) >= 200
            assert (200 <= serial <= 399) if village else (1 <= serial <= 199)
            assert names[code].endswith("村" if village else "社区")


def test_grid_codes_follow_community_and_position(city: City) -> None:
    codes = _col(city.grids, "code")
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[0-9]{15}", c) for c in codes)
    communities = set(
        c for c, lvl in zip(_col(city.regions, "code"), _col(city.regions, "level"), strict=True) if lvl == "community"
    )
    assert all(g[:12] == c and c in communities for g, c in zip(codes, _col(city.grids, "community_code"), strict=True))
    # serials run north→south by rows, then west→east within a row, from 001 without gaps
    to_tm = pyproj.Transformer.from_crs("EPSG:4326", pyproj.CRS.from_proj4(LOCAL_TM), always_xy=True)
    centroids = shapely.centroid(city.grids.geometries)
    x, y = to_tm.transform(shapely.get_x(centroids), shapely.get_y(centroids))
    rows = np.floor((y.max() - y) / CELL_M + 0.5).astype(int)
    cols = np.floor((x - x.min()) / CELL_M + 0.5).astype(int)
    by_community: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for code, r, c in zip(codes, rows.tolist(), cols.tolist(), strict=True):
        by_community[code[:12]].append((int(code[12:]), r, c))
    for members in by_community.values():
        members.sort()
        assert [s for s, _, _ in members] == list(range(1, len(members) + 1))
        positions = [(r, c) for _, r, c in members]
        assert positions == sorted(positions)
    names = _col(city.grids, "name")
    assert re.fullmatch(r"城关镇.+社区第001网格", names[0])


def test_grids_are_hectares_inside_their_community(city: City) -> None:
    geod = pyproj.Geod(ellps="WGS84")
    areas = np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in city.grids.geometries])
    assert ((areas > 9_500) & (areas < 10_500)).all()
    region_geom = dict(zip(_col(city.regions, "code"), city.regions.geometries, strict=True))
    community = np.array([region_geom[c] for c in _col(city.grids, "community_code")], dtype=object)
    assert shapely.covers(community, city.grids.geometries).all()
    # the communities tile the district exactly
    district = region_geom["420323"]
    assert abs(district.area - shapely.area(city.grids.geometries).sum()) < 1e-9 * district.area + 1e-12


def test_adjacent_grids_share_exact_vertices(city: City) -> None:
    coords = shapely.get_coordinates(city.grids.geometries)
    exact = np.unique(coords, axis=0)
    rounded = np.unique(np.round(coords, 7), axis=0)  # 7 decimals ≈ 1 cm: near-duplicates would collapse here
    assert len(exact) == len(rounded)
    assert len(exact) < len(coords) / 3  # each interior vertex is shared by four grids


def test_grid_attributes(city: City) -> None:
    for column in ("land_use", "management_grade", "responsible_body"):
        assert all(v for v in _col(city.grids, column)), column
    assert "水域" in _col(city.grids, "land_use")
    assert set(_col(city.grids, "management_grade")) == {"一级", "二级", "三级"}


def test_all_geometries_valid(city: City) -> None:
    for name, layer in city.layers().items():
        geoms = layer.geometries[~shapely.is_missing(layer.geometries)]
        assert shapely.is_valid(geoms).all(), name
    assert set(shapely.get_type_id(city.regions.geometries).tolist()) == {6}  # MultiPolygon
    assert set(shapely.get_type_id(city.grids.geometries).tolist()) == {3}  # Polygon
    assert set(shapely.get_type_id(city.pipelines.geometries).tolist()) == {1}  # LineString
    lon, lat = shapely.get_coordinates(city.regions.geometries[0]).mean(axis=0)
    assert abs(lon - 110.23) < 0.02 and abs(lat - 32.22) < 0.02


def test_component_codes_and_classes(city: City) -> None:
    classes = {c["code"]: c for c in city.categories if c["kind"] == "component"}
    codes = _col(city.components, "code")
    assert len(set(codes)) == len(codes)
    serials: dict[str, list[int]] = defaultdict(list)
    for code, category in zip(codes, _col(city.components, "category_code"), strict=True):
        assert re.fullmatch(r"420323[0-9]{10}", code)
        assert category in classes and code[6:10] == classes[category]["minor_code"]
        serials[category].append(int(code[10:]))
    for values in serials.values():
        assert sorted(values) == list(range(1, len(values) + 1))
    assert set(serials) == set(classes)  # every component class occurs
    types = {"point": 0, "line": 1, "polygon": 3}
    type_ids = shapely.get_type_id(city.components.geometries)
    for category, type_id in zip(_col(city.components, "category_code"), type_ids.tolist(), strict=True):
        assert types[classes[category]["geometry_type"]] == type_id


def test_components_lie_inside_their_grid(city: City) -> None:
    grid_geom = dict(zip(_col(city.grids, "code"), city.grids.geometries, strict=True))
    grids = np.array([grid_geom[g] for g in _col(city.components, "grid_code")], dtype=object)
    assert shapely.contains_properly(grids, city.components.geometries).all()


def test_component_units_and_attributes(city: City) -> None:
    units = dict(zip(_col(city.units, "code"), _col(city.units, "kind"), strict=True))
    for column in ("supervisor_unit_code", "owner_unit_code", "maintainer_unit_code"):
        assert {u for u in _col(city.components, column) if u is not None} <= set(units)
    kinds = dict(
        zip(_col(city.components, "category_code"), _col(city.components, "maintainer_unit_code"), strict=False)
    )
    assert units[kinds["C0101"]] == "water"
    assert units[kinds["C0102"]] == "drainage"
    assert units[kinds["C0111"]] == "gas"
    assert units[kinds["C0118"]] == "municipal"
    assert units[kinds["C0402"]] == "landscaping"
    assert units[kinds["C0305"]] == "sanitation"
    status = Counter(_col(city.components, "status"))
    assert status.most_common(1)[0][0] == "intact" and status["intact"] > 0.85 * sum(status.values())
    assert set(_col(city.components, "source")) == {"实测"}
    assert set(_col(city.components, "accuracy_class")) <= {"A", "B", "C"}
    assert all(isinstance(a, dict) for a in _col(city.components, "attributes"))


def test_covers_sit_on_pipelines_of_their_kind(city: City) -> None:
    kinds = np.array(_col(city.pipelines, "kind"))
    category = np.array(_col(city.components, "category_code"))
    for cover, kind in (("C0101", "water"), ("C0102", "sewage"), ("C0111", "gas"), ("C0110", "heat")):
        pipes = city.pipelines.geometries[kinds == kind]
        points = city.components.geometries[category == cover]
        tree = shapely.STRtree(pipes)
        _, dist = tree.query_nearest(points, return_distance=True, all_matches=False)
        assert (dist < 1e-7).all(), cover  # 1e-7° ≈ 1 cm


def test_pipelines(city: City) -> None:
    specs = pipe_specs()
    units = set(_col(city.units, "code"))
    codes = _col(city.pipelines, "code")
    assert len(set(codes)) == len(codes)
    for code, kind, owner in zip(
        codes, _col(city.pipelines, "kind"), _col(city.pipelines, "owner_unit_code"), strict=True
    ):
        assert code.startswith(specs[kind]["prefix"]) and owner == specs[kind]["owner"] and owner in units
    assert all(d > 0 for d in _col(city.pipelines, "diameter_mm"))
    lengths = pyproj.Geod(ellps="WGS84").line_lengths
    geom = city.pipelines.geometries[0]
    lon, lat = shapely.get_coordinates(geom).T
    assert abs(lengths(lon, lat)[0] - 300) < 0.5


def test_units_tree(city: City) -> None:
    codes = _col(city.units, "code")
    seen: set[str] = set()
    level_of: dict[str, int] = {}
    for code, kind, level, parent, region in zip(
        codes,
        _col(city.units, "kind"),
        _col(city.units, "level"),
        _col(city.units, "parent_code"),
        _col(city.units, "region_code"),
        strict=True,
    ):
        assert re.fullmatch(r"[0-9A-Za-z_-]{2,32}", code) and kind in UNIT_KINDS
        assert (parent is None) == (level == 1)
        if parent is not None:
            assert parent in seen and level_of[parent] == level - 1  # parents come first
        if kind == "street_office":
            assert region is not None and len(region) == 9
        seen.add(code)
        level_of[code] = level
    kinds = set(_col(city.units, "kind"))
    assert {"bureau", "water", "gas", "power", "telecom", "heating", "sanitation", "landscaping", "traffic"} <= kinds
    assert Counter(_col(city.units, "kind"))["street_office"] == 3


def test_duty_grids(city: City) -> None:
    grid_codes = _col(city.grids, "code")
    linked = [g for g, _ in city.duty_grid_grids]
    assert sorted(linked) == sorted(grid_codes)  # every grid in exactly one duty grid
    duty = {d["code"]: d for d in city.duty_grids}
    sizes = Counter(d for _, d in city.duty_grid_grids)
    for grid, code in city.duty_grid_grids:
        assert grid[:12] == duty[code]["community_code"]
    assert set(sizes) == set(duty)
    assert all(15 <= n <= 80 for n in sizes.values())
    assert 35 <= np.mean(list(sizes.values())) <= 45


def test_users_for_every_role(city: City) -> None:
    users = {u["username"]: u for u in city.users}
    assert len(users) == len(city.users)
    assert {r for u in city.users for r in u["roles"]} == set(ROLES)
    for name, role in (
        ("admin", "admin"),
        ("acceptor1", "acceptor"),
        ("leader1", "leader"),
        ("dispatcher1", "dispatcher"),
        ("supervisor1", "supervisor"),
    ):
        assert users[name]["roles"] == [role] and users[name]["district_code"] == "420323"
    for code in _col(city.units, "code"):
        assert users[f"unit-{code}"]["roles"] == ["unit_staff"] and users[f"unit-{code}"]["unit_code"] == code
    assert all(re.fullmatch(r"[A-Za-z0-9_.@-]{2,64}", u) for u in users)
    workers = Counter(d for d, _ in city.duty_grid_workers)
    assert set(workers) == {d["code"] for d in city.duty_grids}
    assert set(workers.values()) == {1, 2}
    assigned = {u for _, u in city.duty_grid_workers}
    assert {"worker1", "worker2"} <= assigned
    assert assigned == {u for u, v in users.items() if "worker" in v["roles"]}
    assert city.password == "demo" and all("password_hash" not in u for u in city.users)


def test_demo_logins(city: City) -> None:
    logins = city.demo_logins()
    names = {u for u, _, _ in logins}
    assert {"admin", "worker1", "worker2", "dispatcher1", "unit-U01"} <= names
    assert {r for _, r, _ in logins} == set(ROLES)
    assert {u for u, _, _ in DEMO_LOGINS} == {u for u, _, _ in demo_logins()}
    usernames = {u["username"] for u in city.users}
    assert names <= usernames


def test_scales() -> None:
    assert parse_scale("demo") == DEMO and parse_scale("BENCH") == BENCH
    small = parse_scale("0.01")
    assert small.grids == 1000 and small.components == 10_000 and small.communities == 5
    assert parse_scale(1.0).grids == BENCH.grids
    for bad in ("huge", "0", "-1", "nan"):
        with pytest.raises(ValueError):
            parse_scale(bad)
    tiny = generate_city(0.003)
    counts = tiny.counts()
    assert abs(counts["grid"] - 300) <= 6 and abs(counts["component"] - 3000) <= 30
    assert all(shapely.is_valid(tiny.regions.geometries))
