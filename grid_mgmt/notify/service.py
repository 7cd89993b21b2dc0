"""Announce in the caller's transaction, deliver at least once from a worker, and stream events to consoles.

Delivery claims a row with a lease instead of holding a row lock across the HTTP call. A short transaction takes
the row (`FOR UPDATE SKIP LOCKED`, only when due and unfinished), counts the attempt and pushes
`next_attempt_at` past the longest the call may take; it commits, the call runs outside any transaction (no
connection or lock held while a slow endpoint answers), and a second short transaction records the result —
only if the row still carries this attempt's count, which fences off a worker whose lease ran out. A concurrent
or repeated job finds the row leased or finished and does nothing; a worker that dies mid-call leaves a lease
that expires, and the sweep hands the row out again. So a webhook is delivered at least once and, barring a
crash between the receiver's 2xx and our commit, exactly once; receivers deduplicate on `X-Grid-Delivery`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.lib.auth import CENTRE_ROLES, Principal
from grid_mgmt.lib.errors import Conflict, InvalidInput, NotFound
from grid_mgmt.lib.jobs import JobBuffer, enqueue, publish_after_commit
from grid_mgmt.lib.pagination import check_limit, decode_cursor, encode_cursor
from grid_mgmt.lib.retention import purge_before
from grid_mgmt.lib.schemas import ItemPage
from grid_mgmt.lib.sql import text
from grid_mgmt.notify import repository as repo
from grid_mgmt.notify.schemas import OutboxRead
from grid_mgmt.notify.signing import sign
from grid_mgmt.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "grid_mgmt:events"
"""The Redis pub/sub channel every API process listens on for the live stream."""
JOB = "notify.deliver"
MAX_BACKOFF_S = 3600.0
EARLY_S = 1.0
"""A deferred retry may claim its row this much before `next_attempt_at` (worker and database clocks differ)."""
SWEEP_OVERDUE_S = 60.0
REPLAY_LIMIT = 500
REPLAY_MAX_AGE_S = 3600.0
RECONNECT_MS = 3000


def job_id(outbox_id: int, attempts: int) -> str:
    """The arq job id of the next attempt: the sweep and a scheduled retry of the same attempt coalesce."""
    return f"notify:{outbox_id}:{attempts}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Announcement:
    """A change to announce: its topic, the case (its facts, or read by `case_id`), the unit whose webhook is called
    (only the unit named here: the caller decides who must hear of it) and the event's own fields."""

    topic: str
    case: Mapping[str, Any] | msgspec.Struct | None = None
    case_id: int | None = None
    unit_code: str | None = None
    payload: Mapping[str, Any] | None = None

    def row(self, at: str) -> repo.Row:
        facts: dict[str, Any] = {}
        case_id = self.case_id
        case = self.case
        if case is not None:
            get = case.get if isinstance(case, Mapping) else lambda name: getattr(case, name, None)
            facts = {name: get(name) for name in repo.CASE_FACTS}
            found = get("id")
            if case_id is None and found is not None:
                case_id = int(found)
        body: dict[str, Any] = {**facts, **(self.payload or {}), "topic": self.topic, "case_id": case_id, "at": at}
        if self.unit_code is not None:
            body["unit_code"] = self.unit_code
        lookup = self.case is None and case_id is not None
        return repo.Row(self.topic, case_id, self.unit_code, lookup, msgspec.to_builtins(body))


