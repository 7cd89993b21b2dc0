"""arq jobs of deadlines: `sla.check` flags a warning or an overdue step of one deadline round (grid_mgmt.sla)."""

from __future__ import annotations

from typing import Any

from arq.cron import CronJob
from arq.worker import Function, func

from grid_mgmt.sla.service import check_deadline


async def check(ctx: dict[str, Any], case_id: int, deadline_round: int) -> str:
    """sla.check: idempotent; a job of an older round, or of a paused or stopped clock, does nothing."""
    return await check_deadline(ctx["engine"], case_id, deadline_round, ctx.get("redis"))


FUNCTIONS: list[Function] = [func(check, name="sla.check", max_tries=10)]
CRON: list[CronJob] = []
