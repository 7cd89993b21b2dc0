"""Patrol shifts: who may do what, the checks on fixes and check-ins, and one writer per shift at a time."""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from geo.crs import from_wgs84_array, to_wgs84
from geo.errors import GeoInputError
from geo.validate import check_lonlat
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.errors import Conflict, DomainError, InvalidInput, NotFound
from grid_mgmt.lib.pagination import check_limit, decode_cursor, encode_cursor
from grid_mgmt.lib.schemas import ItemPage
from grid_mgmt.patrols import repository as repo
from grid_mgmt.patrols import rules
from grid_mgmt.patrols.schemas import (
    CheckInCreate,
    CheckInRead,
    Crs,
    LineString,
    PatrolRead,
    PointBatch,
    PointsResult,
    SkippedPoint,
    TrackFeature,
    TrackProperties,
)
from grid_mgmt.regions import service as regions
from grid_mgmt.regions.locator import GridLocator
from grid_mgmt.regions.schemas import LocateRead


class Forbidden(DomainError):
    """The caller may not do this to this patrol."""

    status_code = 403


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- who may do what -----------------------------------------------------------------------------------------


async def _head(conn: AsyncConnection, patrol_id: int, *, lock: bool = False) -> repo.Head:
    head = await repo.head(conn, patrol_id, lock=lock)
    if head is None:
        raise NotFound(f"no patrol with id {patrol_id}")
    return head


def _own(head: repo.Head, principal: Principal) -> None:
    """Only the worker whose shift it is writes to it."""
    if head.user_id != principal.user_id:
        raise Forbidden(f"patrol {head.id} belongs to another worker; only that worker can change it")


def _open(head: repo.Head) -> None:
    if head.ended_at is not None:
        raise Conflict(
            f"patrol {head.id} ended at {head.ended_at.isoformat()}; it takes no more points or check-ins",
            extra={"patrol_id": head.id, "ended_at": head.ended_at.isoformat()},
        )


async def _may_read(conn: AsyncConnection, head: repo.Head, principal: Principal) -> None:
    """The worker reads their own shifts; supervisors and admins all; leaders those of their district."""
    if head.user_id == principal.user_id or principal.sees_all:
        return
    if principal.has("leader") and (
        principal.district_code is None or await repo.user_district(conn, head.user_id) == principal.district_code
    ):
        return
    raise Forbidden(f"patrol {head.id} belongs to another worker")


def _device_time(value: dt.datetime | None, now: dt.datetime, field: str) -> dt.datetime | None:
    """A device time for the start or end of a shift: not ahead of the server, not older than a day."""
    if value is None:
        return None
    if value > now + rules.CLOCK_SKEW:
        raise InvalidInput(
            f"{field} {value.isoformat()} is in the future (server time {now.isoformat()})", extra={"field": field}
        )
    if value < now - rules.MAX_BACKDATE:
        raise InvalidInput(f"{field} {value.isoformat()} is more than {rules.MAX_BACKDATE} ago", extra={"field": field})
    return value


# --- shifts ----------------------------------------------------------------------------------------------------


async def start(engine: AsyncEngine, principal: Principal, started_at: dt.datetime | None = None) -> PatrolRead:
    """Open a shift for the caller; 409 naming the open one (`extra.patrol_id`) when there is one."""
    started_at = _device_time(started_at, utcnow(), "started_at")
    async with engine.begin() as conn:
        patrol_id = await repo.start(conn, principal.user_id, started_at)
        if patrol_id is None:
            open_id = await repo.open_patrol_id(conn, principal.user_id)
            raise Conflict(
                f"you already have an open patrol (id {open_id}); end it before starting another",
                extra={"patrol_id": open_id},
            )
        read = await repo.read(conn, patrol_id)
    assert read is not None
    return read


