"""arq jobs of notifications: deliver one outbox row (`notify.deliver`), and the minutely recovery sweep."""

from __future__ import annotations

from typing import Any

from arq.cron import CronJob, cron
from arq.worker import Function, func

from grid_mgmt.lib.jobs import JobBuffer
from grid_mgmt.notify import service


async def deliver(ctx: dict[str, Any], outbox_id: int) -> str:
    """notify.deliver: one attempt; a failure buffers its own deferred retry, sent once the attempt is recorded."""
    with JobBuffer.collect() as jobs:
        outcome = await service.deliver(ctx["engine"], ctx["settings"], outbox_id)
        await jobs.flush(ctx["redis"])
    return outcome


async def sweep(ctx: dict[str, Any]) -> int:
    """notify.sweep: re-enqueue rows overdue by a minute (jobs lost with Redis, workers that died mid-call)."""
    with JobBuffer.collect() as jobs:
        await service.requeue(ctx["engine"])
        return await jobs.flush(ctx["redis"])


FUNCTIONS: list[Function] = [func(deliver, name=service.JOB)]


async def purge(ctx: dict[str, Any]) -> int:
    """notify.purge: finished notifications past GRID_OUTBOX_RETENTION_DAYS go (nightly, 03:40 Asia/Shanghai)."""
    return await service.purge_finished(ctx["engine"], ctx["settings"].outbox_retention_days)


CRON: list[CronJob] = [
    cron(sweep, name="notify.sweep", second=17, run_at_startup=False, unique=True),
    cron(purge, name="notify.purge", hour={19}, minute={40}, second=0, unique=True, timeout=600),
]
