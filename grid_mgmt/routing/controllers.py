"""HTTP: a case's routing candidates for the dispatcher; routing rules (admins manage, the centre reads)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import JSONBody, Parameter

from grid_mgmt.lib.auth import CENTRE_ROLES, current, requires
from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.openapi import CURSOR, LIMIT, responses
from grid_mgmt.lib.pagination import check_limit
from grid_mgmt.routing.schemas import RoutingRead, RuleCreate, RulePage, RulePatch, RuleRead
from grid_mgmt.routing.service import RuleService, routing_view

READERS = (*sorted(CENTRE_ROLES), "supervisor", "admin")
RULE_ID = Parameter(description="the rule id", ge=1)


class RoutingController(Controller):
    """Who should handle a case, and why."""

    path = "/api/v1/cases"
    tags = ["routing"]

    @get(
        "/{case_id:int}/routing",
        summary="Routing decision and ranked candidates of a case",
        description="The stored decision of the routing job (null until it ran) with its reason, and every unit "
        "that could take the case now, most specific first: component → pipeline → routing rules → territory.",
        guards=[requires(*READERS)],
        responses=responses(401, 403, 404),
    )
    async def routing(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: AppSettings,
        case_id: Annotated[int, Parameter(description="the case id", ge=1)],
    ) -> RoutingRead:
        return await routing_view(db, settings, current(request), case_id)


class RuleController(Controller):
    """Routing rules: class × area → unit, with priority and auto-dispatch."""

    path = "/api/v1/routing/rules"
    tags = ["routing"]

    @get("/", summary="Routing rules", guards=[requires(*READERS)], responses=responses(400, 401, 403, 422))
    async def list_rules(
        self,
        db: DB,
        settings: AppSettings,
        limit: LIMIT = None,
        cursor: CURSOR = None,
        category_code: Annotated[str | None, Parameter(description="rules that apply to this class")] = None,
        unit_code: Annotated[str | None, Parameter(description="rules that send to this unit")] = None,
        active: Annotated[bool | None, Parameter(description="only active (true) or inactive (false) rules")] = None,
    ) -> RulePage:
        size = check_limit(limit, default=settings.default_page_size, maximum=settings.max_page_size)
        return await RuleService(db).list(
            category_code=category_code, unit_code=unit_code, active=active, cursor=cursor, limit=size
        )

    @get("/{rule_id:int}", summary="One routing rule", guards=[requires(*READERS)], responses=responses(401, 403, 404))
    async def get_rule(self, db: DB, rule_id: Annotated[int, RULE_ID]) -> RuleRead:
        return await RuleService(db).get(rule_id)

    @post("/", summary="Add a routing rule", guards=[requires("admin")], responses=responses(400, 401, 403, 422))
    async def create_rule(self, db: DB, data: JSONBody[RuleCreate]) -> RuleRead:
        return await RuleService(db).create(data)

    @patch(
        "/{rule_id:int}", summary="Change a routing rule", guards=[requires("admin")],
        responses=responses(400, 401, 403, 404, 422),
    )  # fmt: skip
    async def patch_rule(self, db: DB, rule_id: Annotated[int, RULE_ID], data: JSONBody[RulePatch]) -> RuleRead:
        return await RuleService(db).patch(rule_id, data)

    @delete(
        "/{rule_id:int}", summary="Remove a routing rule", guards=[requires("admin")],
        responses=responses(401, 403, 404),
    )  # fmt: skip
    async def delete_rule(self, db: DB, rule_id: Annotated[int, RULE_ID]) -> None:
        await RuleService(db).delete(rule_id)


ROUTES = [RoutingController, RuleController]
