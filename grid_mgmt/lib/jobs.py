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
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job

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
        """Send the buffered jobs (after commit) in one Redis round trip; returns how many were new.

        Same records as arq's `enqueue_job` (job key with expiry + queue entry), written by one script for the
        whole buffer; a job whose id is queued or has a result already is skipped, as arq does. Redis down:
        logged, not raised — the recovery sweeps find the work in the database.
        """
        jobs, self.jobs = self.jobs, []
        if redis is None or not jobs:
            return 0
        try:
            return int(await _enqueue_many(redis, jobs))
        except Exception:  # the sweep re-enqueues from the database
            log.warning("could not enqueue %s; the recovery sweep will pick them up",
                        ", ".join(j.name for j in jobs), exc_info=True)  # fmt: skip
            return 0


_ENQUEUE_MANY = """
local sent = 0
for i = 0, tonumber(ARGV[1]) - 1 do
    local b = 2 + i * 6
    if redis.call('EXISTS', ARGV[b], ARGV[b + 1]) == 0 then
        redis.call('PSETEX', ARGV[b], ARGV[b + 4], ARGV[b + 5])
        redis.call('ZADD', KEYS[1], ARGV[b + 3], ARGV[b + 2])
        sent = sent + 1
    end
end
return sent
"""


async def _enqueue_many(redis: ArqRedis, jobs: list[Job]) -> int:
    now = int(time.time() * 1000)
    argv: list[Any] = [len(jobs)]
    for job in jobs:
        job_id = job.job_id or uuid.uuid4().hex
        score = int(job.defer_until.timestamp() * 1000) if job.defer_until is not None else now
        expires = score - now + redis.expires_extra_ms
        payload = serialize_job(job.name, (), job.kwargs, None, now, serializer=serialize)
        argv += [job_key_prefix + job_id, result_key_prefix + job_id, job_id, score, max(expires, 1), payload]
    script = redis.register_script(_ENQUEUE_MANY)
    return int(await script(keys=[redis.default_queue_name], args=argv))


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
