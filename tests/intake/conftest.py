"""Helpers for intake tests: places in and out of a worker's duty grids, components, photos made with Pillow."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from PIL import Image
from redis.asyncio import Redis

from grid_mgmt.lib.jobcodec import deserialize
from grid_mgmt.settings import Settings

CASES = "/api/v1/cases"


@pytest.fixture(scope="session")
def media_dir(app: Litestar, client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Photos of these tests go to a throwaway directory (the app reads its settings from its state per request)."""
    path = tmp_path_factory.mktemp("media")
    before: Settings = app.state.settings
    app.state.settings = replace(before, media_dir=str(path))
    yield path
    app.state.settings = before


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


def now_iso(minutes: float = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).isoformat()


async def user_id(pg: asyncpg.Connection, username: str) -> int:
    return int(await pg.fetchval("SELECT id FROM app_user WHERE username = $1", username))


async def duty_grids(pg: asyncpg.Connection, username: str) -> list[str]:
    rows = await pg.fetch(
        "SELECT g.grid_code FROM duty_grid_worker w JOIN app_user u ON u.id = w.user_id"
        " JOIN duty_grid_grid g USING (duty_grid_code) WHERE u.username = $1 ORDER BY 1",
        username,
    )
    return [r["grid_code"] for r in rows]


async def grid_point(pg: asyncpg.Connection, code: str) -> tuple[float, float]:
    row = await pg.fetchrow(
        "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid WHERE code = $1) x",
        code,
    )
    return float(row["lon"]), float(row["lat"])


async def place_of(pg: asyncpg.Connection, username: str, nth: int = 0) -> tuple[str, float, float]:
    """(grid code, lon, lat) of a point inside one of the worker's duty grids, away from components of C-classes."""
    code = (await duty_grids(pg, username))[nth]
    lon, lat = await grid_point(pg, code)
    return code, lon, lat


async def place_outside(pg: asyncpg.Connection, username: str) -> tuple[str, float, float]:
    """A grid far from the worker's duty grids (another street)."""
    mine = await duty_grids(pg, username)
    code = await pg.fetchval(
        "SELECT code FROM grid WHERE left(code, 9) <> $1 AND NOT code = ANY($2::varchar[]) ORDER BY code LIMIT 1",
        mine[0][:9],
        mine,
    )
    lon, lat = await grid_point(pg, code)
    return code, lon, lat


def report(lon: float, lat: float, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category_code": "E0102",
        "urgency": "normal",
        "description": "路边暴露垃圾一堆",
        "lon": lon,
        "lat": lat,
        "accuracy_m": 8.0,
        "captured_at": now_iso(-3),
        "client_id": new_key(),
    }
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


async def count_cases(pg: asyncpg.Connection) -> tuple[int, int, int]:
    """(cases, timeline rows, idempotency records): to prove that a refused request wrote nothing."""
    row = await pg.fetchrow(
        "SELECT (SELECT count(*) FROM cases) AS c, (SELECT count(*) FROM case_activity) AS a,"
        " (SELECT count(*) FROM idempotency_key) AS k"
    )
    return int(row["c"]), int(row["a"]), int(row["k"])


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    r = Redis.from_url(settings.redis_url)
    try:
        yield r
    finally:
        await r.aclose()


async def queued_jobs(redis: Redis, function: str) -> list[dict[str, Any]]:
    """The arq jobs waiting in `arq:queue` for `function` (decoded with our msgpack codec)."""
    out = []
    for job_id in await redis.zrange("arq:queue", 0, -1):
        raw = await redis.get(b"arq:job:" + job_id)
        if raw is None:
            continue
        job = deserialize(raw)
        if job.get("f") == function:
            out.append(job)
    return out


def files_named(directory: Path, pattern: str) -> list[str]:
    """Names of the files under `directory` matching `pattern` (any depth)."""
    return sorted(p.name for p in directory.rglob(pattern))


# --- photos -------------------------------------------------------------------------------------------------


def _rational(value: float) -> tuple[int, int]:
    return round(value * 1_000_000), 1_000_000


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = (value - d - m / 60) * 3600
    return float(d), float(m), round(s, 6)


def exif_bytes(taken: str | None = None, lon: float | None = None, lat: float | None = None) -> bytes:
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
        exif.get_ifd(0x8769)[0x9011] = "+08:00"
    if lon is not None and lat is not None:
        gps = exif.get_ifd(0x8825)
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = _dms(lat)
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = _dms(lon)
    return exif.tobytes()


def photo(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30),
          exif: bytes | None = None) -> bytes:  # fmt: skip
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):  # some structure, so that different colours give different bytes
        img.putpixel((x, x % size[1]), (x % 256, 255 - x % 256, 90))
    out = io.BytesIO()
    kw: dict[str, Any] = {"exif": exif} if exif else {}
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def gif_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("P", (16, 16)).save(out, format="GIF")
    return out.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims width × height pixels (an IDAT that would inflate to gigabytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1_000_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
