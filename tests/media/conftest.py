"""Media tests: the app's current settings for the worker, a real arq worker, photos with orientation and GPS."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq.connections import ArqRedis
from litestar import Litestar
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.db.engine import make_engine
from grid_mgmt.settings import Settings
from tests.worker_fixtures import make_worker, run_until_idle


@pytest.fixture
def app_settings(app: Litestar, client: Any) -> Settings:
    """The settings the app stores photos with right now (intake tests swap the media directory for the session)."""
    settings: Settings = app.state.settings
    return settings


@pytest.fixture
def drain(arq_pool: ArqRedis, app_settings: Settings) -> Callable[..., Awaitable[int]]:
    """The shared `drain`, but the worker reads photos where the app wrote them (see `app_settings`)."""

    async def run(within: float = 30.0, **kw: object) -> int:
        return await run_until_idle(arq_pool, make_worker(arq_pool, app_settings, **kw), within)

    return run


@pytest.fixture
async def engine(app_settings: Settings) -> AsyncIterator[AsyncEngine]:
    e = make_engine(app_settings)
    try:
        yield e
    finally:
        await e.dispose()


RED, BLUE = (220, 20, 20), (20, 40, 220)


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    return float(d), float(m), round((value - d - m / 60) * 3600, 4)


def camera_exif(lon: float, lat: float, *, orientation: int = 6, software: str = "S" * 300) -> bytes:
    """EXIF as a phone writes it: make, model, orientation, time, GPS with altitude, and a binary MakerNote."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0110] = "X1 Pro"
    exif[0x0112] = orientation
    exif[0x0131] = software
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2026:01:05 09:30:15"
    sub[0x9011] = "+08:00"
    sub[0x927C] = b"\x01\x02maker-note"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(lat)
    gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(lon)
    gps[6] = 12.5
    return exif.tobytes()


def camera_jpeg(exif: bytes | None, size: tuple[int, int] = (640, 480)) -> bytes:
    """A landscape JPEG as the sensor stores it: the top-left quarter red, the rest blue, a random speck (unique)."""
    w, h = size
    img = Image.new("RGB", size, BLUE)
    img.paste(RED, (0, 0, w // 2, h // 2))
    img.putpixel((w - 1, h - 1), (random.randrange(256), random.randrange(256), random.randrange(256)))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=95, **({"exif": exif} if exif else {}))
    return out.getvalue()
