"""Distances, lengths and areas on the WGS84 ellipsoid / sphere, in metres."""

from __future__ import annotations

import math

import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["EARTH_RADIUS_M", "area_m2", "distance_m", "length_m"]

#: Mean Earth radius (IUGG) used by the haversine formula.
EARTH_RADIUS_M = 6_371_008.8

_GEOD = pyproj.Geod(ellps="WGS84")


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle (haversine) distance in metres between two lon/lat points in degrees.

    Accurate to about 0.5 % against the ellipsoid, which is plenty for "is it within N metres"
    checks and for comparing coordinate conversions at the centimetre level over short distances.
    """
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2.0) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def length_m(geom: BaseGeometry) -> float:
    """Geodesic length in metres of a lon/lat (Multi)LineString (perimeter for polygons)."""
    return float(_GEOD.geometry_length(geom))


def area_m2(geom: BaseGeometry) -> float:
    """Geodesic area in square metres of a lon/lat (Multi)Polygon; 0 for points and lines."""
    if shapely.get_dimensions(geom) < 2:
        return 0.0
    area, _perimeter = _GEOD.geometry_area_perimeter(geom)
    return abs(float(area))
