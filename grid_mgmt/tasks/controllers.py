"""HTTP endpoints of the task inbox and the delta sync."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from grid_mgmt.lib.auth import authenticated, current
from grid_mgmt.lib.deps import DB
from grid_mgmt.lib.openapi import responses
from grid_mgmt.tasks import service
from grid_mgmt.tasks.schemas import SyncRead, TaskQueue

SYNC_LIMIT = f"cases per answer (default {service.SYNC_DEFAULT_LIMIT}, at most {service.SYNC_MAX_LIMIT})"


class TaskController(Controller):
    """What the caller must do now, and what changed for an offline phone since it last synced."""

    path = "/api/v1"
    tags = ["tasks"]
    guards = [authenticated]

    @get(
        "/me/tasks",
        summary="My task queues",
        description=(
            "Named queues of the cases waiting for the caller, by role: workers `verify` (citizen reports in their"
            " duty grids) and `check` (assigned to them, or unassigned in their duty grids); unit staff `unit`"
            " (dispatched to or handled by their unit and its children); acceptors and leaders `to_register`;"
            " dispatchers and leaders `to_dispatch` and `to_request_check`; leaders `to_close`; the centre and"
            " supervisors `overdue`. Items: the first 50, earliest deadline first; `count` and `overdue` stop at"
            " 1000 (`capped`). Each item's `next_actions` are those the caller's roles allow."
        ),
        responses=responses(401),
    )
    async def my_tasks(self, request: Request[Any, Any, Any], db: DB) -> list[TaskQueue]:
        return await service.my_tasks(db, current(request), request.app.state.settings.list_timeout_ms)

    @get(
        "/sync",
        summary="What changed for me since the cursor (offline phones)",
        description=(
            "Without `cursor`: the current state, a page at a time. Then pass back `cursor` — at once while"
            " `has_more`, at the next poll otherwise. Cases can repeat across answers (the last minute is re-read"
            " so that nothing committed late is missed): keep, per id, the higher `version`. `tasks` is the"
            " current task list: replace yours with it. Download a dictionary again when its `version` changed."
        ),
        responses=responses(401, 422),
    )
    async def sync(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        cursor: Annotated[str | None, Parameter(description="`cursor` of the previous answer")] = None,
        limit: Annotated[int | None, Parameter(description=SYNC_LIMIT)] = None,
    ) -> SyncRead:
        return await service.sync(db, current(request), cursor, limit, request.app.state.settings.list_timeout_ms)
