"""The administrative tree (district → streets → communities), unit grids and duty grids on the lattice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon

from grid_mgmt.imports.service import LayerData
from seeds.lattice import BoolArray, IntArray, Lattice, partition
from seeds.params import CityParams, load_json, rng

GeomArray = NDArray[np.object_]

LAND_USES = (
    "居住用地",
    "商业服务业设施用地",
    "公共管理与公共服务设施用地",
    "工业用地",
    "道路与交通设施用地",
    "绿地与广场用地",
    "水域",
)
WATER = LAND_USES.index("水域")
# probabilities of the first six land uses in the centre, the middle ring and the edge of town
_LAND_USE_P = np.array(
    [
        [0.40, 0.30, 0.15, 0.00, 0.07, 0.08],
        [0.55, 0.12, 0.12, 0.05, 0.06, 0.10],
        [0.40, 0.05, 0.08, 0.25, 0.07, 0.15],
    ]
)
GRADES = ("一级", "二级", "三级")
GRID_VALID_FROM = dt.date(2024, 1, 1)


@dataclass(frozen=True)
class Street:
    """A street (街道), town (镇) or township (乡): 9-digit code."""

    code: str
    name: str


@dataclass(frozen=True)
class Community:
    """A community (社区) or village (村): 12-digit code; `street` indexes Admin.streets."""

    code: str
    name: str
    street: int

    @property
    def village(self) -> bool:
        return self.name.endswith("村")


@dataclass(frozen=True)
class Admin:
    """Regions and unit grids. Grid arrays are ordered by grid code (community, then serial)."""

    lattice: Lattice
    district_code: str
    district_name: str
    streets: list[Street]
    communities: list[Community]
    cell_grid: IntArray  # (ny, nx): index of the grid in each cell, -1 outside the footprint
    grid_rows: IntArray
    grid_cols: IntArray
    grid_community: IntArray
    grid_codes: list[str]
    grid_land_use: IntArray  # index into LAND_USES
    grid_geoms: GeomArray
    community_geoms: GeomArray
    street_geoms: GeomArray
    district_geom: MultiPolygon

    @property
    def grid_street(self) -> IntArray:
        streets = np.array([c.street for c in self.communities], dtype=np.int64)
        return np.asarray(streets[self.grid_community])


def build_admin(params: CityParams, lattice: Lattice) -> Admin:
    """Streets, communities and unit grids partitioning the footprint; geometries unions of lattice cells."""
    names = load_json("names.json")
    district_code: str = names["district"]["code"]
    street_pool = _street_names(names, params.streets)
    r = rng(params, 2)
    street_of = partition(lattice.mask, params.streets, r)
    centre = (lattice.ny // 2, lattice.nx // 2)
    seat = int(street_of[centre]) if street_of[centre] >= 0 else 0
    order = [seat] + [s for s in range(params.streets) if s != seat]  # the county seat takes the first name
    streets = [Street(district_code + street_pool[i][0], street_pool[i][1]) for i in range(params.streets)]
    street_idx = np.full_like(street_of, -1)
    for new, old in enumerate(order):
        street_idx[street_of == old] = new

    sizes = np.bincount(street_idx[street_idx >= 0], minlength=params.streets)
    quotas = _apportion(params.communities, sizes)
    roots: list[str] = names["community_roots"]
    community_of = np.full_like(street_idx, -1)
    communities: list[Community] = []
    r = rng(params, 3)
    for s, street in enumerate(streets):
        sub, (r0, c0) = _crop(street_idx == s)
        labels = partition(sub, int(quotas[s]), r)
        k = int(labels.max()) + 1
        village = int(street.code[6:]) >= 200  # 乡 have villages (村, 200-399), others communities (社区, 001-199)
        if k > 199:
            raise ValueError(f"{street.name} would get {k} communities; at most 199 fit its code range")
        pool = roots[:k] if s == 0 else [roots[i] for i in r.permutation(len(roots))[:k]]
        pool += [f"{roots[i % len(roots)]}{i // len(roots) + 2}" for i in range(len(pool), k)]
        for j in range(k):
            number = (200 if village else 1) + j
            name = pool[j] + ("村" if village else "社区")
            communities.append(Community(f"{street.code}{number:03d}", name, s))
        window = community_of[r0 : r0 + sub.shape[0], c0 : c0 + sub.shape[1]]
        inside = labels >= 0
        window[inside] = labels[inside] + (len(communities) - k)

    rows, cols = np.nonzero(community_of >= 0)
    comm = community_of[rows, cols]
    order_g = np.lexsort((cols, rows, comm))  # community, then north→south, then west→east
    rows, cols, comm = rows[order_g], cols[order_g], comm[order_g]
    starts = np.searchsorted(comm, np.arange(len(communities)))
    serial = np.arange(comm.size) - starts[comm] + 1
    if serial.max() > 999:
        raise ValueError("a community has more than 999 unit grids; raise the number of communities")
    grid_codes = [f"{communities[c].code}{s:03d}" for c, s in zip(comm.tolist(), serial.tolist(), strict=True)]
    cell_grid = np.full(lattice.mask.shape, -1, dtype=np.int64)
    cell_grid[rows, cols] = np.arange(rows.size)

    grid_geoms = _cell_polygons(lattice, rows, cols)
    community_geoms = _unions(grid_geoms, comm, len(communities))
    comm_street = np.array([c.street for c in communities], dtype=np.int64)
    street_geoms = _unions(community_geoms, comm_street, len(streets))
    district = _as_multi(shapely.coverage_union_all(street_geoms))
    land_use = _land_use(params, lattice, rows, cols)
    return Admin(
        lattice=lattice,
        district_code=district_code,
        district_name=names["district"]["name"],
        streets=streets,
        communities=communities,
        cell_grid=cell_grid,
        grid_rows=rows,
        grid_cols=cols,
        grid_community=comm,
        grid_codes=grid_codes,
        grid_land_use=land_use,
        grid_geoms=grid_geoms,
        community_geoms=community_geoms,
        street_geoms=street_geoms,
        district_geom=district,
    )


def _street_names(names: dict[str, Any], n: int) -> list[tuple[str, str]]:
    """(3-digit serial, name) of `n` streets: the named pool, then 街道 named after community roots (009–099)."""
    pool = [(code, name) for code, name in names["streets"]]
    codes = {code for code, _ in pool}
    taken = {name for _, name in pool}
    free = [f"{i:03d}" for i in range(1, 100) if f"{i:03d}" not in codes]
    roots = [r for r in names["community_roots"] if r + "街道" not in taken]
    pool += [(code, root + "街道") for code, root in zip(free, roots, strict=False)]
    if n > len(pool):
        raise ValueError(f"at most {len(pool)} streets can be named; lower the scale")
    return pool[:n]


def _apportion(total: int, sizes: NDArray[Any]) -> IntArray:
    """`total` split in proportion to `sizes` (largest remainder), at least 1 each."""
    share = total * sizes / sizes.sum()
    out = np.maximum(np.floor(share).astype(np.int64), 1)
    for i in np.argsort(-(share - np.floor(share)), kind="stable"):
        if out.sum() >= total:
            break
        out[i] += 1
    return np.asarray(out, dtype=np.int64)


def _crop(mask: BoolArray) -> tuple[BoolArray, tuple[int, int]]:
    rows, cols = np.nonzero(mask)
    r0, c0 = int(rows.min()), int(cols.min())
    return mask[r0 : int(rows.max()) + 1, c0 : int(cols.max()) + 1], (r0, c0)


def _cell_polygons(lattice: Lattice, rows: IntArray, cols: IntArray) -> GeomArray:
    """Counter-clockwise squares (SW, SE, NE, NW) built from the shared vertex arrays."""
    corners = [(rows + 1, cols), (rows + 1, cols + 1), (rows, cols + 1), (rows, cols), (rows + 1, cols)]
    coords = np.stack([np.stack([lattice.vlon[a, b], lattice.vlat[a, b]], axis=-1) for a, b in corners], axis=1)
    return np.asarray(shapely.polygons(coords), dtype=object)


def _as_multi(geom: Any) -> MultiPolygon:
    if geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    if geom.geom_type != "MultiPolygon" or not geom.is_valid:
        raise ValueError(f"union of lattice cells gave an unexpected {geom.geom_type}")
    return geom


def _unions(parts: GeomArray, owner: IntArray, k: int) -> GeomArray:
    """MultiPolygon per owner: coverage union (cells share exact vertices, so it is exact and fast)."""
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(k + 1))
    out = np.empty(k, dtype=object)
    for j in range(k):
        out[j] = _as_multi(shapely.coverage_union_all(parts[order[bounds[j] : bounds[j + 1]]]))
    return out


def _land_use(params: CityParams, lattice: Lattice, rows: IntArray, cols: IntArray) -> IntArray:
    """Land use per grid: denser and more commercial in the centre, industry at the edge, a river band."""
    r = rng(params, 4)
    rho = lattice.rho[rows, cols]
    ring = np.digitize(rho, [0.35, 0.7])
    cum = np.cumsum(_LAND_USE_P[ring], axis=1)
    u = r.random(rows.size)
    uses = (u[:, None] > cum).sum(axis=1)
    phase = r.uniform(0, 2 * np.pi)
    river_row = lattice.ny * (0.62 + 0.08 * np.sin(2 * np.pi * (cols + 0.5) / (0.7 * lattice.nx) + phase))
    uses[np.abs(rows + 0.5 - river_row) < 0.6] = WATER
    return np.asarray(uses, dtype=np.int64)


def regions_layer(admin: Admin) -> LayerData:
    """District, streets and communities, parents first."""
    codes = [admin.district_code] + [s.code for s in admin.streets] + [c.code for c in admin.communities]
    names = [admin.district_name] + [s.name for s in admin.streets] + [c.name for c in admin.communities]
    levels = ["district"] + ["street"] * len(admin.streets) + ["community"] * len(admin.communities)
    parents: list[str | None] = [None] + [admin.district_code] * len(admin.streets)
    parents += [admin.streets[c.street].code for c in admin.communities]
    geoms = np.empty(len(codes), dtype=object)
    geoms[0] = admin.district_geom
    geoms[1 : 1 + len(admin.streets)] = admin.street_geoms
    geoms[1 + len(admin.streets) :] = admin.community_geoms
    return LayerData(geometries=geoms, columns={"code": codes, "name": names, "level": levels, "parent_code": parents})


def grids_layer(admin: Admin) -> LayerData:
    """Unit grids with name, community, land use, management grade and responsible body."""
    full_names = [admin.streets[c.street].name + c.name for c in admin.communities]
    bodies = [
        n + ("村民委员会" if c.village else "居民委员会") for n, c in zip(full_names, admin.communities, strict=True)
    ]
    comm = admin.grid_community.tolist()
    grade = np.digitize(admin.lattice.rho[admin.grid_rows, admin.grid_cols], [0.35, 0.7]).tolist()
    n = len(admin.grid_codes)
    return LayerData(
        geometries=admin.grid_geoms,
        columns={
            "code": admin.grid_codes,
            "name": [f"{full_names[c]}第{code[-3:]}网格" for c, code in zip(comm, admin.grid_codes, strict=True)],
            "community_code": [admin.communities[c].code for c in comm],
            "valid_from": [GRID_VALID_FROM] * n,
            "land_use": [LAND_USES[u] for u in admin.grid_land_use.tolist()],
            "management_grade": [GRADES[g] for g in grade],
            "responsible_body": [bodies[c] for c in comm],
        },
    )


def duty_grids(admin: Admin, params: CityParams) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Duty grids of about `duty_grid_size` contiguous unit grids inside one community, and (grid, duty) links."""
    r = rng(params, 5)
    duties: list[dict[str, Any]] = []
    links: list[tuple[str, str]] = []
    order = np.argsort(admin.grid_community, kind="stable")
    bounds = np.searchsorted(admin.grid_community[order], np.arange(len(admin.communities) + 1))
    for j, community in enumerate(admin.communities):
        idx = order[bounds[j] : bounds[j + 1]]
        rows, cols = admin.grid_rows[idx], admin.grid_cols[idx]
        r0, c0 = int(rows.min()), int(cols.min())
        sub = np.zeros((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), dtype=bool)
        sub[rows - r0, cols - c0] = True
        k = max(1, round(idx.size / params.duty_grid_size))
        labels = partition(sub, k, r)[rows - r0, cols - c0]
        street = admin.streets[community.street].name
        for d in range(int(labels.max()) + 1):
            code = f"DG{community.code[6:]}{d + 1:02d}"
            duties.append(
                {"code": code, "name": f"{street}{community.name}第{d + 1}责任网格", "community_code": community.code}
            )
        for g, d in zip(idx.tolist(), labels.tolist(), strict=True):
            links.append((admin.grid_codes[g], f"DG{community.code[6:]}{d + 1:02d}"))
    return duties, links
