"""Helpers of the citizens' side tests: places, report bodies, photos, settings changed for one test, clean limits."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from redis.asyncio import Redis

from grid_mgmt.lib.ratelimit import KEY_PREFIX
from grid_mgmt.settings import Settings

REPORTS = "/api/v1/public/reports"
CLASS = "E0506"
"""A public class few other tests use (占压盲道, duplicate radius 20 m)."""


def jpeg(color: tuple[int, int, int] = (90, 120, 200), size: tuple[int, int] = (48, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


async def random_place(pg: asyncpg.Connection, username: str | None = None) -> tuple[float, float]:
    """A random point inside a random unit grid (of the worker's duty grids when `username` is given)."""
    where = ""
    args: list[Any] = []
    if username is not None:
        where = (" WHERE g.code IN (SELECT d.grid_code FROM duty_grid_grid d JOIN duty_grid_worker w USING "
                 "(duty_grid_code) JOIN app_user u ON u.id = w.user_id WHERE u.username = $1)")  # fmt: skip
        args.append(username)
    row = await pg.fetchrow(
        "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Buffer(g.geom, -0.00005), 1))).geom"
        f" AS p FROM (SELECT geom FROM grid g{where} ORDER BY random() LIMIT 1) g) x",
        *args,
    )
    return float(row["lon"]), float(row["lat"])


def body(lon: float, lat: float, **over: Any) -> dict[str, Any]:
    return {"category_code": CLASS, "lon": lon, "lat": lat, "crs": "wgs84", "description": "盲道被电动车占压",
            **over}  # fmt: skip


@pytest.fixture
async def place(pg: asyncpg.Connection) -> tuple[float, float]:
    return await random_place(pg)


@pytest.fixture
def file_report(client: AsyncTestClient[Litestar], place: tuple[float, float]) -> Callable[..., Any]:
    """`receipt = await file_report(description=…)`: a JSON report at a random place that must succeed (201)."""

    async def file(**over: Any) -> dict[str, Any]:
        r = await client.post(REPORTS, json=body(*place, **over))
        assert r.status_code == 201, r.text
        receipt: dict[str, Any] = r.json()
        return receipt

    return file


@pytest.fixture(autouse=True)
async def clean_limits(settings: Settings) -> AsyncIterator[None]:
    """Every test starts with no rate-limit counters (all test requests come from the address `testclient`)."""
    redis = Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(f"{KEY_PREFIX}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        yield
    finally:
        await redis.aclose()


@pytest.fixture
def tune(app: Litestar) -> Iterator[Callable[..., Settings]]:
    """`tune(public_reports_per_address=3)`: the app's settings changed for this test (read per request)."""
    before: Settings = app.state.settings

    def change(**changes: Any) -> Settings:
        app.state.settings = replace(app.state.settings, **changes)
        return app.state.settings  # type: ignore[no-any-return]

    yield change
    app.state.settings = before


async def case_of(pg: asyncpg.Connection, tracking_code: str) -> asyncpg.Record:
    row = await pg.fetchrow(
        "SELECT c.*, pr.tracking_code, pr.token_sha256, pr.channel, pr.client_address, pr.rating, pr.rating_comment,"
        " pr.reopen_count FROM public_report pr JOIN cases c ON c.id = pr.case_id WHERE pr.tracking_code = $1",
        tracking_code,
    )
    assert row is not None
    return row


async def counts(pg: asyncpg.Connection) -> tuple[int, ...]:
    """Rows of the tables a report writes: nothing may change when a report is refused."""
    return tuple(
        await pg.fetchrow(
            "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM public_report),"
            " (SELECT count(*) FROM case_contact), (SELECT count(*) FROM attachment),"
            " (SELECT count(*) FROM case_activity)"
        )
    )


async def close_case(pg: asyncpg.Connection, case_id: int, days_ago: float = 0) -> None:
    """Put a case in `closed` directly (the full path is the end-to-end test's): closed `days_ago` days ago."""
    await pg.execute(
        "UPDATE cases SET status = 'closed', stage = NULL, deadline = NULL, warn_at = NULL,"
        " closed_at = now() - make_interval(secs => $2), version = version + 1 WHERE id = $1",
        case_id, days_ago * 86400,
    )  # fmt: skip
