"""arq jobs of routing: `cases.route` finds the unit responsible for a reported case (grid_mgmt.routing)."""

from __future__ import annotations

from typing import Any

from arq.cron import CronJob
from arq.worker import Function, func

from grid_mgmt.routing.service import route_case


async def route(ctx: dict[str, Any], case_id: int) -> str:
    """cases.route: idempotent; a routed case or one that moved on is left alone."""
    return await route_case(
        ctx["engine"], ctx["settings"], case_id, ctx.get("redis"), ctx.get("routers"), ctx.get("routed")
    )


FUNCTIONS: list[Function] = [func(route, name="cases.route", max_tries=10)]
CRON: list[CronJob] = []
