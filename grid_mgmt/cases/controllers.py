"""HTTP endpoints of one case: read it, its timeline, and one route per lifecycle action."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Router, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, Parameter

from grid_mgmt.cases import lifecycle as lc
from grid_mgmt.cases.schemas import PAYLOADS, ActionPayload, CaseRead, TimelineRead
from grid_mgmt.cases.service import CaseService
from grid_mgmt.lib.auth import authenticated, current
from grid_mgmt.lib.deps import DB
from grid_mgmt.lib.openapi import responses

CASE_ID = Parameter(description="the case id", ge=1)


class CaseController(Controller):
    """One case in the caller's scope (404 outside it) and its timeline."""

    path = "/api/v1/cases"
    tags = ["cases"]
    guards = [authenticated]

    @get("/{case_id:int}", summary="One case", responses=responses(401, 404))
    async def get_case(self, request: Request[Any, Any, Any], db: DB, case_id: Annotated[int, CASE_ID]) -> CaseRead:
        return await CaseService(db).get(current(request), case_id)

    @get("/{case_id:int}/timeline", summary="The case's timeline, oldest first", responses=responses(401, 404))
    async def get_timeline(
        self, request: Request[Any, Any, Any], db: DB, case_id: Annotated[int, CASE_ID]
    ) -> TimelineRead:
        return await CaseService(db).timeline(current(request), case_id)


def _describe(action: str) -> str:
    lines = []
    for (status, name), rule in sorted(lc.TABLE.items(), key=lambda kv: (kv[0][0].value, kv[0][1])):
        if name == action:
            roles = ", ".join(sorted(rule.roles))
            needs = f"; needs {', '.join(rule.requires)}" if rule.requires else ""
            lines.append(f"* `{status}` → `{rule.to}` by {roles}{needs}: {rule.summary}")
    return "\n".join(lines)


def _action_route(action: str, body: type[ActionPayload]) -> HTTPRouteHandler:
    async def handler(request: Request[Any, Any, Any], db: DB, case_id: int, data: ActionPayload) -> CaseRead:
        service = CaseService(db, request.app.state.get("arq"))
        return await service.apply(case_id, action, current(request), data)

    handler.__name__ = handler.__qualname__ = f"case_{action}"
    handler.__annotations__ = {
        **handler.__annotations__,
        "data": JSONBody[body],  # type: ignore[valid-type,misc]
        "case_id": Annotated[int, CASE_ID],
    }
    return post(
        f"/{{case_id:int}}/actions/{action}",
        summary=f"{action.replace('_', ' ').capitalize()}",
        description=_describe(action),
        responses=responses(400, 401, 403, 404, 409, 422),
        status_code=200,
        guards=[authenticated],
        tags=["case actions"],
    )(handler)


def action_router() -> Router:
    """`POST /api/v1/cases/{id}/actions/{action}` for every action of the lifecycle table."""
    return Router(path="/api/v1/cases", route_handlers=[_action_route(a, PAYLOADS[a]) for a in sorted(lc.ACTIONS)])
