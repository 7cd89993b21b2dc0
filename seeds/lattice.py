"""The metric lattice of 100 m cells: footprint, projection to WGS84, contiguous compact partitions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray

#: Side of a unit grid in metres (10,000 m² cells).
CELL_M = 100.0
#: Centre of the county seat of Zhushan (竹山县城关镇), WGS84.
CENTRE_LON, CENTRE_LAT = 110.23, 32.22
#: Local transverse Mercator on the centre: metric work happens here (scale error < 5e-6 within 20 km).
LOCAL_TM = f"+proj=tmerc +lat_0={CENTRE_LAT} +lon_0={CENTRE_LON} +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
#: Squared Gaussian mean radius at the centre (scale factor of the projection: k = 1 + x²/2R²).
_R2 = 6378137.0**2 * (1 - 0.00669438) / (1 - 0.00669438 * math.sin(math.radians(CENTRE_LAT)) ** 2) ** 2
_ASPECT = 1.6  # the footprint is longer west-east, like the Du river (堵河) valley

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@cache
def _to_wgs84() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS.from_proj4(LOCAL_TM), "EPSG:4326", always_xy=True)


def to_wgs84(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Local metric coordinates → lon/lat (vectorized)."""
    lon, lat = _to_wgs84().transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


@dataclass(frozen=True)
class Lattice:
    """Cells (row 0 = north, column 0 = west) inside `mask`; vertex (r, c) sits at x_west + 100c, y_north - 100r."""

    mask: BoolArray
    rho: FloatArray  # normalized distance of each cell centre from the centre (0 = centre, ≈1 = edge)
    x_west: float
    y_north: float
    vlon: FloatArray  # (ny + 1, nx + 1) lon of every lattice vertex, computed once
    vlat: FloatArray

    @property
    def ny(self) -> int:
        return int(self.mask.shape[0])

    @property
    def nx(self) -> int:
        return int(self.mask.shape[1])

    def vertex_x(self, cols: Any) -> FloatArray:
        return self.x_west + CELL_M * np.asarray(cols, dtype=np.float64)

    def vertex_y(self, rows: Any) -> FloatArray:
        return self.y_north - CELL_M * np.asarray(rows, dtype=np.float64)

    def locate(self, x: FloatArray, y: FloatArray, margin: float = 1.0) -> tuple[IntArray, IntArray, BoolArray]:
        """(row, col, ok) of the cells holding points; ok = inside the footprint and ≥ `margin` m from cell edges."""
        fx = (x - self.x_west) / CELL_M
        fy = (self.y_north - y) / CELL_M
        cols = np.floor(fx).astype(np.int64)
        rows = np.floor(fy).astype(np.int64)
        m = margin / CELL_M
        ok = (cols >= 0) & (cols < self.nx) & (rows >= 0) & (rows < self.ny)
        ok &= (fx - cols >= m) & (cols + 1 - fx >= m) & (fy - rows >= m) & (rows + 1 - fy >= m)
        ok[ok] = self.mask[rows[ok], cols[ok]]
        return rows, cols, ok

    def cell_area_m2(self, cols: IntArray) -> FloatArray:
        """Ellipsoidal area of cells: 10,000 m² divided by the squared scale factor of the projection."""
        x = self.x_west + CELL_M * (cols + 0.5)
        k = 1.0 + x * x / (2.0 * _R2)
        return np.asarray(CELL_M * CELL_M / (k * k))


