"""arq jobs: media.process (thumbnail and EXIF of a photo), the media.sweep cron, the nightly intake.purge cron."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from arq.cron import CronJob, cron
from arq.worker import Function, func

from grid_mgmt.intake.retention import purge_idempotency
from grid_mgmt.lib.jobs import JobBuffer, enqueue
from grid_mgmt.media import service

log = logging.getLogger(__name__)

SWEEP_AFTER = dt.timedelta(minutes=1)
"""An attachment still unprocessed this long after its upload lost its job (or its job failed): enqueue again."""


async def process(ctx: dict[str, Any], attachment_id: int) -> str:
    """media.process: see grid_mgmt.media.service.process (idempotent)."""
    return await service.process(ctx["engine"], ctx["settings"], attachment_id)


async def sweep(ctx: dict[str, Any]) -> int:
    """media.sweep: one media.process per attachment the database says is still to do (coalesced by job id)."""
    ids = await service.unprocessed(ctx["engine"], older_than=SWEEP_AFTER)
    with JobBuffer.collect() as jobs:
        for attachment_id in ids:
            enqueue("media.process", job_id=f"media:{attachment_id}", attachment_id=attachment_id)
        await jobs.flush(ctx["redis"])
    if ids:
        log.info("media.sweep: %d attachment(s) without thumbnail re-enqueued", len(ids))
    return len(ids)


async def purge(ctx: dict[str, Any]) -> int:
    """intake.purge: drop idempotency records older than GRID_IDEMPOTENCY_RETENTION_DAYS."""
    deleted = await purge_idempotency(ctx["engine"], ctx["settings"].idempotency_retention_days)
    log.info("intake.purge: %d idempotency record(s) deleted", deleted)
    return deleted


FUNCTIONS: list[Function] = [func(process, name="media.process")]
CRON: list[CronJob] = [
    cron(sweep, name="media.sweep", minute=set(range(0, 60, 5))),
    # 03:30 Asia/Shanghai. arq evaluates cron times in the worker's local time zone, and workers run in UTC.
    cron(purge, name="intake.purge", hour=19, minute=30, timeout=600),
]
