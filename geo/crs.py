"""Coordinate systems: WGS84 ⇄ GCJ-02 ⇄ BD-09 conversion and EPSG reprojection to WGS84."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Final, Literal, cast

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry.base import BaseGeometry

from geo.errors import GeoInputError
from geo.measure import distance_m

__all__ = [
    "CRS_NAMES",
    "WGS84_EPSG",
    "CrsName",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_epsg",
    "convert",
    "distance_m",
    "from_wgs84",
    "from_wgs84_array",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "geometry_from_wgs84",
    "geometry_to_wgs84",
    "normalize_crs",
    "out_of_china",
    "reprojector",
    "to_wgs84",
    "to_wgs84_array",
    "transformer_to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CrsName = Literal["wgs84", "gcj02", "bd09"]
CRS_NAMES: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

#: Storage SRID (WGS84 lon/lat).
WGS84_EPSG: Final = 4326
#: EPSG codes stored as-is: CGCS2000 (4490) differs from WGS84 by centimetres.
_IDENTITY_EPSG: Final = frozenset({4326, 4490})

_ALIASES: Final[dict[str, CrsName]] = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "wgs 84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "cgcs2000": "wgs84",
    "epsg:4490": "wgs84",
    "4490": "wgs84",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "bd09ll": "bd09",
}

# Krasovsky 1940 ellipsoid as used by the GCJ-02 obfuscation.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
_X_PI: Final = math.pi * 3000.0 / 180.0
_TOL: Final = 1e-9  # degrees (~0.1 mm)
_MAX_ITER: Final = 50
_EDGE_EPS: Final = 1e-8  # degrees; absorbs the iteration's rounding at the box edge

FloatArray = npt.NDArray[np.float64]


def normalize_crs(crs: str) -> CrsName:
    """Return the canonical name for a CRS name or alias (case-insensitive) or raise GeoInputError."""
    key = str(crs).strip().lower()
    name = _ALIASES.get(key)
    if name is None:
        raise GeoInputError(f"unknown crs {crs!r}; use one of {', '.join(CRS_NAMES)}", field="crs")
    return name


def out_of_china(lon: float, lat: float) -> bool:
    """True outside the rough China box where GCJ-02 is defined (there GCJ-02 equals WGS84)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _outside_loose(lon: float, lat: float) -> bool:
    """:func:`out_of_china` with the box grown by _EDGE_EPS, so inverse results on the edge count as inside."""
    e = _EDGE_EPS
    return not (72.004 - e <= lon <= 137.8347 + e and 0.8293 - e <= lat <= 55.8271 + e)


def _out_of_china_np(lon: FloatArray, lat: FloatArray, e: float = 0.0) -> npt.NDArray[np.bool_]:
    return ~((lon >= 72.004 - e) & (lon <= 137.8347 + e) & (lat >= 0.8293 - e) & (lat <= 55.8271 + e))


def _gcj_delta(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 offset (dlon, dlat) in degrees at a WGS84 point, ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    sx6 = math.sin(6.0 * x * math.pi)
    sx2 = math.sin(2.0 * x * math.pi)
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * sx6 + 20.0 * sx2) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * sx6 + 20.0 * sx2) * 2.0 / 3.0
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return dlon, dlat


