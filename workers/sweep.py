"""arq cron: the recovery sweep. The database is the truth; whatever a lost job would have done is found there.

Every minute: reported cases nobody routed and deadlines that passed unflagged are re-enqueued (job ids make a
re-enqueue coalesce with a job still queued, and every job re-reads its case, so nothing happens twice).
Undelivered notifications and unprocessed photos have their own sweeps (workers/notify.py, workers/media.py).
"""

from __future__ import annotations

from typing import Any

from arq.cron import CronJob, cron
from arq.worker import Function, func

from grid_mgmt.routing.service import enqueue_unrouted
from grid_mgmt.sla.service import enqueue_due


async def recover(ctx: dict[str, Any], older_than_s: float | None = None) -> dict[str, int]:
    """system.recover: re-enqueue routing and deadline work the database says is still to do."""
    settings = ctx["settings"]
    age = settings.recovery_age_s if older_than_s is None else older_than_s
    routed = await enqueue_unrouted(ctx["engine"], ctx["redis"], age)
    due = await enqueue_due(ctx["engine"], ctx["redis"])
    return {"route": routed, "deadline": due}


FUNCTIONS: list[Function] = [func(recover, name="system.recover")]
CRON: list[CronJob] = [cron(recover, name="cron:system.recover", second=7, run_at_startup=True, unique=True)]
