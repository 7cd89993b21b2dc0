"""SQL of the patrols feature: shifts, fixes, the track rebuilt in PostGIS, check-ins."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.lib.sql import text
from grid_mgmt.patrols.rules import Fix
from grid_mgmt.patrols.schemas import CheckInRead, PatrolRead

# The valid unit grids of a worker's duty grids (`:user_id`).
_WORKER_GRIDS = """
SELECT g.code, g.geom FROM duty_grid_worker w
JOIN duty_grid_grid dgg ON dgg.duty_grid_code = w.duty_grid_code
JOIN grid g ON g.code = dgg.grid_code AND (g.valid_to IS NULL OR g.valid_to >= CURRENT_DATE)
WHERE w.user_id = {user_id}
"""

_READ = f"""
SELECT p.id, p.user_id, u.username, p.started_at, p.ended_at, p.ended_at IS NULL AS open,
       (SELECT count(*) FROM patrol_point pp WHERE pp.patrol_id = p.id) AS point_count,
       (SELECT count(*) FROM patrol_checkin c WHERE c.patrol_id = p.id) AS checkin_count,
       p.distance_m, p.grids_visited,
       (SELECT count(DISTINCT m.code) FROM ({_WORKER_GRIDS.format(user_id="p.user_id")}) m) AS grid_count,
       p.share_visited
FROM patrol p JOIN app_user u ON u.id = p.user_id
"""

PIECE_FIXES = 200
"""Fixes per piece of track in the grid join."""

# Rebuild the track from every stored fix in time order (M = Unix seconds), its geodesic length (to the
# centimetre), and the worker's unit grids it touches. The grid join cuts the track into pieces of PIECE_FIXES
# fixes (each piece ends where the next starts, a lone fix is a piece by itself): small boxes for the GiST index
# on grid.geom, and cheap intersection tests however often the walk crosses itself (a whole self-overlapping
# track of 25,000 fixes takes GEOS about a second against a handful of polygons; the pieces take ~30 ms).
_RECOMPUTE = f"""
WITH ordered AS (
    SELECT at, geom, row_number() OVER (ORDER BY at) - 1 AS i FROM patrol_point WHERE patrol_id = :id
), line AS (
    SELECT count(*) AS n,
           ST_SetSRID(ST_MakeLine(ST_MakePointM(ST_X(geom), ST_Y(geom), extract(epoch FROM at)) ORDER BY at),
                      4326) AS track
    FROM ordered
), pieces AS (
    SELECT CASE WHEN count(*) > 1 THEN ST_MakeLine(geom ORDER BY i) ELSE (array_agg(geom))[1] END AS piece
    FROM (SELECT geom, i, i / {PIECE_FIXES} AS piece_no FROM ordered
          UNION ALL
          SELECT geom, i, i / {PIECE_FIXES} - 1 FROM ordered WHERE i % {PIECE_FIXES} = 0 AND i > 0) x
    GROUP BY piece_no
), visited AS (
    SELECT coalesce(array_agg(DISTINCT g.code ORDER BY g.code), '{{}}') AS codes
    FROM pieces s
    JOIN grid g ON g.geom && s.piece AND ST_Intersects(g.geom, s.piece)
    JOIN duty_grid_grid dgg ON dgg.grid_code = g.code
    JOIN duty_grid_worker w ON w.duty_grid_code = dgg.duty_grid_code AND w.user_id = :user_id
    WHERE g.valid_to IS NULL OR g.valid_to >= CURRENT_DATE
), total AS (SELECT count(DISTINCT m.code) AS n FROM ({_WORKER_GRIDS.format(user_id=":user_id")}) m)
UPDATE patrol p
SET track = CASE WHEN l.n >= 2 THEN l.track END,
    distance_m = CASE WHEN l.n >= 2 THEN round(ST_Length(l.track::geography)::numeric, 2)::float8 ELSE 0 END,
    grids_visited = v.codes,
    share_visited = CASE WHEN t.n = 0 THEN 0 ELSE cardinality(v.codes)::float8 / t.n END
FROM line l, visited v, total t
WHERE p.id = :id
RETURNING l.n AS point_count, p.distance_m, p.grids_visited, p.share_visited
"""


@dataclass(frozen=True, slots=True)
class Head:
    """The facts of a shift that decide who may do what with it."""

    id: int
    user_id: int
    started_at: dt.datetime
    ended_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Figures:
    """A shift's figures after a rebuild."""

    point_count: int
    distance_m: float
    grids_visited: list[str]
    share_visited: float


