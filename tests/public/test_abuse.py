"""Abuse protection: rate limits per address and per contact in Redis (shared by every process), the trusted proxy
header, and reports going through when Redis is down."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from grid_mgmt.lib.ratelimit import ClientAddress, Limit, RateLimited, RateLimiter
from grid_mgmt.public.schemas import PublicReportIn
from grid_mgmt.public.service import PublicService
from grid_mgmt.settings import Settings
from tests.public.conftest import REPORTS, body, counts


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    r = Redis.from_url(settings.redis_url)
    yield r
    await r.aclose()


async def test_a_flood_from_one_address_is_429_with_retry_after(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, place: tuple[float, float], tune: Any
) -> None:
    tune(public_reports_per_address=3, public_address_window_s=600)
    for _ in range(3):
        assert (await client.post(REPORTS, json=body(*place))).status_code == 201
    before = await counts(pg)
    r = await client.post(REPORTS, json=body(*place))
    assert r.status_code == 429, r.text
    assert 590 <= int(r.headers["Retry-After"]) <= 600
    assert r.json()["extra"] == {"retry_after": int(r.headers["Retry-After"]), "limit": "public.address"}
    assert "reports from this address" in r.json()["detail"]
    assert await counts(pg) == before
    # the follow-up limit is a separate counter: the flood does not lock a citizen out of their own report
    assert (await client.get(f"{REPORTS}/0000000000")).status_code == 404


async def test_a_forwarded_header_from_an_untrusted_peer_changes_nothing(
    client: AsyncTestClient[Any], place: tuple[float, float], tune: Any
) -> None:
    tune(public_reports_per_address=2, trusted_proxy_header="X-Forwarded-For", trusted_proxies="10.0.0.0/8")
    answers = [
        (await client.post(REPORTS, json=body(*place), headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code
        for i in range(3)
    ]
    assert answers == [201, 201, 429]  # the test client's peer is not a trusted proxy: the header is ignored


async def test_many_addresses_one_phone_is_429(
    engine: AsyncEngine, redis: Redis, settings: Settings, pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    tuned = replace(settings, public_reports_per_contact=2, public_reports_per_address=100)
    service = PublicService(engine, tuned, redis, None)
    spellings = ["139 1234 5670", "+86 13912345670", "0086-139-1234-5670"]
    first = await service.submit(PublicReportIn(**body(*place, contact_phone=spellings[0], consent=True)),
                                 client="198.51.100.1")  # fmt: skip
    await service.submit(PublicReportIn(**body(*place, contact_phone=spellings[1], consent=True)),
                         client="198.51.100.2")  # fmt: skip
    before = await counts(pg)
    with pytest.raises(RateLimited) as refused:
        await service.submit(PublicReportIn(**body(*place, contact_phone=spellings[2], consent=True)),
                             client="198.51.100.3")  # fmt: skip
    assert refused.value.status_code == 429 and refused.value.extra["limit"] == "public.contact"
    assert 3590 <= refused.value.retry_after <= 3600 and refused.value.headers["Retry-After"]
    assert await counts(pg) == before
    # e-mail addresses count case-insensitively; another contact is not affected
    for i, email in enumerate(["Wang@Example.cn", "wang@example.CN"]):
        await service.submit(PublicReportIn(**body(*place, contact_email=email, consent=True)), client=f"192.0.2.{i}")
    with pytest.raises(RateLimited):
        await service.submit(PublicReportIn(**body(*place, contact_email="WANG@example.cn", consent=True)),
                             client="192.0.2.9")  # fmt: skip
    assert first.status == "verifying" and first.case_no


async def test_reports_go_through_when_redis_is_down(
    engine: AsyncEngine, settings: Settings, place: tuple[float, float], caplog: pytest.LogCaptureFixture
) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    tuned = replace(settings, public_reports_per_address=1)
    service = PublicService(engine, tuned, down, None)
    with caplog.at_level(logging.WARNING, logger="grid_mgmt.lib.ratelimit"):
        receipts = [await service.submit(PublicReportIn(**body(*place)), client="192.0.2.77") for _ in range(2)]
    await down.aclose()
    assert all(r.status == "verifying" for r in receipts)
    assert "rate limits unavailable" in caplog.text


async def test_the_limiter_counts_per_subject_in_one_window(redis: Redis) -> None:
    limiter = RateLimiter(redis, prefix="grid:rate:test:")
    limit = Limit("t", 2, 60, "tries")
    for subject in ("a", "b"):
        await limiter.reset(limit, subject)
    await limiter.hit((limit, "a"))
    await limiter.hit((limit, "a"), (limit, "b"), (Limit("off", 0, 60), "a"), (limit, None))
    with pytest.raises(RateLimited) as refused:
        await limiter.hit((limit, "b"), (limit, "a"))
    assert "too many tries: at most 2 per minute" in refused.value.detail
    assert 55 <= refused.value.retry_after <= 60
    assert re.fullmatch(r"grid:rate:test:t:[0-9a-f]{32}", limiter.key(limit, "a"))  # hashed, not the subject
    assert await redis.ttl(limiter.key(limit, "b")) > 0


def test_the_client_address_behind_trusted_proxies() -> None:
    none = ClientAddress("", "")
    assert none.resolve("203.0.113.9", "1.2.3.4") == "203.0.113.9"
    assert none.resolve(None, None) == "unknown"
    proxied = ClientAddress("X-Forwarded-For", "10.0.0.0/8, 192.168.1.1")
    assert proxied.header == "x-forwarded-for"
    assert proxied.resolve("10.1.2.3", "203.0.113.5") == "203.0.113.5"
    # the right-most address that is not a trusted proxy; what the client wrote further left proves nothing
    assert proxied.resolve("10.1.2.3", "6.6.6.6, 203.0.113.5, 192.168.1.1") == "203.0.113.5"
    assert proxied.resolve("192.168.1.1", "2001:db8::1") == "2001:db8::1"
    assert proxied.resolve("203.0.113.7", "1.1.1.1") == "203.0.113.7"  # not a trusted peer
    assert proxied.resolve("10.1.2.3", None) == "10.1.2.3"
    assert proxied.resolve("10.1.2.3", "garbage") == "10.1.2.3"
    assert proxied.resolve("10.1.2.3", "10.9.9.9") == "10.1.2.3"  # only proxies in the chain
    assert proxied.resolve("testclient", "1.1.1.1") == "testclient"


def test_trusted_proxies_are_checked_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRID_TRUSTED_PROXIES", "10.0.0.0/8,not-a-network")
    with pytest.raises(ValueError, match="not-a-network"):
        Settings()
    monkeypatch.setenv("GRID_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    assert Settings().trusted_proxies == "10.0.0.0/8, ::1"


async def test_concurrent_requests_share_counting_calls_and_each_is_counted(redis: Redis) -> None:
    async def evalsha_calls() -> int:
        stats = await redis.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))

    limit = Limit("batch", 3, 60, "tries")
    subjects = [f"s{i}" for i in range(40)]
    for subject in subjects:
        await RateLimiter(redis, prefix="grid:rate:test:").reset(limit, subject)
    before = await evalsha_calls()
    # 40 requests of one process at once: 37 count a hit each on their own subject, 5 on one subject limited to 3
    calls = [RateLimiter(redis, prefix="grid:rate:test:").hit((limit, s)) for s in subjects[:35]]
    calls += [RateLimiter(redis, prefix="grid:rate:test:").hit((limit, "s39")) for _ in range(5)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    calls_made = await evalsha_calls() - before
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(refused) == 2 and all(r is None for r in results[:35])
    limiter = RateLimiter(redis, prefix="grid:rate:test:")
    assert [int(await redis.get(limiter.key(limit, s)) or 0) for s in subjects[:35]] == [1] * 35
    assert int(await redis.get(limiter.key(limit, "s39"))) == 5  # refused hits count too
    assert 1 <= calls_made <= 3, calls_made  # not one call per request