def build_lattice(n_cells: int, rng: np.random.Generator) -> Lattice:
    """A smooth, contiguous, hole-free footprint of about `n_cells` cells centred on the county seat."""
    phases = rng.uniform(0.0, 2.0 * math.pi, 3)
    amps = np.array([0.05, 0.04, 0.025])
    a = math.sqrt(n_cells * _ASPECT / (4 * 0.927))  # superellipse (p = 4) fills 92.7 % of its box
    mask: BoolArray = np.zeros((1, 1), dtype=bool)
    rho: FloatArray = np.zeros((1, 1))
    for _ in range(6):
        half_x = math.ceil(a * 1.15) + 1
        half_y = math.ceil(a / _ASPECT * 1.15) + 1
        rows, cols = np.mgrid[0 : 2 * half_y, 0 : 2 * half_x]
        u = (cols + 0.5 - half_x) / a
        v = (half_y - rows - 0.5) / (a / _ASPECT)
        theta = np.arctan2(v, u)
        edge = 1.0 + sum(
            amp * np.sin((k + 2) * theta + ph) for k, (amp, ph) in enumerate(zip(amps, phases, strict=True))
        )
        rho = (u**4 + v**4) ** 0.25 / edge
        mask = _clean_mask(rho <= 1.0)
        count = int(mask.sum())
        if abs(count - n_cells) <= max(2, n_cells // 500):
            break
        a *= math.sqrt(n_cells / count)
    ny, nx = mask.shape
    x_west = -CELL_M * (nx // 2)
    y_north = CELL_M * (ny // 2)
    vx = x_west + CELL_M * np.arange(nx + 1, dtype=np.float64)
    vy = y_north - CELL_M * np.arange(ny + 1, dtype=np.float64)
    gx, gy = np.meshgrid(vx, vy)
    vlon, vlat = to_wgs84(gx, gy)
    return Lattice(
        mask=mask, rho=np.asarray(rho, dtype=np.float64), x_west=x_west, y_north=y_north, vlon=vlon, vlat=vlat
    )


def _clean_mask(mask: BoolArray) -> BoolArray:
    """The largest 4-connected part of `mask`, with its holes filled."""
    labels = np.where(mask, 0, -1).astype(np.int64)
    comp = components(labels)
    if (comp >= 0).any():
        sizes = np.bincount(comp[comp >= 0])
        mask = comp == int(sizes.argmax())
    padded = np.pad(~mask, 1, constant_values=True)
    outside_comp = components(np.where(padded, 0, -1).astype(np.int64))
    outside = outside_comp == outside_comp[0, 0]
    return np.asarray(~outside[1:-1, 1:-1])


def components(labels: IntArray) -> IntArray:
    """4-connected components of equal, non-negative labels: a component id per cell (-1 where label < 0)."""
    ny, nx = labels.shape
    idx = np.arange(ny * nx, dtype=np.int64).reshape(ny, nx)
    same_h = (labels[:, :-1] == labels[:, 1:]) & (labels[:, :-1] >= 0)
    same_v = (labels[:-1, :] == labels[1:, :]) & (labels[:-1, :] >= 0)
    u = np.concatenate([idx[:, :-1][same_h], idx[:-1, :][same_v]])
    w = np.concatenate([idx[:, 1:][same_h], idx[1:, :][same_v]])
    parent = idx.ravel().copy()
    while u.size:
        pu, pw = parent[u], parent[w]
        differ = pu != pw
        if not differ.any():
            break
        np.minimum.at(parent, np.maximum(pu, pw)[differ], np.minimum(pu, pw)[differ])
        while True:  # pointer jumping until every cell points at its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    comp = parent.reshape(ny, nx)
    return np.where(labels >= 0, comp, -1)


def partition(mask: BoolArray, k: int, rng: np.random.Generator, iters: int = 12) -> IntArray:
    """Split the cells of `mask` into `k` compact, 4-contiguous parts of similar size.

    Lloyd iterations, then a power-diagram weight adjustment to balance sizes, then stray fragments are
    merged into a neighbouring part. Parts are numbered north→south, then west→east by their centroid.
    """
    rows, cols = np.nonzero(mask)
    n = rows.size
    k = max(1, min(k, n))
    labels = np.full(mask.shape, -1, dtype=np.int64)
    if k == 1:
        labels[rows, cols] = 0
        return labels
    pts = np.column_stack([cols + 0.5, rows + 0.5]).astype(np.float64)
    centres = pts[np.sort(rng.choice(n, k, replace=False))]
    weights = np.zeros(k)
    px, py = pts[:, :1], pts[:, 1:]
    target = n / k
    for it in range(iters + 20):
        d2 = (px - centres[:, 0]) ** 2 + (py - centres[:, 1]) ** 2 - weights
        assign = d2.argmin(1)
        counts = np.bincount(assign, minlength=k).astype(np.float64)
        if it < iters:
            for j in np.flatnonzero(counts == 0):  # re-seed an empty part at the worst-served cell
                far = int(d2.min(1).argmax())
                centres[j] = pts[far]
                assign[far] = j
            counts = np.bincount(assign, minlength=k).astype(np.float64)
            sums = np.zeros((k, 2))
            np.add.at(sums, assign, pts)
            centres = sums / np.maximum(counts, 1.0)[:, None]
        else:  # balance: grow small parts, shrink big ones (convex power-diagram cells)
            weights += 0.3 * target * (1.0 - counts / target)
    labels[rows, cols] = assign
    labels = make_contiguous(labels)
    return _renumber(labels)


def make_contiguous(labels: IntArray) -> IntArray:
    """Merge every fragment not connected to the largest piece of its part into a neighbouring part."""
    labels = labels.copy()
    for _ in range(10):
        comp = components(labels)
        inside = labels >= 0
        ids, labs = comp[inside], labels[inside]
        sizes = np.bincount(ids, minlength=comp.size)
        order = np.lexsort((-sizes[ids], labs))
        first = np.ones(order.size, dtype=bool)
        first[1:] = labs[order][1:] != labs[order][:-1]
        main = np.zeros(comp.size, dtype=bool)
        main[ids[order][first]] = True
        stray = inside & ~main[np.where(inside, comp, 0)]
        if not stray.any():
            return labels
        labels[stray] = -2
        while (labels == -2).any():
            before = int((labels == -2).sum())
            for shifted in _neighbours(labels):
                take = (labels == -2) & (shifted >= 0)
                labels[take] = shifted[take]
            if int((labels == -2).sum()) == before:
                raise RuntimeError("footprint is not connected")
    raise RuntimeError("could not make partition contiguous")


def _neighbours(a: IntArray) -> list[IntArray]:
    """Each cell's northern, southern, western and eastern neighbour value (-1 beyond the edge)."""
    north, south, west, east = (np.full_like(a, -1) for _ in range(4))
    north[1:] = a[:-1]
    south[:-1] = a[1:]
    west[:, 1:] = a[:, :-1]
    east[:, :-1] = a[:, 1:]
    return [north, south, west, east]


def _renumber(labels: IntArray) -> IntArray:
    """Relabel parts 0..k-1 ordered north→south, then west→east by centroid."""
    inside = labels >= 0
    rows, cols = np.nonzero(inside)
    labs = labels[inside]
    k = int(labs.max()) + 1
    counts = np.maximum(np.bincount(labs, minlength=k), 1)
    cr = np.bincount(labs, weights=rows, minlength=k) / counts
    cc = np.bincount(labs, weights=cols, minlength=k) / counts
    present = np.bincount(labs, minlength=k) > 0
    order = [j for j in np.lexsort((cc, np.round(cr, 1))) if present[j]]
    remap = np.full(k, -1, dtype=np.int64)
    remap[np.array(order, dtype=np.int64)] = np.arange(len(order))
    out = np.full_like(labels, -1)
    out[inside] = remap[labs]
    return out