def _patrol(row: Any) -> PatrolRead:
    m = row._mapping
    return PatrolRead(**{k: m[k] for k in PatrolRead.__struct_fields__})


async def start(conn: AsyncConnection, user_id: int, started_at: dt.datetime | None) -> int | None:
    """A new open shift's id, or None when the user has one open already."""
    sql = """
    INSERT INTO patrol (user_id, started_at) VALUES (:user_id, coalesce(:started_at, now()))
    ON CONFLICT (user_id) WHERE ended_at IS NULL DO NOTHING RETURNING id
    """
    value = await conn.scalar(text(sql), {"user_id": user_id, "started_at": started_at})
    return None if value is None else int(value)


async def open_patrol_id(conn: AsyncConnection, user_id: int) -> int | None:
    value = await conn.scalar(text("SELECT id FROM patrol WHERE user_id = :u AND ended_at IS NULL"), {"u": user_id})
    return None if value is None else int(value)


async def head(conn: AsyncConnection, patrol_id: int, *, lock: bool = False) -> Head | None:
    """Owner and times of a shift; `lock` holds the row until commit (one writer per shift at a time)."""
    sql = "SELECT id, user_id, started_at, ended_at FROM patrol WHERE id = :id" + (" FOR UPDATE" if lock else "")
    row = (await conn.execute(text(sql), {"id": patrol_id})).first()
    return None if row is None else Head(row.id, row.user_id, row.started_at, row.ended_at)


async def user_district(conn: AsyncConnection, user_id: int) -> str | None:
    value = await conn.scalar(text("SELECT district_code FROM app_user WHERE id = :id"), {"id": user_id})
    return None if value is None else str(value)


async def read(conn: AsyncConnection, patrol_id: int) -> PatrolRead | None:
    row = (await conn.execute(text(_READ + " WHERE p.id = :id"), {"id": patrol_id})).first()
    return None if row is None else _patrol(row)


