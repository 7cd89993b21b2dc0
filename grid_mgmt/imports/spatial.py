"""Spatial rules, vectorized with shapely: which unit grid holds a component, does a grid leave its community."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from grid_mgmt.imports.checks import GeomArray, metres2_per_degree2

#: A grid may stick out of its community by at most this much (digitising slivers)...
MAX_OUTSIDE_M2 = 1.0
#: ...and by at most this share of its own area.
MAX_OUTSIDE_SHARE = 0.01


def anchor_points(geoms: GeomArray) -> GeomArray:
    """The point of each geometry used to find its grid: itself for points, else a point on its surface."""
    types = shapely.get_type_id(geoms)
    out: GeomArray = np.array(geoms, dtype=object, copy=True)
    other = np.flatnonzero((types != 0) & (types >= 0))
    if other.size:
        out[other] = shapely.point_on_surface(geoms[other])
    return out


def assign_grids(points: GeomArray, grid_geoms: GeomArray) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Index into `grid_geoms` of the grid containing each point (boundary included), -1 where none.

    A point on an edge shared by several grids gets the one with the smallest index, so callers pass the
    grids sorted by code to make the choice "smallest grid code", deterministic across runs.
    """
    n = len(points)
    result = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(grid_geoms) == 0:
        return result
    tree = shapely.STRtree(grid_geoms, node_capacity=4)
    present = np.flatnonzero(~shapely.is_missing(points))
    src, hit = tree.query(points[present])  # bounding boxes; exact test below (faster than predicate=)
    shapely.prepare(grid_geoms)
    inside = shapely.intersects_xy(
        grid_geoms[hit], shapely.get_x(points[present])[src], shapely.get_y(points[present])[src]
    )
    src, hit = src[inside], hit[inside]
    if src.size == 0:
        return result
    best = np.full(len(present), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, src, hit.astype(np.int64))
    found = best != np.iinfo(np.int64).max
    result[present[found]] = best[found]
    return result


def outside_area_m2(
    grids: GeomArray, communities: GeomArray
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """Per grid: the area (m²) lying outside its community (paired by position) and the grid's own area (m²)."""
    n = len(grids)
    outside = np.zeros(n, dtype=np.float64)
    lat = shapely.get_y(shapely.centroid(grids))
    scale = metres2_per_degree2(lat)
    area = shapely.area(grids) * scale
    if n == 0:
        return outside, area
    shapely.prepare(communities)  # no-op for the repeats: each community is prepared once
    covered = shapely.covers(communities, grids)
    todo = np.flatnonzero(~covered)
    if todo.size:
        diff = shapely.difference(grids[todo], communities[todo], grid_size=None)
        outside[todo] = shapely.area(diff) * scale[todo]
    return outside, area


def crossing(outside_m2: float, area_m2: float) -> bool:
    """True when a grid leaves its community by more than the tolerances allow."""
    return outside_m2 > MAX_OUTSIDE_M2 or outside_m2 > MAX_OUTSIDE_SHARE * area_m2
