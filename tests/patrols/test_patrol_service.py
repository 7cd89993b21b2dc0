"""Patrol service on the demo city: shifts, fixes in any order and crs, the track, distance, grids, skips."""

from __future__ import annotations

import datetime as dt
import math

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from geo.measure import distance_m
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.errors import Conflict, DomainError, InvalidInput, NotFound
from grid_mgmt.patrols import service
from grid_mgmt.patrols.schemas import PointBatch, PointIn
from tests.patrols.conftest import ago, east, principal_of, two_grids


def pts(*items: tuple[dt.datetime, float, float], **extra: object) -> PointBatch:
    return PointBatch(points=[PointIn(at=at, lon=lon, lat=lat, **extra) for at, lon, lat in items])  # type: ignore[arg-type]


async def test_start_end_and_double_start(engine: AsyncEngine, worker1: Principal, pg: asyncpg.Connection) -> None:
    p = await service.start(engine, worker1)
    assert p.open and p.user_id == worker1.user_id and p.username == "worker1"
    assert p.distance_m == 0 and p.point_count == 0 and p.grids_visited == [] and p.share_visited == 0
    assert p.grid_count == len(worker1.duty_grid_codes) > 0
    with pytest.raises(Conflict) as exc:
        await service.start(engine, worker1)
    assert exc.value.extra["patrol_id"] == p.id and str(p.id) in exc.value.detail
    ended = await service.end(engine, worker1, p.id)
    assert not ended.open and ended.ended_at is not None and ended.ended_at >= ended.started_at
    again = await service.end(engine, worker1, p.id)  # a phone's retry changes nothing
    assert again.ended_at == ended.ended_at
    second = await service.start(engine, worker1)
    assert second.id != p.id and second.open


async def test_device_times_of_start_and_end(engine: AsyncEngine, worker1: Principal) -> None:
    started = ago(90).replace(microsecond=0)
    p = await service.start(engine, worker1, started)
    assert p.started_at == started
    with pytest.raises(InvalidInput, match="before the shift's start"):
        await service.end(engine, worker1, p.id, started - dt.timedelta(minutes=1))
    ended = await service.end(engine, worker1, p.id, ago(10))
    assert ended.ended_at is not None and ended.ended_at < dt.datetime.now(dt.UTC)
    with pytest.raises(InvalidInput, match="future"):
        await service.start(engine, worker1, ago(-30))
    with pytest.raises(InvalidInput, match="ago"):
        await service.start(engine, worker1, ago(60 * 25))