async def end(
    engine: AsyncEngine, principal: Principal, patrol_id: int, ended_at: dt.datetime | None = None
) -> PatrolRead:
    """Close the caller's shift. Ending an ended shift again changes nothing (a phone's retry is safe)."""
    ended_at = _device_time(ended_at, utcnow(), "ended_at")
    async with engine.begin() as conn:
        head = await _head(conn, patrol_id, lock=True)
        _own(head, principal)
        if head.ended_at is None:
            if ended_at is not None:
                last = await repo.last_fix_at(conn, patrol_id)
                if ended_at < head.started_at or (last is not None and ended_at < last):
                    raise InvalidInput(
                        f"ended_at {ended_at.isoformat()} is before the shift's start or its last point",
                        extra={"field": "ended_at"},
                    )
            await repo.end(conn, patrol_id, ended_at)
        read = await repo.read(conn, patrol_id)
    assert read is not None
    return read


async def get(engine: AsyncEngine, principal: Principal, patrol_id: int) -> PatrolRead:
    async with engine.connect() as conn:
        await _may_read(conn, await _head(conn, patrol_id), principal)
        read = await repo.read(conn, patrol_id)
    assert read is not None
    return read


async def list_patrols(
    engine: AsyncEngine,
    principal: Principal,
    *,
    user: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    is_open: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    default_limit: int = 100,
    max_limit: int = 1000,
) -> ItemPage[PatrolRead]:
    """Newest first. Workers list their own shifts; supervisors and admins everyone's; leaders their district's."""
    size = check_limit(limit, default=default_limit, maximum=max_limit)
    after = decode_cursor(cursor)
    if after is not None and not after.isdigit():
        raise InvalidInput("cursor is not one this API issued", extra={"field": "cursor"})
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a UTC offset, e.g. 2025-03-01T00:00:00+08:00", extra={"field": name})
    user_id: int | None = None
    district: str | None = None
    if principal.sees_all:
        pass
    elif principal.has("leader"):
        district = principal.district_code
    elif user is not None and user != principal.username:
        raise Forbidden("workers see only their own patrols")
    else:
        user_id = principal.user_id
    async with engine.connect() as conn:
        rows = await repo.list_page(
            conn,
            user_id=user_id,
            username=user,
            district_code=district,
            since=since,
            until=until,
            is_open=is_open,
            before_id=int(after) if after is not None else None,
            limit=size,
        )
    more = len(rows) > size
    rows = rows[:size]
    return ItemPage(items=rows, next_cursor=encode_cursor(str(rows[-1].id)) if more and rows else None)


# --- fixes -----------------------------------------------------------------------------------------------------


async def add_points(
    engine: AsyncEngine,
    principal: Principal,
    patrol_id: int,
    batch: PointBatch,
    *,
    buffer_m: float = 2000.0,
    now: dt.datetime | None = None,
) -> PointsResult:
    """Store the good fixes of a batch, say why each bad one was skipped, and rebuild the track.

    Idempotent: a fix whose `at` is stored already counts as a duplicate and changes nothing; fixes may come in
    any order. Uploads to one shift are serialised by a row lock, so the speed check sees every earlier fix.
    """
    if len(batch.points) > rules.MAX_BATCH:
        raise InvalidInput(
            f"a batch holds at most {rules.MAX_BATCH} points; got {len(batch.points)}: send them in several batches",
            extra={"field": "points", "max_items": rules.MAX_BATCH},
        )
    now = now or utcnow()
    async with engine.begin() as conn:
        head = await _head(conn, patrol_id, lock=True)
        _own(head, principal)
        _open(head)
        extent = await repo.district_extent(conn)
        area = rules.Area.around(extent, buffer_m) if extent is not None else None
        fixes: list[rules.Fix] = []
        skips: list[rules.Skip] = []
        for i, point in enumerate(batch.points):
            checked = rules.check_point(point, i, now=now, started_at=head.started_at, area=area)
            if isinstance(checked, rules.Fix):
                fixes.append(checked)
            else:
                skips.append(checked)
        stored: list[rules.Fix] = []
        if fixes:
            stored = await repo.fixes_around(conn, patrol_id, min(f.at for f in fixes), max(f.at for f in fixes))
        fresh, duplicates = rules.without_duplicates(fixes, (s.at for s in stored))
        kept, too_fast = rules.drop_implausible(fresh, stored)
        inserted = await repo.insert_fixes(conn, patrol_id, kept)
        duplicates += len(kept) - inserted
        figures = (
            await repo.recompute(conn, patrol_id, head.user_id) if inserted else await repo.figures(conn, patrol_id)
        )
    skipped = sorted(skips + too_fast, key=lambda s: s.index)
    return PointsResult(
        accepted=inserted,
        duplicates=duplicates,
        skipped=len(skipped),
        skipped_points=[SkippedPoint(index=s.index, at=s.at, reason=s.reason, detail=s.detail) for s in skipped],
        point_count=figures.point_count,
        distance_m=figures.distance_m,
        grids_visited=figures.grids_visited,
        share_visited=figures.share_visited,
    )


