"""Streets along every third lattice line and the pipeline network of each kind laid under them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from grid_mgmt.imports.service import LayerData
from seeds.lattice import CELL_M, BoolArray, FloatArray, Lattice, to_wgs84
from seeds.params import CityParams, load_json, rng

#: Streets run along every ROAD_EVERY-th lattice line (blocks of 300 m); every TRUNK_EVERY-th is a trunk road.
ROAD_EVERY = 3
TRUNK_EVERY = 9

#: Kinds marked inner_only in seeds/data/pipelines.json (district heating) stop at this footprint radius.
INNER_RHO = 0.5


@dataclass(frozen=True)
class Roads:
    """Street segments between intersections (metric, centre line) and the intersections themselves."""

    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray
    horizontal: BoolArray
    trunk: BoolArray
    rho: FloatArray  # footprint radius at the segment midpoint
    nodes: FloatArray  # (n, 2) intersections

    @property
    def size(self) -> int:
        return int(self.x0.size)


@dataclass(frozen=True)
class Pipes:
    """Pipeline segments (metric) with their kind, plus the WGS84 layer."""

    kind: list[str]
    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray
    layer: LayerData


def build_roads(lattice: Lattice) -> Roads:
    """Segments of 3 cells along every third vertex row / column whose neighbouring cells are all in town."""
    ny, nx, mask = lattice.ny, lattice.nx, lattice.mask
    r_off, c_off = (ny // 2) % ROAD_EVERY, (nx // 2) % ROAD_EVERY
    segs: list[tuple[int, int, bool]] = []  # (vertex row, vertex col) of the start, horizontal?
    padded = np.pad(mask, 1, constant_values=False)  # padded[r + 1, c + 1] = mask[r, c]
    for r in range(r_off, ny + 1, ROAD_EVERY):
        for c in range(c_off, nx - ROAD_EVERY + 1, ROAD_EVERY):
            if padded[r : r + 2, c + 1 : c + 1 + ROAD_EVERY].all():  # cells above (r-1) and below (r)
                segs.append((r, c, True))
    for c in range(c_off, nx + 1, ROAD_EVERY):
        for r in range(r_off, ny - ROAD_EVERY + 1, ROAD_EVERY):
            if padded[r + 1 : r + 1 + ROAD_EVERY, c : c + 2].all():  # cells west (c-1) and east (c)
                segs.append((r, c, False))
    arr = np.array(segs, dtype=np.int64).reshape(-1, 3)
    vr, vc, horiz = arr[:, 0], arr[:, 1], arr[:, 2].astype(bool)
    x0, y0 = lattice.vertex_x(vc), lattice.vertex_y(vr)
    x1 = x0 + np.where(horiz, ROAD_EVERY * CELL_M, 0.0)
    y1 = y0 - np.where(horiz, 0.0, ROAD_EVERY * CELL_M)
    line = np.where(horiz, vr - ny // 2, vc - nx // 2)
    trunk = line % TRUNK_EVERY == 0
    mid_r = np.clip(np.where(horiz, vr, vr + ROAD_EVERY // 2), 0, ny - 1)
    mid_c = np.clip(np.where(horiz, vc + ROAD_EVERY // 2, vc), 0, nx - 1)
    nodes = np.unique(np.concatenate([np.column_stack([x0, y0]), np.column_stack([x1, y1])]), axis=0)
    return Roads(x0, y0, x1, y1, horiz, trunk, lattice.rho[mid_r, mid_c], nodes)


def pipe_specs() -> dict[str, dict[str, Any]]:
    """Per pipeline kind: code prefix, offset, diameters, materials, depth, pressure class, owner (data file)."""
    specs: dict[str, Any] = load_json("pipelines.json")
    return {k: v for k, v in specs.items() if k != "comment"}


def build_pipes(roads: Roads, params: CityParams) -> Pipes:
    """One pipeline segment per street segment and kind, offset from the centre line so that the segments of
    a kind meet at the offset intersections (a connected network per kind)."""
    r = rng(params, 6)
    kinds: list[str] = []
    parts: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = []
    names = ("code", "kind", "diameter_mm", "material", "depth_m", "pressure_class", "year_built")
    cols: dict[str, list[Any]] = {k: [] for k in (*names, "owner_unit_code", "maintainer_unit_code")}
    for kind, spec in pipe_specs().items():
        idx = np.flatnonzero(roads.rho < INNER_RHO) if spec.get("inner_only") else np.arange(roads.size)
        n, off = idx.size, float(spec["offset_m"])
        trunk = roads.trunk[idx]
        parts.append((roads.x0[idx] + off, roads.y0[idx] + off, roads.x1[idx] + off, roads.y1[idx] + off))
        kinds += [kind] * n
        trunk_mm, branch_mm = np.array(spec["trunk_mm"]), np.array(spec["branch_mm"])
        diam = np.where(
            trunk, trunk_mm[r.integers(trunk_mm.size, size=n)], branch_mm[r.integers(branch_mm.size, size=n)]
        )
        year = np.clip(np.round(1988 + 35 * roads.rho[idx] + r.normal(0, 5, n)), 1980, 2024).astype(np.int64)
        materials: list[str] = spec["materials"]
        cols["code"] += [f"{spec['prefix']}{i:06d}" for i in range(1, n + 1)]
        cols["kind"] += [kind] * n
        cols["diameter_mm"] += diam.tolist()
        cols["material"] += [materials[i] for i in r.integers(len(materials), size=n).tolist()]
        cols["depth_m"] += np.round(r.uniform(float(spec["depth_m"][0]), float(spec["depth_m"][1]), n), 2).tolist()
        cols["pressure_class"] += [spec["trunk_class"] if t else spec["branch_class"] for t in trunk.tolist()]
        cols["year_built"] += year.tolist()
        cols["owner_unit_code"] += [spec["owner"]] * n
        cols["maintainer_unit_code"] += [spec["owner"]] * n
    x0, y0, x1, y1 = (np.concatenate([p[i] for p in parts]) for i in range(4))
    lon0, lat0 = to_wgs84(x0, y0)
    lon1, lat1 = to_wgs84(x1, y1)
    coords = np.stack([np.column_stack([lon0, lat0]), np.column_stack([lon1, lat1])], axis=1)
    geoms = np.asarray(shapely.linestrings(coords), dtype=object)
    return Pipes(kinds, x0, y0, x1, y1, LayerData(geometries=geoms, columns=dict(cols)))
