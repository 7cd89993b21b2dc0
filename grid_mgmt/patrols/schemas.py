"""Request and response structs of the patrol endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from grid_mgmt.lib.schemas import Schema

Crs = Literal["wgs84", "gcj02", "bd09"]
AwareDatetime = Annotated[
    dt.datetime, msgspec.Meta(tz=True, description="ISO 8601 with a UTC offset, e.g. 2025-03-01T08:30:00+08:00")
]


class PatrolStart(Schema):
    """Start a shift; `started_at` is the device time when the shift began offline (default: now)."""

    started_at: AwareDatetime | None = None


class PatrolEnd(Schema):
    """End a shift; `ended_at` is the device time when the shift ended offline (default: now)."""

    ended_at: AwareDatetime | None = None


class PatrolRead(Schema):
    """A shift: when, how far, and which of the worker's unit grids the track touched."""

    id: int
    user_id: int
    username: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    open: bool
    point_count: int
    checkin_count: int
    distance_m: float
    grids_visited: list[str]
    grid_count: int
    """How many unit grids the worker's duty grids hold (the denominator of `share_visited`)."""
    share_visited: float


class PointIn(Schema):
    """One GPS fix as the phone took it."""

    at: AwareDatetime
    lon: float
    lat: float
    crs: Crs = "wgs84"
    accuracy_m: float | None = None
    speed_mps: float | None = None


class PointBatch(Schema):
    """Up to 1,000 fixes in any order; fixes already stored (same `at`) are ignored."""

    points: list[PointIn]


SkipReason = Literal[
    "invalid_coordinates",
    "outside_area",
    "future",
    "before_start",
    "invalid_accuracy",
    "inaccurate",
    "invalid_speed",
    "implausible_speed",
]


class SkippedPoint(Schema):
    """A fix that was not stored, and why (`index` is its position in the batch)."""

    index: int
    at: dt.datetime
    reason: SkipReason
    detail: str


class PointsResult(Schema):
    """What happened to a batch, and the shift's figures after it."""

    accepted: int
    duplicates: int
    """Fixes with an `at` already stored (a re-sent batch): nothing changed for them."""
    skipped: int
    skipped_points: list[SkippedPoint]
    point_count: int
    distance_m: float
    grids_visited: list[str]
    share_visited: float


class CheckInCreate(Schema):
    """Check in at a place; re-sending the same `at` returns the stored check-in."""

    at: AwareDatetime
    lon: float
    lat: float
    crs: Crs = "wgs84"
    note: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class CheckInRead(Schema):
    """A stored check-in; `lon`/`lat` in WGS84, `grid_code` null outside every unit grid."""

    id: int
    patrol_id: int
    at: dt.datetime
    lon: float
    lat: float
    grid_code: str | None
    note: str | None


class TrackProperties(Schema):
    """The track's facts; `times[i]` is when the phone was at `coordinates[i]`."""

    patrol_id: int
    user_id: int
    started_at: dt.datetime
    ended_at: dt.datetime | None
    distance_m: float
    crs: Crs
    times: list[dt.datetime]


class LineString(Schema, kw_only=True):
    """GeoJSON LineString of [lon, lat] positions."""

    type: Literal["LineString"] = "LineString"
    coordinates: list[tuple[float, float]]


class TrackFeature(Schema, kw_only=True):
    """A GeoJSON Feature: the LineString of the accepted fixes in time order (null with fewer than 2)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: LineString | None
    properties: TrackProperties