async def test_three_points_100_m_apart_make_200_m(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    a = (g["alon"], g["alat"])
    b = east(*a, 100)
    c = east(*b, 100)
    r = await service.add_points(engine, worker1, p.id, pts((ago(50), *a), (ago(49), *b), (ago(48), *c)))
    assert (r.accepted, r.duplicates, r.skipped) == (3, 0, 0), r.skipped_points
    assert r.distance_m == pytest.approx(200, abs=2)
    assert r.point_count == 3
    row = await pg.fetchrow(
        "SELECT GeometryType(track) AS t, ST_SRID(track) AS srid, ST_NPoints(track) AS n,"
        " ST_Length(track::geography) AS len, distance_m FROM patrol WHERE id = $1",
        p.id,
    )
    assert row["t"] == "LINESTRINGM" and row["srid"] == 4326 and row["n"] == 3
    assert row["distance_m"] == pytest.approx(row["len"], abs=0.005) and row["len"] == pytest.approx(200, abs=2)


async def test_wgs84_gcj02_and_bd09_land_on_the_same_place(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    wgs = (g["alon"], g["alat"])
    gcj = wgs84_to_gcj02(*east(*wgs, 20))
    bd = wgs84_to_bd09(*east(*wgs, 40))
    assert distance_m(*wgs, *gcj) > 100, "GCJ-02 is offset by hundreds of metres"
    t0, t1, t2 = ago(50), ago(49), ago(48)
    await service.add_points(engine, worker1, p.id, pts((t0, *wgs)))
    await service.add_points(engine, worker1, p.id, pts((t1, *gcj), crs="gcj02"))
    r = await service.add_points(engine, worker1, p.id, pts((t2, *bd), crs="bd09"))
    assert r.skipped == 0 and r.point_count == 3
    rows = await pg.fetch(
        "SELECT at, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM patrol_point WHERE patrol_id = $1 ORDER BY at", p.id
    )
    for row, want in zip(rows, [wgs, east(*wgs, 20), east(*wgs, 40)], strict=True):
        assert distance_m(row["lon"], row["lat"], *want) < 0.01
    assert r.distance_m == pytest.approx(40, abs=0.5)
    assert r.grids_visited == [g["a"]]


async def test_duplicates_are_stored_once(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    a = (g["alon"], g["alat"])
    batch = pts((ago(50), *a), (ago(49), *east(*a, 30)), (ago(48), *east(*a, 60)))
    first = await service.add_points(engine, worker1, p.id, batch)
    again = await service.add_points(engine, worker1, p.id, batch)
    assert (first.accepted, first.duplicates) == (3, 0)
    assert (again.accepted, again.duplicates, again.skipped) == (0, 3, 0)
    assert again.distance_m == first.distance_m and again.point_count == 3
    t = ago(47)
    inside = await service.add_points(engine, worker1, p.id, pts((t, *east(*a, 90)), (t, *east(*a, 95))))
    assert (inside.accepted, inside.duplicates) == (1, 1)  # same `at` twice in one batch: the first wins
    assert await pg.fetchval("SELECT count(*) FROM patrol_point WHERE patrol_id = $1", p.id) == 4


async def test_out_of_order_uploads_make_an_ordered_track(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    a = (g["alon"], g["alat"])
    at = [ago(50 - i) for i in range(5)]
    where = [east(*a, 25 * i) for i in range(5)]
    await service.add_points(engine, worker1, p.id, pts((at[3], *where[3]), (at[1], *where[1]), (at[4], *where[4])))
    r = await service.add_points(engine, worker1, p.id, pts((at[2], *where[2]), (at[0], *where[0])))
    assert r.accepted == 2 and r.point_count == 5
    assert r.distance_m == pytest.approx(100, abs=1)  # a zig-zag would be much longer
    rows = await pg.fetch(
        "SELECT ST_X(d.geom) AS lon, ST_M(d.geom) AS m FROM patrol p, ST_DumpPoints(p.track) d"
        " WHERE p.id = $1 ORDER BY d.path[1]",
        p.id,
    )
    assert [r["m"] for r in rows] == pytest.approx([t.timestamp() for t in at], abs=1e-3)
    assert [r["lon"] for r in rows] == pytest.approx([w[0] for w in where], abs=1e-9)
    feature = await service.track(engine, worker1, p.id)
    assert feature.geometry is not None
    assert feature.properties.times == at
    assert [c[0] for c in feature.geometry.coordinates] == pytest.approx([w[0] for w in where], abs=1e-9)


async def test_share_of_grids_visited(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    # a lone fix counts its grid
    r = await service.add_points(engine, worker1, p.id, pts((ago(50), g["alon"], g["alat"])))
    assert r.grids_visited == [g["a"]] and r.share_visited == pytest.approx(1 / g["total"])
    # walking from the centre of A to the centre of B passes through A and B only
    r = await service.add_points(engine, worker1, p.id, pts((ago(48), g["blon"], g["blat"])))
    assert r.grids_visited == sorted([g["a"], g["b"]])
    assert r.share_visited == pytest.approx(2 / g["total"])
    stored = await pg.fetchrow("SELECT grids_visited, share_visited FROM patrol WHERE id = $1", p.id)
    assert stored["grids_visited"] == r.grids_visited and stored["share_visited"] == pytest.approx(r.share_visited)


async def test_track_pieces_join_without_gaps(engine: AsyncEngine, worker1: Principal, pg) -> None:
    from grid_mgmt.patrols.repository import PIECE_FIXES

    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    a = (g["alon"], g["alat"])
    t0 = ago(50)
    # PIECE_FIXES fixes dithering in A, then one in C two grids east: B is crossed only by the segment that
    # joins the first piece to the second
    fixes = [(t0 + dt.timedelta(seconds=i), *east(*a, i % 2)) for i in range(PIECE_FIXES)]
    c = east(*a, 212)
    fixes.append((t0 + dt.timedelta(seconds=PIECE_FIXES + 10), *c))
    c_code = await pg.fetchval(
        "SELECT code FROM grid WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326))", *c
    )
    assert c_code in worker1.duty_grid_codes and c_code not in (g["a"], g["b"])
    r = await service.add_points(engine, worker1, p.id, pts(*fixes))
    assert r.accepted == PIECE_FIXES + 1
    assert r.grids_visited == sorted([g["a"], g["b"], c_code])


async def test_grids_of_other_workers_do_not_count(engine: AsyncEngine, pg) -> None:
    g = await two_grids(pg, "worker1")
    worker2 = await principal_of(pg, "worker2")
    assert g["a"] not in worker2.duty_grid_codes and g["b"] not in worker2.duty_grid_codes
    p = await service.start(engine, worker2, ago(60))
    r = await service.add_points(
        engine, worker2, p.id, pts((ago(50), g["alon"], g["alat"]), (ago(48), g["blon"], g["blat"]))
    )
    assert r.accepted == 2 and r.grids_visited == [] and r.share_visited == 0 and r.distance_m > 50


async def test_bad_fixes_are_skipped_with_reasons(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    a = (g["alon"], g["alat"])
    batch = PointBatch(
        points=[
            PointIn(at=ago(50), lon=a[0], lat=a[1], accuracy_m=8, speed_mps=1.2),  # 0 good
            PointIn(at=ago(49.9), lon=math.nan, lat=a[1]),  # 1
            PointIn(at=ago(49.8), lon=a[0], lat=95.0),  # 2
            PointIn(at=ago(-60), lon=a[0], lat=a[1]),  # 3 an hour ahead
            PointIn(at=ago(120), lon=a[0], lat=a[1]),  # 4 an hour before the shift
            PointIn(at=ago(49.7), lon=a[0], lat=a[1], accuracy_m=500),  # 5
            PointIn(at=ago(49.6), lon=a[0], lat=a[1], accuracy_m=-1),  # 6
            PointIn(at=ago(49.5), lon=a[0], lat=a[1], speed_mps=math.inf),  # 7
            PointIn(at=ago(49.4), lon=0.0, lat=0.0),  # 8 null island
            PointIn(at=ago(49.3), lon=a[1], lat=a[0]),  # 9 swapped (latitude out of range)
            PointIn(at=ago(50 - 10 / 60), lon=east(*a, 5000)[0], lat=a[1]),  # 10: 5 km in 10 s
            PointIn(at=ago(49), lon=east(*a, 50)[0], lat=a[1], accuracy_m=10),  # 11 good
        ]
    )
    r = await service.add_points(engine, worker1, p.id, batch)
    got = {s.index: s.reason for s in r.skipped_points}
    assert got == {
        1: "invalid_coordinates",
        2: "invalid_coordinates",
        3: "future",
        4: "before_start",
        5: "inaccurate",
        6: "invalid_accuracy",
        7: "invalid_speed",
        8: "outside_area",
        9: "invalid_coordinates",
        10: "implausible_speed",
    }
    assert (r.accepted, r.skipped, r.duplicates) == (2, 10, 0)
    details = {s.index: s.detail for s in r.skipped_points}
    assert "finite" in details[1] and "95" in details[2] and "swapped" in details[9] and "m/s" in details[10]
    assert all(s.at == batch.points[s.index].at for s in r.skipped_points)
    assert r.distance_m == pytest.approx(50, abs=1)


async def test_speed_check_uses_stored_neighbours(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    a = (g["alon"], g["alat"])
    t0, t2 = ago(50), ago(49)
    await service.add_points(engine, worker1, p.id, pts((t0, *a), (t2, *east(*a, 60))))
    # a late fix between the two stored ones, 3 km away: impossible from either neighbour
    late = await service.add_points(engine, worker1, p.id, pts((t0 + dt.timedelta(seconds=30), *east(*a, 3000))))
    assert [s.reason for s in late.skipped_points] == ["implausible_speed"]
    # a glitch that got in blocks only until walking from it becomes possible again
    far = east(*a, 1500)
    await service.add_points(engine, worker1, p.id, pts((ago(48), *far)))  # 1.5 km in 60 s: 25 m/s, plausible
    soon = await service.add_points(engine, worker1, p.id, pts((ago(48) + dt.timedelta(seconds=5), *a)))
    assert soon.skipped == 1
    later = await service.add_points(engine, worker1, p.id, pts((ago(46), *a)))
    assert later.accepted == 1


async def test_owner_only_and_ended_patrol(engine: AsyncEngine, worker1: Principal, worker2: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    batch = pts((ago(50), g["alon"], g["alat"]))
    with pytest.raises(DomainError) as exc:
        await service.add_points(engine, worker2, p.id, batch)
    assert exc.value.status_code == 403
    with pytest.raises(DomainError) as exc:
        await service.end(engine, worker2, p.id)
    assert exc.value.status_code == 403
    with pytest.raises(NotFound):
        await service.add_points(engine, worker1, 10**12, batch)
    await service.end(engine, worker1, p.id)
    with pytest.raises(Conflict, match="ended"):
        await service.add_points(engine, worker1, p.id, batch)
    assert await pg.fetchval("SELECT count(*) FROM patrol_point WHERE patrol_id = $1", p.id) == 0


async def test_batch_over_1000_is_refused(engine: AsyncEngine, worker1: Principal, pg) -> None:
    g = await two_grids(pg)
    p = await service.start(engine, worker1, ago(60))
    t0 = ago(50)
    batch = pts(*[(t0 + dt.timedelta(seconds=i), g["alon"], g["alat"]) for i in range(1001)])
    with pytest.raises(InvalidInput, match="at most 1000 points; got 1001"):
        await service.add_points(engine, worker1, p.id, batch)
    ok = await service.add_points(engine, worker1, p.id, PointBatch(points=batch.points[:1000]))
    assert ok.accepted == 1000 and ok.distance_m == pytest.approx(0, abs=0.01)


async def test_recompute_uses_indexes(engine: AsyncEngine, worker1: Principal, pg) -> None:
    from grid_mgmt.patrols.repository import _RECOMPUTE

    p = await service.start(engine, worker1, ago(60))
    sql = _RECOMPUTE.replace(":id", str(p.id)).replace(":user_id", str(worker1.user_id))
    async with pg.transaction():
        await pg.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await pg.fetch("EXPLAIN " + sql))
    assert "Index Scan using idx_grid_geom on grid" in plan, plan
