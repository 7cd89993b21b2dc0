"""HTTP endpoints of notifications: the live event stream (SSE) and the outbox with its failed deliveries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import ServerSentEvent
from redis.asyncio import Redis

from grid_mgmt.lib.auth import authenticated, current, requires
from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.openapi import CURSOR, LIMIT, responses
from grid_mgmt.lib.schemas import ItemPage
from grid_mgmt.notify import service
from grid_mgmt.notify.schemas import OutboxRead

EVENTS_DESCRIPTION = """\
A `text/event-stream` of what happens to the cases in the caller's data scope, served by any API process (the
events travel through Redis). Each event has `id` (the outbox id), `event` (the topic, e.g. `case.dispatched`) and
`data`: JSON with `id`, `topic`, `at`, `case_id`, `case_no`, `status`, `unit_code`, `district_code`,
`street_code`, `grid_code`, `reporter_id` and what the topic adds. Scope: supervisors and admins everything;
acceptors, leaders and dispatchers their district; unit staff their unit and its children; workers their duty
grids and the cases they reported or check. The stream opens with a comment once it is live, sends a comment
every GRID_EVENTS_KEEPALIVE_S when idle, and asks clients to reconnect after 3 s; a reconnecting client's
`Last-Event-ID` first replays the events it missed (up to an hour back). Browsers' EventSource cannot send an
Authorization header: open `?ticket=` with a ticket of `POST /api/v1/auth/stream-ticket` instead (60 s to use it;
it opens nothing else)."""

OUTBOX_DESCRIPTION = """\
Notifications newest first: `event` rows (the live stream) and `webhook` rows (POSTs to a unit's endpoint, signed
`X-Grid-Signature: sha256=<HMAC-SHA256 of the body with the unit's secret>`, with `X-Grid-Timestamp`,
`X-Grid-Delivery` (the id: deduplicate on it) and `X-Grid-Topic`). A failed try is retried with exponential backoff
(GRID_WEBHOOK_BACKOFF_S doubling, at most an hour); after GRID_WEBHOOK_MAX_ATTEMPTS it is given up: `state`
`failed`, with `attempts` and `last_error`. Admins and supervisors see every row, unit staff their units' webhooks."""

OUTBOX_ID = Parameter(description="the outbox row's id", ge=1)


class EventController(Controller):
    """The live event stream for dispatcher consoles and unit screens."""

    path = "/api/v1/events"
    tags = ["notifications"]
    guards = [authenticated]

    @get(
        "/",
        summary="Live events of my scope (server-sent events)",
        description=EVENTS_DESCRIPTION,
        media_type="text/event-stream",
        responses=responses(401, 503),
    )
    async def events(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: AppSettings,
        ticket: Annotated[
            str | None,
            Parameter(description="instead of the Authorization header: a ticket of POST /api/v1/auth/stream-ticket"),
        ] = None,
        topics: Annotated[
            str | None, Parameter(description="only these topics, comma-separated: `case.dispatched,case.overdue`")
        ] = None,
        last_event_id: Annotated[
            str | None, HeaderParameter(name="Last-Event-ID", description="the last event id seen (on reconnect)")
        ] = None,
    ) -> ServerSentEvent:
        redis: Redis = request.app.state["redis"]
        stream = service.event_stream(
            redis,
            db,
            current(request),
            topics=service.parse_topics(topics),
            keepalive_s=settings.events_keepalive_s,
            last_event_id=int(last_event_id) if last_event_id and last_event_id.isdigit() else None,
        )
        return ServerSentEvent(stream)


class OutboxController(Controller):
    """The notifications to deliver and how their delivery went ("given up and shown")."""

    path = "/api/v1/outbox"
    tags = ["notifications"]
    guards = [requires("admin", "supervisor", "unit_staff")]

    @get(
        "/",
        summary="Notifications and their delivery state",
        description=OUTBOX_DESCRIPTION,
        responses=responses(400, 401, 403, 422),
    )
    async def list_outbox(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: AppSettings,
        delivery: Annotated[
            Literal["pending", "delivered", "failed"] | None,
            QueryParameter(name="state", description="pending (still to deliver), delivered, or failed (given up)"),
        ] = None,
        kind: Annotated[
            Literal["event", "webhook"] | None, Parameter(description="event (live stream) or webhook (to a unit)")
        ] = None,
        unit_code: Annotated[str | None, Parameter(description="notifications of this unit")] = None,
        limit: LIMIT = None,
        cursor: CURSOR = None,
    ) -> ItemPage[OutboxRead]:
        return await service.list_outbox(
            db, current(request), settings, state=delivery, kind=kind, unit_code=unit_code, limit=limit, cursor=cursor
        )

    @post(
        "/{outbox_id:int}/retry",
        summary="Retry a given-up notification",
        description="Back to pending with a fresh count of attempts, and delivered again at once (admin).",
        guards=[requires("admin")],
        status_code=200,
        responses=responses(401, 403, 404, 409),
    )
    async def retry(self, request: Request[Any, Any, Any], db: DB, outbox_id: Annotated[int, OUTBOX_ID]) -> OutboxRead:
        return await service.retry(db, request.app.state.get("arq"), outbox_id)


ROUTES = [EventController, OutboxController]
