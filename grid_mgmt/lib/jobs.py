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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from arq.connections import ArqRedis
from arq.constants import (
    default_queue_name,
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from arq.jobs import serialize_job
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.lib.jobcodec import serialize

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    """Pub/sub messages (channel, body) for after the commit, sent with the jobs."""
    withdrawn: list[str] = field(default_factory=list)
    """Ids of queued jobs whose work this unit did: taken off the queue after the commit, unless already started."""

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
        self.messages.clear()
        self.withdrawn.clear()

    async def flush(self, redis: ArqRedis | Redis | None) -> int:
        """Send the buffered jobs (after commit) in one Redis round trip; returns how many were new.

        Same records as arq's `enqueue_job` (job key with expiry + queue entry), written by one script for the
        whole buffer; a job whose id is queued or has a result already is skipped, as arq does. Redis down:
        logged, not raised — the recovery sweeps find the work in the database.
        """
        jobs, self.jobs = self.jobs, []
        messages, self.messages = self.messages, []
        withdrawn, self.withdrawn = self.withdrawn, []
        if redis is None or not (jobs or messages or withdrawn):
            return 0
        try:
            return int(await _enqueue_many(redis, jobs, messages, withdrawn))
        except Exception:  # the sweep re-enqueues from the database
            log.warning("could not enqueue %s; the recovery sweep will pick them up",
                        ", ".join(j.name for j in jobs) or f"{len(messages)} messages", exc_info=True)  # fmt: skip
            return 0


EXPIRES_EXTRA_MS = expires_extra_ms
"""How long a queued job's record outlives its due time (arq's default), for a plain Redis client."""

_ENQUEUE_MANY = """
local sent = 0
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
    local b = 2 + i * 6
    if redis.call('EXISTS', ARGV[b], ARGV[b + 1]) == 0 then
        redis.call('PSETEX', ARGV[b], ARGV[b + 4], ARGV[b + 5])
        redis.call('ZADD', KEYS[1], ARGV[b + 3], ARGV[b + 2])
        sent = sent + 1
    end
end
local m = 2 + n * 6
for i = 0, tonumber(ARGV[m]) - 1 do
    redis.call('PUBLISH', ARGV[m + 1 + 2 * i], ARGV[m + 2 + 2 * i])
end
local w = m + 1 + 2 * tonumber(ARGV[m])
for i = 1, tonumber(ARGV[w]) do
    local id = ARGV[w + i]
    if redis.call('EXISTS', KEYS[2] .. id) == 0 then
        redis.call('ZREM', KEYS[1], id)
        redis.call('DEL', KEYS[3] .. id)
        -- touch the in-progress key: a worker that is taking this job right now WATCHes it, so its MULTI fails
        -- and it skips the job instead of finding it gone ("expired")
        redis.call('SET', KEYS[2] .. id, '', 'PX', 1)
        redis.call('DEL', KEYS[2] .. id)
    end
end
return sent
"""


async def _enqueue_many(
    redis: ArqRedis | Redis, jobs: list[Job], messages: list[tuple[str, bytes]], withdrawn: list[str]
) -> int:
    now = int(time.time() * 1000)
    argv: list[Any] = [len(jobs)]
    for job in jobs:
        job_id = job.job_id or uuid.uuid4().hex
        score = int(job.defer_until.timestamp() * 1000) if job.defer_until is not None else now
        expires = score - now + getattr(redis, "expires_extra_ms", EXPIRES_EXTRA_MS)
        payload = serialize_job(job.name, (), job.kwargs, None, now, serializer=serialize)
        argv += [job_key_prefix + job_id, result_key_prefix + job_id, job_id, score, max(expires, 1), payload]
    argv.append(len(messages))
    for channel, body in messages:
        argv += [channel, body]
    argv += [len(withdrawn), *withdrawn]
    script = redis.register_script(_ENQUEUE_MANY)
    keys = [_queue(redis), in_progress_key_prefix, job_key_prefix]
    return int(await script(keys=keys, args=argv))


def _queue(redis: ArqRedis | Redis) -> str:
    return str(getattr(redis, "default_queue_name", default_queue_name))


async def waiting(redis: ArqRedis | Redis | None, prefix: str, limit: int) -> list[str]:
    """Ids of due jobs waiting in the queue whose id starts with `prefix`, among the next `limit` (for a job that
    does the work of some of them with its own and then `withdraw`s those); none without Redis."""
    if redis is None or limit <= 0:
        return []
    try:
        found = await redis.zrangebyscore(_queue(redis), "-inf", int(time.time() * 1000), start=0, num=limit)
    except Exception:  # only an optimisation: each job still does its own work
        log.warning("could not read the queue", exc_info=True)
        return []
    ids = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in found]
    return [job_id for job_id in ids if job_id.startswith(prefix)]


def withdraw(job_ids: list[str]) -> None:
    """Take these queued jobs off the queue after the commit of the current unit of work, which did their work
    (a job already started runs anyway and must find nothing left to do)."""
    buffer = _current.get()
    if buffer is None:
        raise RuntimeError("withdraw() outside JobBuffer.collect(): jobs are withdrawn after a commit")
    buffer.withdrawn += job_ids


_current: contextvars.ContextVar[JobBuffer | None] = contextvars.ContextVar("grid_mgmt_jobs", default=None)


def enqueue(name: str, *, job_id: str | None = None, defer_until: dt.datetime | None = None, **kwargs: Any) -> None:
    """Buffer a job for after the commit of the current unit of work (there must be one)."""
    buffer = _current.get()
    if buffer is None:
        raise RuntimeError("enqueue() outside JobBuffer.collect(): jobs must wait for a commit")
    buffer.jobs.append(Job(name=name, kwargs=kwargs, job_id=job_id, defer_until=defer_until))


def publish_after_commit(channel: str, body: bytes) -> None:
    """Buffer a pub/sub message for after the commit of the current unit of work (sent with its jobs)."""
    buffer = _current.get()
    if buffer is None:
        raise RuntimeError("publish_after_commit() outside JobBuffer.collect(): messages must wait for a commit")
    buffer.messages.append((channel, body))


async def committed(
    engine: AsyncEngine, redis: ArqRedis | Redis | None, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Run `work` in one transaction; the jobs and messages it buffered leave after the commit (none on error)."""
    with JobBuffer.collect() as jobs:
        async with engine.begin() as conn:
            result = await work(conn)
        await jobs.flush(redis)
    return result


def job_queue(redis_url: str) -> ArqRedis:
    """An arq client with our codec; it connects lazily, so a Redis that is down does not stop the API."""
    from redis.asyncio import ConnectionPool

    pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    return ArqRedis(connection_pool=pool, job_serializer=serialize)