async def track(engine: AsyncEngine, principal: Principal, patrol_id: int, crs: Crs = "wgs84") -> TrackFeature:
    """The track as a GeoJSON Feature with the time of every vertex; coordinates in `crs` (WGS84 by default)."""
    async with engine.connect() as conn:
        head = await _head(conn, patrol_id)
        await _may_read(conn, head, principal)
        rows = await repo.track_fixes(conn, patrol_id)
        figures = await repo.figures(conn, patrol_id)
    geometry = None
    if len(rows) >= 2:
        lons, lats = from_wgs84_array([r[0] for r in rows], [r[1] for r in rows], crs)
        geometry = LineString(coordinates=[(float(x), float(y)) for x, y in zip(lons, lats, strict=True)])
    props = TrackProperties(
        patrol_id=head.id,
        user_id=head.user_id,
        started_at=head.started_at,
        ended_at=head.ended_at,
        distance_m=figures.distance_m,
        crs=crs,
        times=[r[2] for r in rows] if geometry is not None else [],
    )
    return TrackFeature(id=str(head.id), geometry=geometry, properties=props)


# --- check-ins -------------------------------------------------------------------------------------------------


async def _grid_code(engine: AsyncEngine, locator: GridLocator | None, lon: float, lat: float) -> str | None:
    """The unit grid covering a WGS84 point (smallest code on a shared edge), None outside every grid."""
    try:
        found = await regions.locate(engine, locator, lon, lat, "wgs84")
    except NotFound:
        return None
    return msgspec.json.decode(found, type=LocateRead).grid.code


async def check_in(
    engine: AsyncEngine,
    locator: GridLocator | None,
    principal: Principal,
    patrol_id: int,
    body: CheckInCreate,
    *,
    buffer_m: float = 2000.0,
    now: dt.datetime | None = None,
) -> tuple[CheckInRead, bool]:
    """Store a check-in with its unit grid; (check-in, True) when new, (the stored one, False) on a replay."""
    now = now or utcnow()
    check_lonlat(body.lon, body.lat)
    lon, lat = to_wgs84(body.lon, body.lat, body.crs)
    if body.at > now + rules.CLOCK_SKEW:
        raise InvalidInput(
            f"at {body.at.isoformat()} is in the future (server time {now.isoformat()})", extra={"field": "at"}
        )
    async with engine.connect() as conn:
        head = await _head(conn, patrol_id)
        extent = await repo.district_extent(conn)
    _own(head, principal)
    if body.at < head.started_at - rules.EARLY_GRACE:
        raise InvalidInput(
            f"at {body.at.isoformat()} is before the shift started ({head.started_at.isoformat()})",
            extra={"field": "at"},
        )
    area = rules.Area.around(extent, buffer_m) if extent is not None else None
    if area is not None and not area.contains(lon, lat):
        raise GeoInputError(area.outside(body.lon, body.lat, body.crs), field="lon")
    grid_code = await _grid_code(engine, locator, lon, lat)
    async with engine.begin() as conn:
        head = await _head(conn, patrol_id, lock=True)
        existing = await repo.checkin_at(conn, patrol_id, body.at)
        if existing is not None:  # a retry, even after the shift ended
            return existing, False
        _open(head)
        return await repo.add_checkin(conn, patrol_id, body.at, lon, lat, grid_code, body.note), True


async def list_checkins(engine: AsyncEngine, principal: Principal, patrol_id: int) -> list[CheckInRead]:
    async with engine.connect() as conn:
        await _may_read(conn, await _head(conn, patrol_id), principal)
        return await repo.checkins(conn, patrol_id)
