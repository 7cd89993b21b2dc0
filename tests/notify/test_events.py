"""GET /api/v1/events end to end: a real uvicorn server, an httpx stream, events through Redis, scope filtering."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.notify import service
from grid_mgmt.settings import Settings
from tests.conftest import DEMO_PASSWORD
from tests.notify.conftest import Announce, Cases, notify_app


@pytest.fixture(scope="module")
def server_url(settings: Settings) -> Iterator[str]:
    """The API in a uvicorn server of its own (own thread, own event loop), as in production."""
    app = notify_app(replace(settings, events_keepalive_s=0.3))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=10) as client:
        yield client


async def token(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await http.post("/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@dataclass
class Sse:
    """One parsed server-sent event (or comment)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comment: str | None = None


async def events(response: httpx.Response) -> AsyncIterator[Sse]:
    current = Sse()
    async for line in response.aiter_lines():
        if line == "":
            yield current
            current = Sse()
        elif line.startswith(":"):
            current.comment = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            if name in ("id", "event", "data"):
                setattr(current, name, value.removeprefix(" "))


async def subscribers(redis: Redis) -> int:
    counts = await redis.pubsub_numsub(service.CHANNEL)
    return int(counts[0][1])


async def test_a_dispatcher_gets_the_events_of_their_district_only(
    http: httpx.AsyncClient, announce: Announce, engine: AsyncEngine, redis: Redis, settings: Settings, cases: Cases
) -> None:
    headers = await token(http, "dispatcher1")
    baseline = await subscribers(redis)
    async with asyncio.timeout(20), http.stream("GET", "/api/v1/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        first = await anext(stream)
        assert first.comment == "connected"  # subscribed: nothing published from now on is missed
        away, away_jobs = await announce(topic="case.dispatched", case_id=cases.away)
        home, home_jobs = await announce(topic="case.dispatched", case_id=cases.home)
        await away_jobs.flush(redis)  # published right after each commit
        await home_jobs.flush(redis)
        got, keepalive = [], False
        async for sse in stream:
            if sse.comment == "keep-alive":
                keepalive = True
            if sse.data:
                got.append(sse)
                if sse.id == str(home[0]):
                    break
        # the out-of-scope event was published first, on the same connection: had it passed, it would be here
        assert str(away[0]) not in {s.id for s in got}
        last = got[-1]
        assert last.event == "case.dispatched"
        data = json.loads(last.data or "")
        assert data["id"] == home[0] and data["case_id"] == cases.home and data["district_code"] == cases.district
        # idle: keep-alive comments
        while not keepalive:
            keepalive = (await anext(stream)).comment == "keep-alive"
    for _ in range(100):  # the closed stream gave its Redis subscription back
        if await subscribers(redis) <= baseline:
            break
        await asyncio.sleep(0.05)
    assert await subscribers(redis) <= baseline


async def test_a_reconnect_replays_what_was_missed_and_topics_filter(
    http: httpx.AsyncClient, announce: Announce, cases: Cases
) -> None:
    headers = await token(http, "dispatcher1")
    away, _ = await announce(topic="case.urged", case_id=cases.away)
    home, _ = await announce(topic="case.urged", case_id=cases.home)
    other, _ = await announce(topic="case.closed", case_id=cases.home)
    # not delivered yet: the outbox has them, so a reconnecting console catches up from the database
    missed = {**headers, "Last-Event-ID": str(away[0] - 1)}
    params = {"topics": "case.urged"}
    async with asyncio.timeout(20), http.stream("GET", "/api/v1/events", headers=missed, params=params) as response:
        seen: list[str] = []
        async for sse in events(response):
            if sse.id:
                seen.append(sse.id)
            if sse.id == str(home[0]) or sse.comment == "keep-alive":
                break
    assert str(home[0]) in seen
    assert str(away[0]) not in seen and str(other[0]) not in seen


async def test_the_stream_needs_a_login(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/v1/events")
    assert r.status_code == 401


async def test_a_browser_opens_the_stream_with_a_ticket_that_opens_nothing_else(
    http: httpx.AsyncClient, announce: Announce, redis: Redis, cases: Cases
) -> None:
    """EventSource cannot send Authorization: a ticket from POST /auth/stream-ticket stands in, on /events only."""
    headers = await token(http, "dispatcher1")
    r = await http.post("/api/v1/auth/stream-ticket", headers=headers)
    assert r.status_code == 201, r.text
    ticket, expires_in = r.json()["ticket"], r.json()["expires_in"]
    assert 0 < expires_in <= 60
    key = "grid:stream-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()
    assert 0 < await redis.ttl(key) <= 60  # kept as its hash only, standing for the access token
    assert await redis.get(key) == headers["Authorization"].removeprefix("Bearer ").encode()

    for _ in range(2):  # EventSource reconnects with the same URL: the ticket works for its whole life
        async with asyncio.timeout(20), http.stream("GET", "/api/v1/events", params={"ticket": ticket}) as response:
            assert response.status_code == 200
            stream = events(response)
            assert (await anext(stream)).comment == "connected"
            home, jobs = await announce(topic="case.urged", case_id=cases.home)
            await jobs.flush(redis)
            async for sse in stream:
                if sse.id == str(home[0]):
                    break
            # scoped as the dispatcher: their district's event arrived
            assert sse.event == "case.urged" and json.loads(sse.data or "")["district_code"] == cases.district

    # anywhere else the ticket is no credential at all
    r = await http.get("/api/v1/cases", params={"ticket": ticket})
    assert r.status_code == 401
    r = await http.get("/api/v1/auth/me", params={"ticket": ticket})
    assert r.status_code == 401
    r = await http.get("/api/v1/cases", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 401


async def test_a_wrong_or_expired_ticket_is_401_and_a_ticket_needs_a_login(
    http: httpx.AsyncClient, redis: Redis
) -> None:
    for bad in ("x" * 32, "short", "é" * 20, ""):
        r = await http.get("/api/v1/events", params={"ticket": bad})
        assert r.status_code == 401, (bad, r.text)
    assert "stream-ticket" in (await http.get("/api/v1/events", params={"ticket": "x" * 32})).text
    r = await http.post("/api/v1/auth/stream-ticket")
    assert r.status_code == 401
    headers = await token(http, "dispatcher1")
    ticket = (await http.post("/api/v1/auth/stream-ticket", headers=headers)).json()["ticket"]
    await redis.delete("grid:stream-ticket:" + hashlib.sha256(ticket.encode()).hexdigest())  # as when it expires
    r = await http.get("/api/v1/events", params={"ticket": ticket})
    assert r.status_code == 401


async def test_logging_out_everywhere_ends_a_ticket(http: httpx.AsyncClient) -> None:
    # a user of this test's own: logging out everywhere revokes every token of the user the other tests share
    username = f"ticket-{uuid.uuid4().hex[:10]}"
    password = "ticket-Test-2026!"
    body = {"username": username, "password": password, "display_name": "票据", "roles": ["supervisor"]}
    r = await http.post("/api/v1/admin/users", json=body, headers=await token(http, "admin"))
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/auth/login", json={"username": username, "password": password})
    login = r.json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    ticket = (await http.post("/api/v1/auth/stream-ticket", headers=headers)).json()["ticket"]
    async with http.stream("GET", "/api/v1/events", params={"ticket": ticket}) as response:
        assert response.status_code == 200  # it worked before the logout
    r = await http.post(
        "/api/v1/auth/logout", headers=headers, json={"refresh_token": login["refresh_token"], "everywhere": True}
    )
    assert r.status_code == 204, r.text
    for _ in range(50):  # the principal cache hears of the revocation
        r = await http.get("/api/v1/events", params={"ticket": ticket})
        if r.status_code == 401:
            break
        await asyncio.sleep(0.1)
    assert r.status_code == 401
    r = await http.post(f"/api/v1/admin/users/{login['user']['id']}/deactivate", headers=await token(http, "admin"))
    assert r.status_code == 200, r.text


async def test_without_redis_a_ticket_is_503_not_500() -> None:
    from litestar.exceptions import ServiceUnavailableException

    from grid_mgmt.accounts.middleware import _redeemed

    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)

    class App:
        state = {"redis": down}

    try:
        with pytest.raises(ServiceUnavailableException) as refused:
            await _redeemed({"litestar_app": App()}, "x" * 32)  # type: ignore[typeddict-item]
        assert "Redis" in str(refused.value.detail)
    finally:
        await down.aclose()