async def announce_all(conn: AsyncConnection, items: list[Announcement]) -> list[int]:
    """Write the notifications of changes in the same transaction as the changes (one statement for all of them);
    ids of the outbox rows.

    Each announcement is one event row for the live stream, plus one webhook row when its `unit_code` names a unit
    with an endpoint. The event carries the case's facts (from `case` when given, else read by `case_id` in the
    same statement), then `payload`, then topic, time and `unit_code`. Events are published to the live stream
    with the caller's jobs right after its commit (one Redis round trip, no job: a console that missed one — Redis
    was down — replays it by `Last-Event-ID` from the outbox); webhooks get a `notify.deliver` job each. The caller
    runs inside `JobBuffer.collect()` and flushes after the commit.
    """
    at = _utcnow().isoformat()
    rows = await repo.insert(conn, [item.row(at) for item in items])
    for row in rows:
        if row.target_url is None:  # the live stream: published with the jobs, right after the commit
            publish_after_commit(CHANNEL, msgspec.json.encode({**dict(row.payload), "id": int(row.id)}))
        else:
            enqueue(JOB, job_id=job_id(int(row.id), 0), outbox_id=int(row.id))
    return [int(row.id) for row in rows]


async def announce(
    conn: AsyncConnection,
    *,
    topic: str,
    case: Mapping[str, Any] | msgspec.Struct | None = None,
    case_id: int | None = None,
    unit_code: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> list[int]:
    """`announce_all` of one change."""
    return await announce_all(conn, [Announcement(topic, case, case_id, unit_code, payload)])


def backoff(base_s: float, attempts: int) -> float:
    """Seconds before the next try after `attempts` failures: doubling from `base_s`, at most an hour, +0-10 %."""
    delay = min(base_s * 2.0 ** max(attempts - 1, 0), MAX_BACKOFF_S)
    return delay * (1.0 + random.random() / 10)


async def deliver(
    engine: AsyncEngine, settings: Settings, outbox_id: int, *, http: httpx.AsyncClient | None = None
) -> str:
    """One delivery attempt of a webhook row (the `notify.deliver` job); safe to run twice or concurrently.
    (Event rows are published by `announce`'s flush and recorded delivered: a job finds them `done`.)

    Returns `delivered`, `retry` (a deferred job is buffered: run inside `JobBuffer.collect()`), `failed` (given
    up), `done` (already delivered or given up), `busy` (leased by another attempt or not due), `missing`, or
    `superseded` (our lease ran out and another attempt owns the row).
    """
    lease_s = settings.webhook_timeout_s * 2 + 5.0
    async with engine.begin() as conn:
        claim = await repo.claim(conn, outbox_id, lease_s=lease_s, early_s=EARLY_S)
        if claim is None:
            return await repo.state_of(conn, outbox_id)
    if claim.attempts > settings.webhook_max_attempts:  # the last allowed attempts died without reporting back
        async with engine.begin() as conn:
            await repo.give_up(conn, claim.id, claim.attempts, "attempts did not finish (worker stopped)")
        return "failed"
    error = await _post(claim, settings, http)
    async with engine.begin() as conn:
        if error is None:
            return "delivered" if await repo.record_success(conn, claim.id, claim.attempts) else "superseded"
        delay = backoff(settings.webhook_backoff_s, claim.attempts)
        result = await repo.record_failure(
            conn, claim.id, claim.attempts, error=error, max_attempts=settings.webhook_max_attempts, delay_s=delay
        )
    if result is None:
        return "superseded"
    given_up, next_at = result
    if given_up:
        log.warning("notification %s (%s) given up after %s attempts: %s", claim.id, claim.topic, claim.attempts, error)
        return "failed"
    enqueue(JOB, job_id=job_id(claim.id, claim.attempts), defer_until=next_at, outbox_id=claim.id)
    return "retry"


def _message(claim: repo.Claim) -> bytes:
    return msgspec.json.encode({**claim.payload, "id": claim.id})


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process (building one loads the CA bundle: too slow to repeat per delivery)."""
    return httpx.create_ssl_context()


async def _post(claim: repo.Claim, settings: Settings, http: httpx.AsyncClient | None) -> str | None:
    """POST the signed event; None on a 2xx, else what went wrong (kept as `last_error`)."""
    assert claim.target_url is not None
    body = _message(claim)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "grid-mgmt-webhooks/1",
        "X-Grid-Timestamp": str(int(time.time())),
        "X-Grid-Delivery": str(claim.id),
        "X-Grid-Topic": claim.topic,
        "X-Grid-Attempt": str(claim.attempts),
    }
    if claim.secret:
        headers["X-Grid-Signature"] = sign(claim.secret, body)
    try:
        async with asyncio.timeout(settings.webhook_timeout_s):
            if http is not None:
                response = await http.post(claim.target_url, content=body, headers=headers)
            else:
                timeout = settings.webhook_timeout_s
                async with httpx.AsyncClient(timeout=timeout, verify=_tls(), follow_redirects=False) as client:
                    response = await client.post(claim.target_url, content=body, headers=headers)
    except TimeoutError:
        return f"timeout after {settings.webhook_timeout_s:g} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


async def pending(engine: AsyncEngine, limit: int, *, overdue_s: float = 0.0) -> list[int]:
    """Ids of notifications still to deliver whose next attempt is due (`overdue_s` ago), oldest first."""
    async with engine.connect() as conn:
        return [outbox_id for outbox_id, _ in await repo.due(conn, limit=limit, overdue_s=overdue_s)]


async def requeue(engine: AsyncEngine, *, limit: int = 1000, overdue_s: float = SWEEP_OVERDUE_S) -> int:
    """The recovery sweep: buffer a delivery job for every row overdue by `overdue_s` (a job lost with Redis, a
    worker that died under its lease). Job ids name the attempt, so a job still queued absorbs the duplicate."""
    async with engine.connect() as conn:
        rows = await repo.due(conn, limit=limit, overdue_s=overdue_s)
    for outbox_id, attempts in rows:
        enqueue(JOB, job_id=job_id(outbox_id, attempts), outbox_id=outbox_id)
    return len(rows)


# ---- the outbox as admins, supervisors and unit staff see it ----


async def list_outbox(
    engine: AsyncEngine,
    principal: Principal,
    settings: Settings,
    *,
    state: str | None = None,
    kind: str | None = None,
    unit_code: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> ItemPage[OutboxRead]:
    """Newest first. Admins and supervisors see every row; unit staff the webhooks of their units."""
    size = check_limit(limit, default=settings.default_page_size, maximum=settings.max_page_size)
    after = decode_cursor(cursor)
    if after is not None and not after.isdigit():
        raise InvalidInput("cursor is not one this API issued", extra={"field": "cursor"})
    units = None if principal.sees_all else sorted(principal.unit_codes)
    async with engine.connect() as conn:
        rows = await repo.list_rows(
            conn,
            state=state,
            kind=kind,
            unit_code=unit_code,
            units=units,
            before_id=int(after) if after else None,
            limit=size,
        )
    more = len(rows) > size
    items = [msgspec.convert(r, OutboxRead) for r in rows[:size]]
    return ItemPage(items=items, next_cursor=encode_cursor(str(items[-1].id)) if more else None)


async def retry(engine: AsyncEngine, queue: Any, outbox_id: int) -> OutboxRead:
    """A given-up notification back to pending with a fresh count of attempts, and its delivery job sent."""
    with JobBuffer.collect() as jobs:
        async with engine.begin() as conn:
            if not await repo.reset_failed(conn, outbox_id):
                row = await repo.get_row(conn, outbox_id)
                if row is None:
                    raise NotFound(f"no outbox row {outbox_id}")
                raise Conflict(f"outbox row {outbox_id} is {row['state']}: only failed rows can be retried")
            enqueue(JOB, outbox_id=outbox_id)
            row = await repo.get_row(conn, outbox_id)
        await jobs.flush(queue)
    assert row is not None
    return msgspec.convert(row, OutboxRead)


# ---- the live stream ----


def in_scope(principal: Principal, event: Mapping[str, Any]) -> bool:
    """Whether the caller may see an event: the same data scope as the case lists (`cases.repository.scope_sql`).

    Supervisors and admins all; centre roles their district (all without one); unit staff events of their unit
    and its children; workers events in their duty grids and of cases they reported or must check.
    """
    if principal.sees_all:
        return True
    if principal.roles & CENTRE_ROLES and (
        not principal.district_code or event.get("district_code") == principal.district_code
    ):
        return True
    if "unit_staff" in principal.roles and event.get("unit_code") in principal.unit_codes:
        return True
    if "worker" in principal.roles:
        if event.get("grid_code") in principal.duty_grid_codes:
            return True
        uid = principal.user_id
        if event.get("reporter_id") == uid or event.get("checker_id") == uid:
            return True
    return False


def parse_topics(topics: str | None) -> frozenset[str] | None:
    """`case.dispatched,case.overdue` → the set; None (every topic) when absent or empty."""
    wanted = frozenset(t.strip() for t in (topics or "").split(",") if t.strip())
    return wanted or None


def _wanted(principal: Principal, event: Mapping[str, Any], topics: frozenset[str] | None) -> bool:
    return (topics is None or event.get("topic") in topics) and in_scope(principal, event)


def _sse(outbox_id: int, event: Mapping[str, Any], data: str) -> dict[str, Any]:
    return {"id": outbox_id, "event": str(event.get("topic", "message")), "data": data}


async def event_stream(
    redis: Redis,
    engine: AsyncEngine,
    principal: Principal,
    *,
    topics: frozenset[str] | None,
    keepalive_s: float,
    last_event_id: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events (as dicts of id, event, data or comment) of the caller's scope, until the client leaves.

    Each stream has its own subscription to the Redis channel, so any API process serves any console. The first
    message is a comment sent once subscribed; a reconnecting client's `Last-Event-ID` first gets the events it
    missed (up to an hour back, from the outbox); an idle stream gets a comment every `keepalive_s`.
    """
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(CHANNEL)
        yield {"comment": "connected", "data": None, "retry": RECONNECT_MS}
        replayed: set[int] = set()
        if last_event_id is not None:
            async with engine.connect() as conn:
                rows = await repo.recent_events(
                    conn, after_id=last_event_id, limit=REPLAY_LIMIT, max_age_s=REPLAY_MAX_AGE_S
                )
            for outbox_id, event in rows:
                replayed.add(outbox_id)
                if _wanted(principal, event, topics):
                    yield _sse(outbox_id, event, msgspec.json.encode({**event, "id": outbox_id}).decode())
        last_sent = time.monotonic()
        while True:
            wait = max(0.0, keepalive_s - (time.monotonic() - last_sent))
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            if message is None or message.get("type") != "message":
                if time.monotonic() - last_sent >= keepalive_s:
                    yield {"comment": "keep-alive", "data": None}
                    last_sent = time.monotonic()
                continue
            raw = message["data"]
            try:
                event = msgspec.json.decode(raw, type=dict[str, Any])
                outbox_id = int(event["id"])
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed message on %s", CHANNEL)
                continue
            if outbox_id in replayed or not _wanted(principal, event, topics):
                continue
            yield _sse(outbox_id, event, raw.decode() if isinstance(raw, bytes) else str(raw))
            last_sent = time.monotonic()
    except RedisError as exc:  # the client reconnects (after `retry`) and catches up by Last-Event-ID
        log.warning("event stream of %s ends: Redis failed: %s", principal.username, exc)
    finally:
        with anyio.CancelScope(shield=True):  # runs while the client's disconnect cancels the response
            await pubsub.aclose()  # type: ignore[no-untyped-call]


_PURGE = text("""
DELETE FROM outbox o
USING (SELECT id FROM outbox WHERE delivered_at < :cutoff OR failed_at < :cutoff LIMIT :batch) old
WHERE o.id = old.id
""")


async def purge_finished(engine: AsyncEngine, older_than_days: int) -> int:
    """Delete notifications delivered or given up more than `older_than_days` ago (the nightly notify.purge)."""
    return await purge_before(engine, _PURGE, older_than_days)
