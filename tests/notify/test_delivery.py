"""The outbox end to end on the real database, Redis and arq worker; the webhook receiver is a real HTTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg
from arq.connections import ArqRedis
from arq.constants import default_queue_name
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.lib.jobs import JobBuffer
from grid_mgmt.notify import service
from grid_mgmt.notify.signing import verify
from grid_mgmt.settings import Settings
from tests.notify.conftest import OTHER_UNIT, Announce, Cases, Hook, deliver_once
from workers import notify as notify_jobs

Drain = Callable[..., Awaitable[int]]


async def row(pg: asyncpg.Connection, outbox_id: int) -> asyncpg.Record:
    return await pg.fetchrow("SELECT * FROM outbox WHERE id = $1", outbox_id)


async def webhook_of(pg: asyncpg.Connection, ids: list[int]) -> int:
    return int(await pg.fetchval("SELECT id FROM outbox WHERE id = ANY($1::bigint[]) AND target_url IS NOT NULL", ids))


async def test_announce_writes_an_event_and_a_webhook_in_one_statement(
    announce: Announce, pg: asyncpg.Connection, cases: Cases, hook: Hook
) -> None:
    ids, jobs = await announce(topic="case.dispatched", case_id=cases.home, unit_code=hook.unit_code, payload={"n": 1})
    rows = {r["id"]: r for r in await pg.fetch("SELECT * FROM outbox WHERE id = ANY($1::bigint[])", ids)}
    assert len(rows) == 2
    event = next(r for r in rows.values() if r["target_url"] is None)
    webhook = next(r for r in rows.values() if r["target_url"] is not None)
    assert webhook["target_url"] == hook.receiver.url
    payload = json.loads(event["payload"])
    assert payload["topic"] == "case.dispatched" and payload["case_id"] == cases.home and payload["n"] == 1
    assert payload["district_code"] == cases.district and payload["grid_code"] == cases.grid
    assert payload["status"] == "dispatched" and payload["case_no"].startswith("N") and payload["at"]
    assert payload["unit_code"] == event["unit_code"] == webhook["unit_code"] == hook.unit_code
    assert "webhook_secret" not in event["payload"]
    # the webhook is a job; the event is recorded as delivered and published with the jobs after the commit
    assert [(j.name, j.job_id, j.kwargs["outbox_id"]) for j in jobs.jobs] == [
        ("notify.deliver", f"notify:{webhook['id']}:0", webhook["id"])
    ]
    assert event["delivered_at"] is not None and webhook["delivered_at"] is None
    [(channel, body)] = jobs.messages
    assert channel == service.CHANNEL and json.loads(body)["id"] == event["id"]


async def test_announce_with_the_case_given_and_a_unit_without_webhook(
    announce: Announce, pg: asyncpg.Connection, cases: Cases
) -> None:
    case = {"id": cases.away, "case_no": "Nx", "status": "handling", "district_code": "420999", "unit_code": "U0102"}
    ids, _ = await announce(topic="case.urged", case=case, payload={"status": "urged"})
    assert len(ids) == 1
    stored = await row(pg, ids[0])
    payload = json.loads(stored["payload"])
    assert stored["case_id"] == cases.away and stored["target_url"] is None and stored["unit_code"] == OTHER_UNIT
    assert payload["case_no"] == "Nx" and payload["status"] == "urged" and payload["grid_code"] is None


async def test_a_rollback_leaves_neither_rows_nor_jobs(
    engine: AsyncEngine, pg: asyncpg.Connection, cases: Cases
) -> None:
    before = await pg.fetchval("SELECT count(*) FROM outbox WHERE case_id = $1", cases.home)
    with JobBuffer.collect() as jobs:
        try:
            async with engine.begin() as conn:
                await service.announce(conn, topic="case.dispatched", case_id=cases.home)
                raise RuntimeError("the case action failed")
        except RuntimeError:
            jobs.discard()
    assert jobs.jobs == []
    assert await pg.fetchval("SELECT count(*) FROM outbox WHERE case_id = $1", cases.home) == before


async def test_webhook_is_signed_and_delivered_by_the_worker(
    announce: Announce, arq_pool: ArqRedis, drain: Drain, pg: asyncpg.Connection, cases: Cases, hook: Hook
) -> None:
    ids, jobs = await announce(topic="case.dispatched", case_id=cases.home, unit_code=hook.unit_code)
    await jobs.flush(arq_pool)
    assert await drain() == 1  # the webhook; the event went out with the flush
    [hit] = hook.receiver.hits
    assert verify(hook.secret, hit.body, hit.headers["x-grid-signature"])
    webhook_id = await webhook_of(pg, ids)
    assert hit.path == "/hooks/grid"
    assert hit.headers["x-grid-delivery"] == str(webhook_id)
    assert hit.headers["x-grid-topic"] == "case.dispatched"
    assert hit.headers["x-grid-timestamp"].isdigit() and hit.headers["content-type"] == "application/json"
    body = json.loads(hit.body)
    assert body["id"] == webhook_id and body["case_id"] == cases.home
    for outbox_id in ids:
        stored = await row(pg, outbox_id)
        assert stored["delivered_at"] is not None and stored["attempts"] == 1 and stored["failed_at"] is None


async def test_endpoint_failing_five_times_then_succeeding_is_delivered_once(
    announce: Announce, arq_pool: ArqRedis, drain: Drain, pg: asyncpg.Connection, settings: Settings, hook: Hook,
    cases: Cases,
) -> None:  # fmt: skip
    hook.receiver.script = [500, 503, 502, 500, 500]
    fast = replace(settings, webhook_backoff_s=0.001)
    ids, jobs = await announce(topic="case.overdue", case_id=cases.home, unit_code=hook.unit_code)
    await jobs.flush(arq_pool)
    await drain(ctx={"settings": fast})
    webhook_id = await webhook_of(pg, ids)
    stored = await row(pg, webhook_id)
    assert len(hook.receiver.hits) == 6
    assert len(hook.receiver.delivered) == 1
    assert stored["attempts"] == 6 and stored["delivered_at"] is not None and stored["failed_at"] is None
    assert stored["last_error"].startswith("HTTP 500")
    assert {h.headers["x-grid-delivery"] for h in hook.receiver.hits} == {str(webhook_id)}
    assert [h.headers["x-grid-attempt"] for h in hook.receiver.hits] == ["1", "2", "3", "4", "5", "6"]


async def test_the_same_job_twice_has_one_effect(
    announce: Announce, arq_pool: ArqRedis, drain: Drain, engine: AsyncEngine, pg: asyncpg.Connection,
    settings: Settings, hook: Hook, cases: Cases, redis: Redis,
) -> None:  # fmt: skip
    ids, jobs = await announce(topic="case.dispatched", case_id=cases.home, unit_code=hook.unit_code)
    jobs.discard()
    webhook_id = await webhook_of(pg, ids)
    # the queue holds the job twice (no job id: arq cannot tell them apart)
    await arq_pool.enqueue_job("notify.deliver", outbox_id=webhook_id)
    await arq_pool.enqueue_job("notify.deliver", outbox_id=webhook_id)
    assert await drain() == 2
    assert len(hook.receiver.hits) == 1
    # and twice at the same moment, then once more, directly
    ids, _ = await announce(topic="case.dispatched", case_id=cases.home, unit_code=hook.unit_code)
    second = await webhook_of(pg, ids)
    outcomes = await asyncio.gather(*(deliver_once(engine, settings, second) for _ in range(2)))
    assert sorted(outcomes) in (["busy", "delivered"], ["delivered", "done"])  # "done": the first already finished
    assert await deliver_once(engine, settings, second) == "done"
    assert len(hook.receiver.hits) == 2
    assert (await row(pg, second))["attempts"] == 1


async def test_given_up_after_the_limit_shown_and_retried(
    announce: Announce, api: AsyncTestClient[Litestar], auth_headers: Callable[..., Awaitable[dict[str, str]]], engine: AsyncEngine,
    pg: asyncpg.Connection, settings: Settings, hook: Hook, cases: Cases, redis: Redis,
) -> None:  # fmt: skip
    hook.receiver.script = [500] * 10
    limited = replace(settings, webhook_backoff_s=0.001, webhook_max_attempts=3)
    ids, _ = await announce(topic="case.dispatched", case_id=cases.home, unit_code=hook.unit_code)
    webhook_id = await webhook_of(pg, ids)
    outcomes = []
    for _ in range(3):
        await pg.execute("UPDATE outbox SET next_attempt_at = now() WHERE id = $1", webhook_id)
        outcomes.append(await deliver_once(engine, limited, webhook_id))
    assert outcomes == ["retry", "retry", "failed"]
    assert await deliver_once(engine, limited, webhook_id) == "done"
    stored = await row(pg, webhook_id)
    assert stored["failed_at"] is not None and stored["delivered_at"] is None and stored["attempts"] == 3
    assert len(hook.receiver.hits) == 3
    assert webhook_id not in await service.pending(engine, 1000)

    client = api
    admin = await auth_headers("admin")
    r = await client.get("/api/v1/outbox", params={"state": "failed", "kind": "webhook"}, headers=admin)
    assert r.status_code == 200, r.text
    listed = {item["id"]: item for item in r.json()["items"]}
    assert listed[webhook_id]["state"] == "failed" and listed[webhook_id]["attempts"] == 3
    assert listed[webhook_id]["last_error"].startswith("HTTP 500") and listed[webhook_id]["kind"] == "webhook"
    own = await client.get(
        "/api/v1/outbox", params={"state": "failed"}, headers=await auth_headers(f"unit-{hook.unit_code}")
    )
    assert webhook_id in {item["id"] for item in own.json()["items"]}
    assert all(item["kind"] == "webhook" and item["unit_code"] == hook.unit_code for item in own.json()["items"])
    other = await client.get("/api/v1/outbox", headers=await auth_headers(f"unit-{OTHER_UNIT}"))
    assert other.status_code == 200 and webhook_id not in {item["id"] for item in other.json()["items"]}
    assert (await client.get("/api/v1/outbox", headers=await auth_headers("dispatcher1"))).status_code == 403
    assert (await client.get("/api/v1/outbox", params={"state": "lost"}, headers=admin)).status_code == 400

    supervisor = await auth_headers("supervisor1")
    assert (await client.post(f"/api/v1/outbox/{webhook_id}/retry", headers=supervisor)).status_code == 403
    r = await client.post(f"/api/v1/outbox/{webhook_id}/retry", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending" and r.json()["attempts"] == 0
    assert (await client.post(f"/api/v1/outbox/{webhook_id}/retry", headers=admin)).status_code == 409
    assert (await client.post("/api/v1/outbox/999999999/retry", headers=admin)).status_code == 404
    hook.receiver.script = []
    assert await deliver_once(engine, limited, webhook_id) == "delivered"


async def test_outbox_pages_by_cursor(
    announce: Announce,
    api: AsyncTestClient[Litestar],
    auth_headers: Callable[..., Awaitable[dict[str, str]]],
    cases: Cases,
) -> None:
    for _ in range(3):
        await announce(topic="case.urged", case_id=cases.away)
    client = api
    admin = await auth_headers("admin")
    first = await client.get("/api/v1/outbox", params={"limit": 2, "kind": "event"}, headers=admin)
    assert first.status_code == 200 and len(first.json()["items"]) == 2 and first.json()["next_cursor"]
    second = await client.get(
        "/api/v1/outbox", params={"limit": 2, "kind": "event", "cursor": first.json()["next_cursor"]}, headers=admin
    )
    ids = [i["id"] for i in first.json()["items"] + second.json()["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    bad = await client.get("/api/v1/outbox", params={"cursor": "bm9wZQ"}, headers=admin)
    assert bad.status_code == 422


async def test_events_are_published_to_redis(
    announce: Announce, engine: AsyncEngine, redis: Redis, settings: Settings, pg: asyncpg.Connection, cases: Cases
) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(service.CHANNEL)
    try:
        ids, jobs = await announce(topic="case.closed", case_id=cases.home, payload={"note": "done"})
        assert await jobs.flush(redis) == 0  # no job: the event goes out with the flush itself
        assert await deliver_once(engine, settings, ids[0]) == "done"  # nothing left for a worker
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None and json.loads(message["data"])["id"] == ids[0]:
                break
        assert message is not None
        event = json.loads(message["data"])
        assert event["topic"] == "case.closed" and event["case_id"] == cases.home and event["note"] == "done"
        assert (await row(pg, ids[0]))["delivered_at"] is not None
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_the_sweep_requeues_what_redis_lost_once(
    announce: Announce, arq_pool: ArqRedis, drain: Drain, engine: AsyncEngine, pg: asyncpg.Connection, hook: Hook,
    cases: Cases, settings: Settings,
) -> None:  # fmt: skip
    ids, jobs = await announce(topic="case.dispatched", case_id=cases.home, unit_code=hook.unit_code)
    jobs.discard()  # Redis was down when the request committed
    webhook_id = await webhook_of(pg, ids)
    ids = [webhook_id]  # the event row was recorded as delivered (consoles replay it by Last-Event-ID)
    assert webhook_id in await service.pending(engine, 10_000)
    assert webhook_id not in await service.pending(engine, 10_000, overdue_s=60)
    await pg.execute("UPDATE outbox SET next_attempt_at = now() - interval '2 minutes' WHERE id = ANY($1)", ids)
    ctx = {"engine": engine, "redis": arq_pool, "settings": settings}
    assert await notify_jobs.sweep(ctx) >= 1
    queued = await arq_pool.zcard(default_queue_name)
    await notify_jobs.sweep(ctx)  # a second sweep before the worker ran: the same job ids, nothing new
    assert await arq_pool.zcard(default_queue_name) == queued
    assert await arq_pool.exists(f"arq:job:notify:{webhook_id}:0")
    await drain()
    assert len(hook.receiver.hits) == 1
    for outbox_id in ids:
        assert (await row(pg, outbox_id))["delivered_at"] is not None


async def test_openapi_documents_the_routes(api: AsyncTestClient[Litestar]) -> None:
    paths = (await api.get("/docs/openapi.json")).json()["paths"]
    assert "401" in paths["/api/v1/events"]["get"]["responses"]
    assert {"state", "kind", "unit_code", "limit", "cursor"} <= {
        p["name"] for p in paths["/api/v1/outbox"]["get"]["parameters"]
    }
    assert {"403", "404", "409"} <= set(paths["/api/v1/outbox/{outbox_id}/retry"]["post"]["responses"])
