"""Pure rules for GPS fixes: per-fix checks, duplicates and the implied-speed filter (no I/O)."""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geo.crs import to_wgs84
from geo.errors import GeoInputError
from geo.measure import distance_m
from geo.validate import check_lonlat
from grid_mgmt.patrols.schemas import PointIn, SkipReason

MAX_BATCH = 1000
"""Most fixes one upload may carry."""
MAX_ACCURACY_M = 100.0
"""Fixes whose stated accuracy is worse than this are dropped."""
MAX_SPEED_MPS = 50.0
"""A fix implying faster movement (180 km/h) from or to its neighbour in time is dropped."""
CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far ahead of the server's clock a device time may be."""
EARLY_GRACE = dt.timedelta(minutes=5)
"""How long before the shift start a fix is still taken (the phone started GPS before the shift)."""
MAX_BACKDATE = dt.timedelta(hours=24)
"""How far back a shift may be started or ended by device time (offline phones)."""

_M_PER_DEG = 111_320.0


@dataclass(frozen=True, slots=True)
class Area:
    """The jurisdiction's bounding box grown by a buffer: a cheap guard against absurd fixes (0,0, swapped axes)."""

    minlon: float
    minlat: float
    maxlon: float
    maxlat: float

    @classmethod
    def around(cls, extent: tuple[float, float, float, float], buffer_m: float) -> Area:
        minlon, minlat, maxlon, maxlat = extent
        dlat = buffer_m / _M_PER_DEG
        dlon = buffer_m / (_M_PER_DEG * max(math.cos(math.radians(max(abs(minlat), abs(maxlat)))), 0.01))
        return cls(minlon - dlon, minlat - dlat, maxlon + dlon, maxlat + dlat)

    def contains(self, lon: float, lat: float) -> bool:
        return self.minlon <= lon <= self.maxlon and self.minlat <= lat <= self.maxlat

    def outside(self, lon: float, lat: float, crs: str) -> str:
        """Why an input point (in `crs`) that is not inside is refused, spotting swapped axes."""
        return f"({lon}, {lat}) is far outside the managed area" + self.swap_hint(lon, lat, crs)

    def swap_hint(self, lon: float, lat: float, crs: str) -> str:
        """A hint when the input point (in `crs`) would be inside with longitude and latitude swapped."""
        if -90 <= lon <= 90 and -180 <= lat <= 180 and self.contains(*to_wgs84(lat, lon, crs)):
            return f"; longitude and latitude look swapped (did you mean ({lat}, {lon})?)"
        return ""


@dataclass(frozen=True, slots=True)
class Fix:
    """A checked fix in WGS84; `index` is its position in the batch (-1 for one already stored)."""

    index: int
    at: dt.datetime
    lon: float
    lat: float
    accuracy_m: float | None = None
    speed_mps: float | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """A fix that is not stored, and why."""

    index: int
    at: dt.datetime
    reason: SkipReason
    detail: str


def _finite_nonneg(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and value >= 0)


def check_point(
    point: PointIn, index: int, *, now: dt.datetime, started_at: dt.datetime, area: Area | None
) -> Fix | Skip:
    """The fix in WGS84, or why it is dropped: bad or far-away coordinates, bad time, bad accuracy or speed."""

    def skip(reason: SkipReason, detail: str) -> Skip:
        return Skip(index=index, at=point.at, reason=reason, detail=detail)

    try:
        check_lonlat(point.lon, point.lat)
        lon, lat = to_wgs84(point.lon, point.lat, point.crs)
    except GeoInputError as exc:
        hint = area.swap_hint(point.lon, point.lat, point.crs) if area is not None else ""
        return skip("invalid_coordinates", exc.message + hint)
    if area is not None and not area.contains(lon, lat):
        return skip("outside_area", area.outside(point.lon, point.lat, point.crs))
    if point.at > now + CLOCK_SKEW:
        return skip("future", f"at {_iso(point.at)} is in the future (server time {_iso(now)})")
    if point.at < started_at - EARLY_GRACE:
        return skip("before_start", f"at {_iso(point.at)} is before the shift started ({_iso(started_at)})")
    if not _finite_nonneg(point.accuracy_m):
        return skip("invalid_accuracy", f"accuracy_m must be a finite number ≥ 0, got {point.accuracy_m}")
    if point.accuracy_m is not None and point.accuracy_m > MAX_ACCURACY_M:
        return skip("inaccurate", f"accuracy {point.accuracy_m:g} m is worse than {MAX_ACCURACY_M:g} m")
    if not _finite_nonneg(point.speed_mps):
        return skip("invalid_speed", f"speed_mps must be a finite number ≥ 0, got {point.speed_mps}")
    return Fix(index, point.at, lon, lat, point.accuracy_m, point.speed_mps)


def without_duplicates(fixes: Iterable[Fix], stored_at: Iterable[dt.datetime]) -> tuple[list[Fix], int]:
    """The fixes in time order with one per `at` (the first sent wins; stored ones win over all), and how many
    were dropped as duplicates."""
    seen = set(stored_at)
    out: list[Fix] = []
    dropped = 0
    for fix in sorted(fixes, key=lambda f: (f.at, f.index)):
        if fix.at in seen:
            dropped += 1
            continue
        seen.add(fix.at)
        out.append(fix)
    return out, dropped


def implied_speed(a: Fix, b: Fix) -> float:
    """Metres per second needed to get from a to b, beyond what their stated accuracies explain (≥ 1 s apart)."""
    slack = (a.accuracy_m or 0.0) + (b.accuracy_m or 0.0)
    moved = max(0.0, distance_m(a.lon, a.lat, b.lon, b.lat) - slack)
    return moved / max(abs((b.at - a.at).total_seconds()), 1.0)


def drop_implausible(fixes: Sequence[Fix], stored: Sequence[Fix]) -> tuple[list[Fix], list[Skip]]:
    """Keep the new fixes (time-ordered, no duplicates) reachable at ≤ MAX_SPEED_MPS from the kept fix before
    them and from the stored fix after them; stored fixes (time-ordered) are trusted.

    A wrong fix that was kept only blocks new fixes until walking from it at MAX_SPEED_MPS becomes possible,
    so one glitch cannot poison the rest of a shift (absurd positions never get in: see `Area`).
    """
    stored_at = [s.at for s in stored]
    kept: list[Fix] = []
    skipped: list[Skip] = []
    for fix in fixes:
        i = bisect.bisect_left(stored_at, fix.at)
        before = stored[i - 1] if i > 0 else None
        if kept and (before is None or kept[-1].at > before.at):
            before = kept[-1]
        after = stored[i] if i < len(stored) else None
        reason = None
        for other in (before, after):
            if other is not None and (speed := implied_speed(other, fix)) > MAX_SPEED_MPS:
                reason = (
                    f"getting here from the fix at {_iso(other.at)} takes {speed:.0f} m/s, more than "
                    f"{MAX_SPEED_MPS:g} m/s: the fix looks wrong"
                    if other is before
                    else f"getting from here to the fix at {_iso(other.at)} takes {speed:.0f} m/s, more than "
                    f"{MAX_SPEED_MPS:g} m/s: the fix looks wrong"
                )
                break
        if reason is None:
            kept.append(fix)
        else:
            skipped.append(Skip(fix.index, fix.at, "implausible_speed", reason))
    return kept, skipped


def _iso(value: dt.datetime) -> str:
    return value.isoformat()
