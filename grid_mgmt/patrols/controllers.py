"""HTTP endpoints of patrol shifts: start, end, GPS points, the track, check-ins and lists."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter

from grid_mgmt.lib.auth import current, requires
from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.openapi import CURSOR, LIMIT, responses
from grid_mgmt.lib.schemas import ItemPage
from grid_mgmt.patrols import service
from grid_mgmt.patrols.rules import MAX_BATCH
from grid_mgmt.patrols.schemas import (
    CheckInCreate,
    CheckInRead,
    Crs,
    PatrolEnd,
    PatrolRead,
    PatrolStart,
    PointBatch,
    PointsResult,
    TrackFeature,
)

PATROL_ID = Parameter(description="the patrol's id")
WORKER = requires("worker")
READERS = requires("worker", "supervisor", "leader", "admin")

Req = Request[Any, Any, Any]


class PatrolController(Controller):
    """A grid worker's shifts: GPS fixes in batches, the track with times, distance, grids visited, check-ins."""

    path = "/api/v1/patrols"
    tags = ["patrols"]

    @post(
        "/",
        guards=[WORKER],
        summary="Start a shift",
        description="409 when the worker has an open shift; `extra.patrol_id` names it so the phone can resume it.",
        responses=responses(400, 401, 403, 409, 422),
    )
    async def start(self, request: Req, db: DB, data: JSONBody[PatrolStart | None] = None) -> PatrolRead:
        return await service.start(db, current(request), data.started_at if data else None)

    @post(
        "/{patrol_id:int}/end",
        guards=[WORKER],
        status_code=200,
        summary="End a shift",
        description="Only the shift's worker ends it; ending an ended shift again changes nothing.",
        responses=responses(400, 401, 403, 404, 422),
    )
    async def end(
        self, request: Req, db: DB, patrol_id: Annotated[int, PATROL_ID], data: JSONBody[PatrolEnd | None] = None
    ) -> PatrolRead:
        return await service.end(db, current(request), patrol_id, data.ended_at if data else None)

    @get("/", guards=[READERS], summary="List shifts", responses=responses(400, 401, 403, 422))
    async def list_patrols(
        self,
        request: Req,
        db: DB,
        settings: AppSettings,
        limit: LIMIT = None,
        cursor: CURSOR = None,
        user: Annotated[
            str | None, Parameter(description="username (supervisors, leaders and admins; workers see their own)")
        ] = None,
        since: Annotated[
            dt.datetime | None, Parameter(description="started at or after (ISO 8601 with offset)")
        ] = None,
        until: Annotated[dt.datetime | None, Parameter(description="started before (ISO 8601 with offset)")] = None,
        is_open: Annotated[
            bool | None, QueryParameter(name="open", description="only open or only ended shifts")
        ] = None,
    ) -> ItemPage[PatrolRead]:
        return await service.list_patrols(
            db,
            current(request),
            user=user,
            since=since,
            until=until,
            is_open=is_open,
            limit=limit,
            cursor=cursor,
            default_limit=settings.default_page_size,
            max_limit=settings.max_page_size,
        )

    @get("/{patrol_id:int}", guards=[READERS], summary="One shift", responses=responses(401, 403, 404))
    async def get_patrol(self, request: Req, db: DB, patrol_id: Annotated[int, PATROL_ID]) -> PatrolRead:
        return await service.get(db, current(request), patrol_id)

    @get(
        "/{patrol_id:int}/track",
        guards=[READERS],
        summary="The shift's track as a GeoJSON Feature",
        description="A LineString of [lon, lat] in time order; `properties.times[i]` is the time of vertex i. "
        "The geometry is null until two points are stored.",
        responses=responses(400, 401, 403, 404),
    )
    async def get_track(
        self,
        request: Req,
        db: DB,
        patrol_id: Annotated[int, PATROL_ID],
        crs: Annotated[Crs, Parameter(description="coordinate system of the output")] = "wgs84",
    ) -> TrackFeature:
        return await service.track(db, current(request), patrol_id, crs)

    @post(
        "/{patrol_id:int}/points",
        guards=[WORKER],
        status_code=200,
        summary="Upload GPS points",
        description=f"Up to {MAX_BATCH} points in any order, each in wgs84 (default), gcj02 or bd09. Bad fixes "
        "(bad coordinates, far away, future or before the shift, accuracy worse than 100 m, faster than 50 m/s) are "
        "skipped with a reason each; the rest are stored once (re-sent points count as duplicates). The answer "
        "carries the shift's distance and share of the worker's unit grids visited. 409 once the shift has ended.",
        responses=responses(400, 401, 403, 404, 409, 422),
    )
    async def add_points(
        self,
        request: Req,
        db: DB,
        settings: AppSettings,
        patrol_id: Annotated[int, PATROL_ID],
        data: JSONBody[PointBatch],
    ) -> PointsResult:
        return await service.add_points(db, current(request), patrol_id, data, buffer_m=settings.jurisdiction_buffer_m)

    @post(
        "/{patrol_id:int}/checkins",
        guards=[WORKER],
        summary="Check in at a place",
        description="Stored with the unit grid the point is in (the smallest code on a shared edge; null outside "
        "every grid). Re-sending a check-in with the same `at` returns the stored one with 200.",
        responses={
            200: ResponseSpec(data_container=CheckInRead, description="A replay: the check-in stored before."),
            **responses(400, 401, 403, 404, 409, 422),
        },
    )
    async def check_in(
        self,
        request: Req,
        db: DB,
        state: State,
        settings: AppSettings,
        patrol_id: Annotated[int, PATROL_ID],
        data: JSONBody[CheckInCreate],
    ) -> Response[CheckInRead]:
        read, created = await service.check_in(
            db, state.get("locator"), current(request), patrol_id, data, buffer_m=settings.jurisdiction_buffer_m
        )
        return Response(read, status_code=201 if created else 200)

    @get(
        "/{patrol_id:int}/checkins", guards=[READERS], summary="A shift's check-ins", responses=responses(401, 403, 404)
    )
    async def list_checkins(self, request: Req, db: DB, patrol_id: Annotated[int, PATROL_ID]) -> list[CheckInRead]:
        return await service.list_checkins(db, current(request), patrol_id)