async def list_page(
    conn: AsyncConnection,
    *,
    user_id: int | None,
    username: str | None,
    district_code: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    is_open: bool | None,
    before_id: int | None,
    limit: int,
) -> list[PatrolRead]:
    """Newest first, ids below `before_id`; filters that are None do not apply; `limit + 1` rows at most."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    for value, name, cond in (
        (user_id, "user_id", "p.user_id = :user_id"),
        (username, "username", "u.username = :username"),
        (district_code, "district_code", "u.district_code = :district_code"),
        (since, "since", "p.started_at >= :since"),
        (until, "until", "p.started_at < :until"),
        (before_id, "before_id", "p.id < :before_id"),
    ):
        if value is not None:
            where.append(cond)
            params[name] = value
    if is_open is not None:
        where.append("p.ended_at IS NULL" if is_open else "p.ended_at IS NOT NULL")
    sql = _READ + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY p.id DESC LIMIT :limit"
    return [_patrol(r) for r in (await conn.execute(text(sql), params)).all()]


async def end(conn: AsyncConnection, patrol_id: int, ended_at: dt.datetime | None) -> None:
    await conn.execute(
        text("UPDATE patrol SET ended_at = coalesce(:ended_at, now()) WHERE id = :id"),
        {"id": patrol_id, "ended_at": ended_at},
    )


async def last_fix_at(conn: AsyncConnection, patrol_id: int) -> dt.datetime | None:
    value = await conn.scalar(text("SELECT max(at) FROM patrol_point WHERE patrol_id = :id"), {"id": patrol_id})
    return value if isinstance(value, dt.datetime) else None


async def district_extent(conn: AsyncConnection) -> tuple[float, float, float, float] | None:
    """Bounding box of the districts (the jurisdiction), or None when none are loaded."""
    sql = """
    SELECT ST_XMin(e) AS x0, ST_YMin(e) AS y0, ST_XMax(e) AS x1, ST_YMax(e) AS y1
    FROM (SELECT ST_Extent(geom) AS e FROM region WHERE level = 'district') x
    """
    row = (await conn.execute(text(sql))).first()
    if row is None or row.x0 is None:
        return None
    return float(row.x0), float(row.y0), float(row.x1), float(row.y1)


async def fixes_around(conn: AsyncConnection, patrol_id: int, first: dt.datetime, last: dt.datetime) -> list[Fix]:
    """Stored fixes from `first` to `last`, plus the one just before and the one just after, in time order."""
    sql = """
    (SELECT at, geom, accuracy_m, speed_mps FROM patrol_point WHERE patrol_id = :id AND at < :first
     ORDER BY at DESC LIMIT 1)
    UNION ALL
    (SELECT at, geom, accuracy_m, speed_mps FROM patrol_point WHERE patrol_id = :id AND at BETWEEN :first AND :last)
    UNION ALL
    (SELECT at, geom, accuracy_m, speed_mps FROM patrol_point WHERE patrol_id = :id AND at > :last
     ORDER BY at LIMIT 1)
    """
    outer = f"SELECT at, ST_X(geom) AS lon, ST_Y(geom) AS lat, accuracy_m, speed_mps FROM ({sql}) f ORDER BY at"
    rows = (await conn.execute(text(outer), {"id": patrol_id, "first": first, "last": last})).all()
    return [Fix(-1, r.at, r.lon, r.lat, r.accuracy_m, r.speed_mps) for r in rows]


async def insert_fixes(conn: AsyncConnection, patrol_id: int, fixes: Sequence[Fix]) -> int:
    """Store the fixes; one already stored at the same time is left as it is. Returns how many were new."""
    if not fixes:
        return 0
    sql = """
    INSERT INTO patrol_point (patrol_id, at, geom, accuracy_m, speed_mps)
    SELECT :id, f.at, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326), f.acc, f.spd
    FROM unnest(CAST(:ats AS timestamptz[]), CAST(:lons AS float8[]), CAST(:lats AS float8[]),
                CAST(:accs AS float8[]), CAST(:spds AS float8[])) AS f(at, lon, lat, acc, spd)
    ON CONFLICT (patrol_id, at) DO NOTHING
    RETURNING 1
    """
    params = {
        "id": patrol_id,
        "ats": [f.at for f in fixes],
        "lons": [f.lon for f in fixes],
        "lats": [f.lat for f in fixes],
        "accs": [f.accuracy_m for f in fixes],
        "spds": [f.speed_mps for f in fixes],
    }
    return len((await conn.execute(text(sql), params)).all())


async def recompute(conn: AsyncConnection, patrol_id: int, user_id: int) -> Figures:
    """Rebuild the track, distance and grids visited from the stored fixes."""
    row = (await conn.execute(text(_RECOMPUTE), {"id": patrol_id, "user_id": user_id})).one()
    return Figures(int(row.point_count), float(row.distance_m), list(row.grids_visited), float(row.share_visited))


async def figures(conn: AsyncConnection, patrol_id: int) -> Figures:
    sql = """
    SELECT (SELECT count(*) FROM patrol_point WHERE patrol_id = p.id) AS n, distance_m, grids_visited, share_visited
    FROM patrol p WHERE p.id = :id
    """
    row = (await conn.execute(text(sql), {"id": patrol_id})).one()
    return Figures(int(row.n), float(row.distance_m), list(row.grids_visited), float(row.share_visited))


async def track_fixes(conn: AsyncConnection, patrol_id: int) -> list[tuple[float, float, dt.datetime]]:
    """(lon, lat, at) of the stored fixes in time order: the vertices of the track."""
    sql = "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, at FROM patrol_point WHERE patrol_id = :id ORDER BY at"
    return [(r.lon, r.lat, r.at) for r in (await conn.execute(text(sql), {"id": patrol_id})).all()]


_CHECKIN = "SELECT id, patrol_id, at, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code, note FROM patrol_checkin"


def _checkin(row: Any) -> CheckInRead:
    m = row._mapping
    return CheckInRead(**{k: m[k] for k in CheckInRead.__struct_fields__})


async def checkin_at(conn: AsyncConnection, patrol_id: int, at: dt.datetime) -> CheckInRead | None:
    row = (
        await conn.execute(text(_CHECKIN + " WHERE patrol_id = :id AND at = :at"), {"id": patrol_id, "at": at})
    ).first()
    return None if row is None else _checkin(row)


async def add_checkin(
    conn: AsyncConnection,
    patrol_id: int,
    at: dt.datetime,
    lon: float,
    lat: float,
    grid_code: str | None,
    note: str | None,
) -> CheckInRead:
    sql = """
    INSERT INTO patrol_checkin (patrol_id, at, geom, grid_code, note)
    VALUES (:id, :at, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :grid_code, :note)
    RETURNING id, patrol_id, at, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code, note
    """
    params = {"id": patrol_id, "at": at, "lon": lon, "lat": lat, "grid_code": grid_code, "note": note}
    return _checkin((await conn.execute(text(sql), params)).one())


async def checkins(conn: AsyncConnection, patrol_id: int) -> list[CheckInRead]:
    rows = (await conn.execute(text(_CHECKIN + " WHERE patrol_id = :id ORDER BY at, id"), {"id": patrol_id})).all()
    return [_checkin(r) for r in rows]
