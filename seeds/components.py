"""Components (管理部件): points along streets and pipelines, railings, green spaces and car parks in grids."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import shapely

from grid_mgmt.imports.service import LayerData
from seeds.categories import load_categories
from seeds.lattice import CELL_M, FloatArray, IntArray, to_wgs84
from seeds.layout import COMMUNITY, PLACEMENTS, STREET, TEAM, Placement
from seeds.network import Pipes, Roads
from seeds.params import CityParams, rng
from seeds.regions import WATER, Admin
from seeds.units import SANITATION_TEAMS, Units

STATUSES = ("intact", "damaged", "missing", "abandoned", "removed")
_STATUS_P = (0.93, 0.045, 0.008, 0.012, 0.005)
SURVEY_START = np.datetime64("2023-03-01")
_MARGIN = 1.0  # points stay at least this far (m) from grid edges


class _Layout:
    """Generates metric geometry for the placements; every result lies strictly inside one grid."""

    def __init__(self, admin: Admin, roads: Roads, pipes: Pipes, r: np.random.Generator) -> None:
        self.admin, self.roads, self.pipes, self.r = admin, roads, pipes, r
        self.lattice = admin.lattice
        self.pipe_kind = np.array(pipes.kind)

    def points(self, p: Placement, n: int) -> tuple[FloatArray, FloatArray]:
        """`n` valid points (fewer only if the town is too small to hold them)."""
        xs: list[FloatArray] = []
        ys: list[FloatArray] = []
        have = 0
        for _ in range(8):
            want = max(16, int((n - have) * 1.3))
            x, y = self._candidates(p, want)
            _, _, ok = self.lattice.locate(x, y, _MARGIN)
            xs.append(x[ok])
            ys.append(y[ok])
            have += int(ok.sum())
            if have >= n or x.size == 0:
                break
        return np.concatenate(xs)[:n], np.concatenate(ys)[:n]

    def _candidates(self, p: Placement, m: int) -> tuple[FloatArray, FloatArray]:
        r = self.r
        if p.mode == "pipe":
            pool = np.arange(self.pipe_kind.size) if p.where == "any" else np.flatnonzero(self.pipe_kind == p.where)
            if pool.size == 0:  # a town too small for this network: no such covers
                return np.empty(0), np.empty(0)
            i = pool[r.integers(pool.size, size=m)]
            t = r.random(m)
            pp = self.pipes
            return pp.x0[i] + t * (pp.x1[i] - pp.x0[i]), pp.y0[i] + t * (pp.y1[i] - pp.y0[i])
        if p.mode in ("road", "corner") and self.roads.size == 0:
            return np.empty(0), np.empty(0)
        if p.mode == "road":
            rd = self.roads
            i = r.integers(rd.size, size=m)
            t = r.random(m)
            side = np.where(r.random(m) < 0.5, -1.0, 1.0) * (p.offset + r.uniform(-0.3, 0.3, m))
            h = rd.horizontal[i]
            x = rd.x0[i] + t * (rd.x1[i] - rd.x0[i]) + np.where(h, 0.0, side)
            y = rd.y0[i] + t * (rd.y1[i] - rd.y0[i]) + np.where(h, side, 0.0)
            return x, y
        if p.mode == "corner":
            nodes = self.roads.nodes
            i = r.integers(len(nodes), size=m)
            d = p.offset + r.uniform(-1.5, 1.5, (m, 2))
            sign = np.where(r.random((m, 2)) < 0.5, -1.0, 1.0)
            return nodes[i, 0] + sign[:, 0] * d[:, 0], nodes[i, 1] + sign[:, 1] * d[:, 1]
        if p.mode == "interior":
            g = self.cells(p, m)
            x0, y_top = self._cell_origin(g)
            return x0 + r.uniform(5, CELL_M - 5, m), y_top - r.uniform(5, CELL_M - 5, m)
        raise ValueError(f"unknown point placement mode {p.mode!r}")

    def cells(self, p: Placement, m: int, only: IntArray | None = None) -> IntArray:
        """Grid indices, twice as likely in the preferred land uses (or restricted to `only`)."""
        if only is not None and only.size:
            return np.asarray(only[self.r.integers(only.size, size=m)])
        weight = np.where(np.isin(self.admin.grid_land_use, p.land_uses), 2.0, 1.0)
        weight[self.admin.grid_land_use == WATER] = 0.05
        return self.r.choice(weight.size, size=m, p=weight / weight.sum())

    def _cell_origin(self, g: IntArray) -> tuple[FloatArray, FloatArray]:
        """West x and north y of grid cells."""
        return self.lattice.vertex_x(self.admin.grid_cols[g]), self.lattice.vertex_y(self.admin.grid_rows[g])

    def road_lines(self, p: Placement, n: int) -> tuple[FloatArray, IntArray]:
        """Railings 20-60 m long beside a street, each inside the one grid it runs along."""
        r, rd = self.r, self.roads
        if rd.size == 0:
            return np.empty((0, 2, 2)), np.empty(0, dtype=np.int64)
        i = r.integers(rd.size, size=n)
        cell = r.integers(3, size=n)
        side = np.where(r.random(n) < 0.5, -1.0, 1.0)
        length = r.uniform(20, 60, n)
        start = r.uniform(3, CELL_M - 3 - length)
        h = rd.horizontal[i]
        along0 = cell * CELL_M + start
        along1 = along0 + length
        # horizontal streets run east from (x0, y0); vertical ones run south from it
        ax0 = np.where(h, rd.x0[i] + along0, rd.x0[i] + side * p.offset)
        ay0 = np.where(h, rd.y0[i] + side * p.offset, rd.y0[i] - along0)
        ax1 = np.where(h, rd.x0[i] + along1, ax0)
        ay1 = np.where(h, ay0, rd.y0[i] - along1)
        coords = np.stack([np.column_stack([ax0, ay0]), np.column_stack([ax1, ay1])], axis=1)
        rows, cols, _ = self.lattice.locate((ax0 + ax1) / 2, (ay0 + ay1) / 2, 0.0)
        return coords, self.admin.cell_grid[rows, cols]

    def water_lines(self, p: Placement, n: int) -> tuple[FloatArray, IntArray]:
        """Railings along the river, inside river grids."""
        r = self.r
        water = np.flatnonzero(self.admin.grid_land_use == WATER)
        g = self.cells(p, n, only=water)
        x0, y_top = self._cell_origin(g)
        y = y_top - r.uniform(20, CELL_M - 20, n)
        a = x0 + r.uniform(4, 35, n)
        b = x0 + CELL_M - r.uniform(4, 35, n)
        coords = np.stack([np.column_stack([a, y]), np.column_stack([b, y])], axis=1)
        return coords, g

    def rectangles(self, p: Placement, n: int) -> tuple[FloatArray, IntArray]:
        """Rectangles of 15-70 m a side inside one grid (counter-clockwise rings)."""
        r = self.r
        g = self.cells(p, n)
        x0, y_top = self._cell_origin(g)
        w, h = r.uniform(15, 70, n), r.uniform(15, 70, n)
        left = x0 + r.uniform(4, CELL_M - 4 - w)
        top = y_top - r.uniform(4, CELL_M - 4 - h)
        right, bottom = left + w, top - h
        ring = [(left, bottom), (right, bottom), (right, top), (left, top), (left, bottom)]
        coords = np.stack([np.column_stack(c) for c in ring], axis=1)
        return coords, g


def _counts(total: int, weights: FloatArray) -> IntArray:
    share = total * weights / weights.sum()
    out = np.floor(share).astype(np.int64)
    rest = total - int(out.sum())
    out[np.argsort(-(share - out), kind="stable")[:rest]] += 1
    return np.asarray(out, dtype=np.int64)


def _variants(attrs: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    if not attrs:
        return [{}]
    keys = list(attrs)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(attrs[k] for k in keys))]


def _geometries(coords: FloatArray, kind: str) -> Any:
    """WGS84 shapely geometries from metric coordinates of shape (n, 2) points or (n, k, 2) lines/rings."""
    flat = coords.reshape(-1, 2)
    lon, lat = to_wgs84(flat[:, 0], flat[:, 1])
    ll = np.column_stack([lon, lat]).reshape(coords.shape)
    if kind == "point":
        return shapely.points(ll)
    if kind == "line":
        return shapely.linestrings(ll)
    return shapely.polygons(ll)


def build_components(params: CityParams, admin: Admin, roads: Roads, pipes: Pipes, units: Units) -> LayerData:
    """About `params.components` components over the standard classes, coded 420323 + class + 6-digit serial."""
    r = rng(params, 7)
    layout = _Layout(admin, roads, pipes, r)
    counts = _counts(params.components, np.array([p.weight for p in PLACEMENTS]))
    geoms: list[Any] = []
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "code",
            "category_code",
            "name",
            "grid_code",
            "supervisor_unit_code",
            "owner_unit_code",
            "maintainer_unit_code",
            "status",
            "survey_date",
            "change_date",
            "source",
            "accuracy_class",
            "attributes",
        )
    }
    names = {c["code"]: c["name"] for c in load_categories()}
    grid_street = admin.grid_street
    team = np.where(grid_street == 0, 0, 1)
    office = np.array(units.street_office, dtype=object)[grid_street]
    comm_office = np.array(
        [
            units.community_office.get(c, units.street_office[admin.communities[c].street])
            for c in range(len(admin.communities))
        ],
        dtype=object,
    )[admin.grid_community]
    for p, n in zip(PLACEMENTS, counts.tolist(), strict=True):
        if n == 0:
            continue
        if p.mode in ("line_road", "line_water"):
            coords, g = (layout.road_lines if p.mode == "line_road" else layout.water_lines)(p, n)
            key_x, key_y, kind = coords[:, 0, 0], coords[:, 0, 1], "line"
        elif p.mode == "polygon":
            coords, g = layout.rectangles(p, n)
            key_x, key_y, kind = coords[:, 0, 0], coords[:, 2, 1], "polygon"
        else:
            x, y = layout.points(p, n)
            rows, cols_, _ = admin.lattice.locate(x, y, _MARGIN)
            g, coords, key_x, key_y, kind = admin.cell_grid[rows, cols_], np.column_stack([x, y]), x, y, "point"
        order = np.lexsort((key_x, -key_y, g))  # serials follow grid codes, then north→south, west→east
        g, coords = g[order], coords[order]
        n = g.size
        geoms.append(_geometries(coords, kind))
        minor = p.category[1:]
        prefix = admin.district_code + minor
        cols["code"] += [f"{prefix}{i:06d}" for i in range(1, n + 1)]
        cols["category_code"] += [p.category] * n
        cols["name"] += [names[p.category]] * n
        cols["grid_code"] += [admin.grid_codes[i] for i in g.tolist()]
        for column, ref in (
            ("supervisor_unit_code", p.supervisor),
            ("owner_unit_code", p.owner),
            ("maintainer_unit_code", p.maintainer),
        ):
            if ref == STREET:
                cols[column] += office[g].tolist()
            elif ref == COMMUNITY:
                cols[column] += comm_office[g].tolist()
            elif ref == TEAM:
                cols[column] += [SANITATION_TEAMS[t] for t in team[g].tolist()]
            else:
                cols[column] += [ref] * n
        status = r.choice(len(STATUSES), size=n, p=_STATUS_P)
        survey = SURVEY_START + r.integers(0, 214, n).astype("timedelta64[D]")
        change = survey + r.integers(30, 400, n).astype("timedelta64[D]")
        cols["status"] += [STATUSES[s] for s in status.tolist()]
        cols["survey_date"] += survey.tolist()
        cols["change_date"] += [c if s else None for c, s in zip(change.tolist(), status.tolist(), strict=True)]
        cols["source"] += ["实测"] * n
        cols["accuracy_class"] += [p.accuracy] * n
        variants = _variants(p.attributes)
        cols["attributes"] += [variants[v] for v in r.integers(len(variants), size=n).tolist()]
    geometries = np.concatenate(geoms) if geoms else np.empty(0, dtype=object)
    return LayerData(geometries=np.asarray(geometries, dtype=object), columns=dict(cols))
