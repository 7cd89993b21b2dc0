"""Jobs enqueued during a request are buffered and sent to arq only after the database commit.

The buffer is context-local: `JobBuffer.collect()` opens one for a unit of work, `enqueue()` appends to it, and
`flush()` sends everything after the commit; a rollback calls `discard()`. Only this module and `workers/`
know arq, so the queue can be replaced. Losing Redis delays jobs, never loses work: cron sweeps in the workers
find what the database says is still to do.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis

from grid_mgmt.lib.jobcodec import serialize

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Job:
    """A job by dotted name (`cases.route`), with plain arguments (ids, not objects)."""

    name: str
    kwargs: dict[str, Any]
    job_id: str | None = None
    defer_until: dt.datetime | None = None


@dataclass(slots=True)
class JobBuffer:
    """The jobs of one unit of work."""

    jobs: list[Job] = field(default_factory=list)

    @staticmethod
    @contextmanager
    def collect() -> Iterator[JobBuffer]:
        """Open a buffer for the current context; `enqueue` inside it appends here."""
        buffer = JobBuffer()
        token = _current.set(buffer)
        try:
            yield buffer
        finally:
            _current.reset(token)

    def discard(self) -> None:
        self.jobs.clear()

    async def flush(self, redis: ArqRedis | None) -> int:
        """Send the buffered jobs (after commit); returns how many went out. Redis down: logged, not raised."""
        sent = 0
        jobs, self.jobs = self.jobs, []
        if redis is None:
            return 0
        for job in jobs:
            try:
                await redis.enqueue_job(job.name, _job_id=job.job_id, _defer_until=job.defer_until, **job.kwargs)
                sent += 1
            except Exception:  # the sweep re-enqueues from the database
                log.warning("could not enqueue %s; the recovery sweep will pick it up", job.name, exc_info=True)
        return sent


_current: contextvars.ContextVar[JobBuffer | None] = contextvars.ContextVar("grid_mgmt_jobs", default=None)


def enqueue(name: str, *, job_id: str | None = None, defer_until: dt.datetime | None = None, **kwargs: Any) -> None:
    """Buffer a job for after the commit of the current unit of work (there must be one)."""
    buffer = _current.get()
    if buffer is None:
        raise RuntimeError("enqueue() outside JobBuffer.collect(): jobs must wait for a commit")
    buffer.jobs.append(Job(name=name, kwargs=kwargs, job_id=job_id, defer_until=defer_until))


def job_queue(redis_url: str) -> ArqRedis:
    """An arq client with our codec; it connects lazily, so a Redis that is down does not stop the API."""
    from redis.asyncio import ConnectionPool

    pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    return ArqRedis(connection_pool=pool, job_serializer=serialize)
