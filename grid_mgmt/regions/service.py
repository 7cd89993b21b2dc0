"""Locating a point in the city: crs conversion, checks, the in-memory index or the database."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from geo.crs import to_wgs84
from geo.errors import GeoInputError
from geo.validate import check_lonlat
from grid_mgmt.lib.errors import InvalidInput, NotFound
from grid_mgmt.lib.sql import Source, connected
from grid_mgmt.regions import repository as repo
from grid_mgmt.regions.locator import GridLocator
from grid_mgmt.regions.schemas import LocateRead, Place

T = TypeVar("T")


async def _find(engine: Source, locator: GridLocator | None, lon: float, lat: float) -> bytes | None:
    return await _look(engine, locator.lookup if locator is not None else None, msgspec.json.encode, lon, lat)


async def _find_place(engine: Source, locator: GridLocator | None, lon: float, lat: float) -> Place | None:
    return await _look(engine, locator.place if locator is not None else None, Place.of, lon, lat)


async def _look(
    engine: Source, index: Callable[[float, float], T | bool | None] | None, convert: Callable[[LocateRead], T],
    lon: float, lat: float,
) -> T | None:  # fmt: skip
    """The grid of a point from the process's `index` (False: no grid), else — no index, or it is catching up with
    a change — from the database, as `convert` makes it."""
    hit = index(lon, lat) if index is not None else None
    if hit is None:
        async with connected(engine) as conn:  # a caller holding a connection passes it
            read = await repo.locate_in_db(conn, lon, lat)
        return convert(read) if read is not None else None
    return None if isinstance(hit, bool) else hit


Finder = Callable[[Source, GridLocator | None, float, float], Awaitable[T | None]]


async def locate(engine: Source, locator: GridLocator | None, lon: float, lat: float, crs: str = "wgs84") -> bytes:
    """The encoded LocateRead for a point given in `crs`; 422 for bad or swapped coordinates, 404 outside.

    The hot path touches no database connection while the in-process index is fresh.
    """
    return await _checked(_find, engine, locator, lon, lat, crs)


async def place_reported(
    engine: Source, locator: GridLocator | None, lon: float, lat: float, crs: str = "wgs84"
) -> Place:
    """Where a reported place (a worker's or a citizen's report) falls, as the case records it; a point outside
    the city is bad input (422 naming `lon`), not a missing resource."""
    try:
        return await _checked(_find_place, engine, locator, lon, lat, crs)
    except NotFound as exc:
        raise InvalidInput(exc.detail, extra={"field": "lon"}) from None


async def _checked(find: Finder[T], engine: Source, locator: GridLocator | None, lon: float, lat: float, crs: str) -> T:
    try:
        check_lonlat(lon, lat)
    except GeoInputError:
        await _refuse_if_swapped(engine, locator, lon, lat, crs)
        raise
    wlon, wlat = to_wgs84(lon, lat, crs)
    found = await find(engine, locator, wlon, wlat)
    if found is not None:
        return found
    await _refuse_if_swapped(engine, locator, lon, lat, crs)
    raise NotFound(f"no unit grid covers lon={lon}, lat={lat} ({crs}); the point is outside the managed area")


async def _refuse_if_swapped(engine: Source, locator: GridLocator | None, lon: float, lat: float, crs: str) -> None:
    """422 saying so when (lat, lon) would be inside the city."""
    if not (math.isfinite(lon) and math.isfinite(lat) and -90 <= lon <= 90 and -180 <= lat <= 180):
        return
    slon, slat = to_wgs84(lat, lon, crs)
    if await _find(engine, locator, slon, slat) is not None:
        raise InvalidInput(
            f"no unit grid at lon={lon}, lat={lat}; longitude and latitude look swapped "
            f"(lon={lat}, lat={lon} is inside the city)",
            extra={"field": "lon"},
        )