def _gcj_delta_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vectorised twin of :func:`_gcj_delta`."""
    pi = np.pi
    x = lon - 105.0
    y = lat - 35.0
    sx6 = np.sin(6.0 * x * pi)
    sx2 = np.sin(2.0 * x * pi)
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += (20.0 * sx6 + 20.0 * sx2) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += (20.0 * sx6 + 20.0 * sx2) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * pi)
    return dlon, dlat


# --- scalar conversions -------------------------------------------------------------------------


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 → GCJ-02 (Chinese "Mars" coordinates used by AMap/Tencent). Identity outside China."""
    if out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → WGS84 by fixed-point iteration of the forward transform (converges to < 1e-9°).

    Near the edge of the China box the forward map is not one-to-one; the preimage inside the box
    is preferred, and points whose preimage would lie outside the box are returned unchanged.
    """
    wlon, wlat = lon, lat
    for _ in range(_MAX_ITER):
        dlon, dlat = _gcj_delta(wlon, wlat)
        elon = wlon + dlon - lon
        elat = wlat + dlat - lat
        wlon -= elon
        wlat -= elat
        if abs(elon) < _TOL and abs(elat) < _TOL:
            break
    if _outside_loose(wlon, wlat):
        return lon, lat
    return wlon, wlat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → BD-09 (Baidu)."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 → GCJ-02: the usual closed-form inverse, refined iteratively to < 1e-9°."""
    x = lon - 0.0065
    y = lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    glon, glat = z * math.cos(theta), z * math.sin(theta)
    for _ in range(_MAX_ITER):
        blon, blat = gcj02_to_bd09(glon, glat)
        elon, elat = blon - lon, blat - lat
        glon -= elon
        glat -= elat
        if abs(elon) < _TOL and abs(elat) < _TOL:
            break
    return glon, glat


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 → BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 → WGS84 (via GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84: Final[dict[CrsName, Callable[[float, float], tuple[float, float]]]] = {
    "wgs84": lambda lon, lat: (lon, lat),
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_WGS84: Final[dict[CrsName, Callable[[float, float], tuple[float, float]]]] = {
    "wgs84": lambda lon, lat: (lon, lat),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a point given in ``crs`` (wgs84/gcj02/bd09 or an alias) to WGS84."""
    return _TO_WGS84[normalize_crs(crs)](float(lon), float(lat))


def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a WGS84 point to ``crs`` (wgs84/gcj02/bd09 or an alias)."""
    return _FROM_WGS84[normalize_crs(crs)](float(lon), float(lat))


def convert(lon: float, lat: float, src: str, dst: str) -> tuple[float, float]:
    """Convert a point between any two of wgs84/gcj02/bd09."""
    s, d = normalize_crs(src), normalize_crs(dst)
    if s == d:
        return float(lon), float(lat)
    return from_wgs84(*to_wgs84(lon, lat, s), d)


# --- vectorised conversions ---------------------------------------------------------------------


def _wgs84_to_gcj02_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_delta_np(lon, lat)
    outside = _out_of_china_np(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def _gcj02_to_wgs84_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(_MAX_ITER):
        dlon, dlat = _gcj_delta_np(wlon, wlat)
        elon = wlon + dlon - lon
        elat = wlat + dlat - lat
        wlon -= elon
        wlat -= elat
        if not (np.nanmax(np.abs(elon), initial=0.0) >= _TOL or np.nanmax(np.abs(elat), initial=0.0) >= _TOL):
            break
    outside = _out_of_china_np(wlon, wlat, _EDGE_EPS)
    return np.where(outside, lon, wlon), np.where(outside, lat, wlat)


def _gcj02_to_bd09_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(_MAX_ITER):
        blon, blat = _gcj02_to_bd09_np(glon, glat)
        elon, elat = blon - lon, blat - lat
        glon -= elon
        glat -= elat
        if not (np.nanmax(np.abs(elon), initial=0.0) >= _TOL or np.nanmax(np.abs(elat), initial=0.0) >= _TOL):
            break
    return glon, glat


def to_wgs84_array(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`to_wgs84` over arrays of longitudes and latitudes."""
    name = normalize_crs(crs)
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if name == "wgs84":
        return x.copy(), y.copy()
    if name == "bd09":
        x, y = _bd09_to_gcj02_np(x, y)
    return _gcj02_to_wgs84_np(x, y)


def from_wgs84_array(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]:
    """Vectorised :func:`from_wgs84` over arrays of longitudes and latitudes."""
    name = normalize_crs(crs)
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if name == "wgs84":
        return x.copy(), y.copy()
    x, y = _wgs84_to_gcj02_np(x, y)
    if name == "bd09":
        return _gcj02_to_bd09_np(x, y)
    return x, y


def _xy_func(fn: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]) -> Callable[[Any], Any]:
    def apply(coords: FloatArray) -> FloatArray:
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return apply


def geometry_to_wgs84(geom: BaseGeometry, crs: str) -> BaseGeometry:
    """Convert every vertex of a lon/lat geometry given in ``crs`` (wgs84/gcj02/bd09) to WGS84."""
    name = normalize_crs(crs)
    if name == "wgs84":
        return geom
    return cast(BaseGeometry, shapely.transform(geom, _xy_func(lambda x, y: to_wgs84_array(x, y, name))))


def geometry_from_wgs84(geom: BaseGeometry, crs: str) -> BaseGeometry:
    """Convert every vertex of a WGS84 geometry to ``crs`` (wgs84/gcj02/bd09)."""
    name = normalize_crs(crs)
    if name == "wgs84":
        return geom
    return cast(BaseGeometry, shapely.transform(geom, _xy_func(lambda x, y: from_wgs84_array(x, y, name))))


# --- EPSG reprojection --------------------------------------------------------------------------


def check_epsg(code: int) -> pyproj.CRS:
    """Return the pyproj CRS for an EPSG code, or raise GeoInputError("unknown EPSG code N")."""
    if isinstance(code, bool) or not isinstance(code, int | np.integer) or code <= 0:
        raise GeoInputError(f"unknown EPSG code {code}", field="crs")
    try:
        crs = pyproj.CRS.from_epsg(int(code))
    except CRSError:
        raise GeoInputError(f"unknown EPSG code {code}", field="crs") from None
    if not (crs.is_geographic or crs.is_projected):
        raise GeoInputError(f"EPSG code {code} ({crs.name}) is not a horizontal coordinate system", field="crs")
    return crs


@functools.lru_cache(maxsize=64)
def transformer_to_wgs84(src_epsg: int) -> pyproj.Transformer | None:
    """Cached lon/lat-ordered Transformer from ``src_epsg`` to EPSG:4326; None when no-op (4326/4490)."""
    crs = check_epsg(src_epsg)
    if int(src_epsg) in _IDENTITY_EPSG:
        return None
    try:
        return pyproj.Transformer.from_crs(crs, WGS84_EPSG, always_xy=True)
    except ProjError as exc:  # pragma: no cover - depends on the PROJ database
        raise GeoInputError(f"cannot reproject from EPSG:{src_epsg}: {exc}", field="crs") from None


def reprojector(src_epsg: int) -> Callable[[BaseGeometry], BaseGeometry]:
    """Return a function reprojecting shapely geometries (or arrays of them) from ``src_epsg`` to 4326."""
    transformer = transformer_to_wgs84(src_epsg)
    if transformer is None:
        return lambda geom: geom

    def apply(coords: FloatArray) -> FloatArray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1], errcheck=False)
        return np.column_stack([x, y])

    def reproject(geom: BaseGeometry) -> BaseGeometry:
        return cast(BaseGeometry, shapely.transform(geom, apply))

    return reproject
