"""Thumbnails and EXIF made by the real worker after a real upload; idempotency, broken files, scope, the sweep."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from arq.connections import ArqRedis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.media import images, service
from grid_mgmt.settings import Settings
from tests.intake.conftest import CASES, place_of, report
from tests.media.conftest import BLUE, RED, camera_exif, camera_jpeg
from workers import media as media_jobs

ATTACHMENTS = "/api/v1/attachments"

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def case(client: Client, auth_headers: Any, pg: asyncpg.Connection) -> dict[str, Any]:
    """A fresh case reported by worker1 inside their duty grid."""
    _, lon, lat = await place_of(pg, "worker1")
    r = await client.post(CASES, json=report(lon, lat), headers=await auth_headers("worker1"))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def upload(client: Client, headers: dict[str, str], case_id: int, data: bytes) -> dict[str, Any]:
    r = await client.post(
        f"{CASES}/{case_id}/attachments",
        headers=headers,
        files={"file": ("photo.jpg", data, "image/jpeg")},
        data={"kind": "report"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def state(pg: asyncpg.Connection, attachment_id: int) -> Any:
    return await pg.fetchrow(
        "SELECT thumb_key, exif::text AS exif, processed_at, storage_key FROM attachment WHERE id = $1", attachment_id
    )


def close_to(a: tuple[int, ...], b: tuple[int, ...], within: int = 40) -> bool:
    return all(abs(x - y) <= within for x, y in zip(a, b, strict=True))


async def test_upload_makes_an_upright_thumbnail_and_exif(
    client: Client, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection, arq_pool: ArqRedis,
    drain: Any, app_settings: Settings,
) -> None:  # fmt: skip
    headers = await auth_headers("worker1")
    lon, lat = case["lon"] + 0.0001, case["lat"]
    a = await upload(client, headers, case["id"], camera_jpeg(camera_exif(lon, lat)))
    assert (a["width"], a["height"]) == (640, 480)  # as stored: the sensor's landscape
    assert await arq_pool.exists(f"arq:job:media:{a['id']}"), "the upload enqueues media.process after its commit"
    r = await client.get(f"{ATTACHMENTS}/{a['id']}/thumbnail", headers=headers)
    assert r.status_code == 404 and "thumbnail not made yet" in r.json()["detail"], r.text

    assert await drain() >= 1
    row = await state(pg, a["id"])
    assert row["processed_at"] is not None and row["thumb_key"].startswith("thumbs/")
    exif = json.loads(row["exif"])
    assert exif["Make"] == "TestCam" and exif["Model"] == "X1 Pro" and exif["Orientation"] == 6
    assert exif["DateTimeOriginal"] == "2026:01:05 09:30:15" and exif["OffsetTimeOriginal"] == "+08:00"
    assert abs(exif["GPSLatitude"] - lat) < 1e-5 and abs(exif["GPSLongitude"] - lon) < 1e-5
    assert exif["GPSAltitude"] == 12.5
    assert exif["Software"] == "S" * 200  # cut to 200 characters
    assert "MakerNote" not in exif and all(not isinstance(v, dict) for v in exif.values())
    assert (Path(app_settings.media_dir) / row["thumb_key"]).is_file()

    r = await client.get(f"{ATTACHMENTS}/{a['id']}/thumbnail", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/jpeg")
    sha = hashlib.sha256(r.content).hexdigest()
    assert r.headers["etag"] == f'"{sha}"' and row["thumb_key"] == f"thumbs/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    thumb = Image.open(io.BytesIO(r.content))
    assert thumb.format == "JPEG"
    assert thumb.size == (240, 320)  # orientation 6 applied: portrait, longest side 320
    assert not thumb.getexif() and "icc_profile" not in thumb.info  # metadata stripped
    rgb = thumb.convert("RGB")
    # the sensor's top-left (red) is the picture's top-right once turned 90° clockwise
    assert close_to(rgb.getpixel((200, 40)), RED) and close_to(rgb.getpixel((40, 40)), BLUE)  # type: ignore[arg-type]
    assert close_to(rgb.getpixel((200, 280)), BLUE)  # type: ignore[arg-type]


async def test_processing_twice_has_one_effect(
    client: Client, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection, arq_pool: ArqRedis,
    drain: Any, engine: AsyncEngine, app_settings: Settings,
) -> None:  # fmt: skip
    headers = await auth_headers("worker1")
    data = camera_jpeg(camera_exif(case["lon"], case["lat"], orientation=1))
    a = await upload(client, headers, case["id"], data)
    await drain()
    first = await state(pg, a["id"])
    assert first["thumb_key"] is not None

    assert await service.process(engine, app_settings, a["id"]) == "done"
    await arq_pool.enqueue_job("media.process", attachment_id=a["id"], _job_id=f"again:{a['id']}")
    await drain()
    again = await state(pg, a["id"])
    assert (again["thumb_key"], again["processed_at"], again["exif"]) == (
        first["thumb_key"], first["processed_at"], first["exif"],
    )  # fmt: skip

    # the same photo again is the same attachment: nothing new to process, no job
    assert (await upload(client, headers, case["id"], data))["id"] == a["id"]
    assert await arq_pool.zcard("arq:queue") == 0
    assert await service.process(engine, app_settings, 2**62) == "missing"


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
async def test_a_missing_or_undecodable_file_is_recorded_not_retried(
    client: Client, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection, drain: Any,
    app_settings: Settings, damage: str, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    headers = await auth_headers("worker1")
    a = await upload(client, headers, case["id"], camera_jpeg(None, size=(400, 300)))
    stored = Path(app_settings.media_dir) / (await state(pg, a["id"]))["storage_key"]
    if damage == "deleted":
        stored.unlink()
    else:
        stored.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    with caplog.at_level("WARNING", logger="grid_mgmt.media.service"):
        assert await drain() >= 1  # the job completes: no exception, no retry loop
    row = await state(pg, a["id"])
    assert row["processed_at"] is not None and row["thumb_key"] is None
    error = json.loads(row["exif"])["error"]
    assert ("missing" if damage == "deleted" else "cannot be decoded") in error
    assert any(f"attachment {a['id']}" in m for m in caplog.messages)
    r = await client.get(f"{ATTACHMENTS}/{a['id']}/thumbnail", headers=headers)
    assert r.status_code == 404 and "has no thumbnail" in r.json()["detail"], r.text


async def test_another_workers_principal_cannot_fetch_the_thumbnail(
    client: Client, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection, drain: Any
) -> None:
    a = await upload(client, await auth_headers("worker1"), case["id"], camera_jpeg(None))
    await drain()
    stranger = await pg.fetchval(
        "SELECT u.username FROM app_user u JOIN duty_grid_worker w ON w.user_id = u.id"
        " JOIN duty_grid_grid g USING (duty_grid_code) WHERE left(g.grid_code, 9) <> $1"
        " ORDER BY u.username LIMIT 1",
        case["grid_code"][:9],
    )
    r = await client.get(f"{ATTACHMENTS}/{a['id']}/thumbnail", headers=await auth_headers(stranger))
    assert r.status_code == 404, r.text
    assert "outside your scope" in r.json()["detail"] and "thumbnail" not in r.json()["detail"]
    r = await client.get(f"{ATTACHMENTS}/{a['id']}/thumbnail", headers=await auth_headers("dispatcher1"))
    assert r.status_code == 200, r.text
    assert (await client.get(f"{ATTACHMENTS}/{a['id']}/thumbnail")).status_code == 401


async def test_sweep_reenqueues_what_lost_its_job(
    client: Client, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection, arq_pool: ArqRedis,
    drain: Any, engine: AsyncEngine, app_settings: Settings,
) -> None:  # fmt: skip
    a = await upload(client, await auth_headers("worker1"), case["id"], camera_jpeg(None))
    await arq_pool.delete("arq:queue", f"arq:job:media:{a['id']}")  # Redis lost the job
    ctx = {"engine": engine, "settings": app_settings, "redis": arq_pool}
    assert a["id"] not in await service.unprocessed(engine, older_than=media_jobs.SWEEP_AFTER)  # too fresh
    await pg.execute("UPDATE attachment SET created_at = now() - interval '2 minutes' WHERE id = $1", a["id"])
    assert await media_jobs.sweep(ctx) >= 1
    assert await arq_pool.exists(f"arq:job:media:{a['id']}")
    await drain()
    assert (await state(pg, a["id"]))["thumb_key"] is not None
    assert a["id"] not in await service.unprocessed(engine, older_than=media_jobs.SWEEP_AFTER)


def test_cron_schedule() -> None:
    by_name = {c.name: c for c in media_jobs.CRON}
    sweep, purge = by_name["media.sweep"], by_name["intake.purge"]
    assert sweep.minute == set(range(0, 60, 5))
    assert (purge.hour, purge.minute) == (19, 30)  # 03:30 in Asia/Shanghai, on a worker running in UTC
    assert [f.name for f in media_jobs.FUNCTIONS] == ["media.process"]


def test_images_flatten_transparency_and_never_upscale() -> None:
    img = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    out = io.BytesIO()
    img.save(out, format="PNG")
    derived = images.make(out.getvalue(), thumb_px=320, max_pixels=10_000)
    thumb = Image.open(io.BytesIO(derived.thumbnail))
    assert thumb.size == (100, 50) and close_to(thumb.convert("RGB").getpixel((10, 10)), (255, 255, 255))  # type: ignore[arg-type]
    assert derived.exif == {}
    with pytest.raises(images.Unreadable, match="over the limit"):
        images.make(out.getvalue(), thumb_px=320, max_pixels=4_999)
    with pytest.raises(images.Unreadable):
        images.make(b"GIF89a" + b"\x00" * 100, thumb_px=320, max_pixels=10_000)


def test_json_safe() -> None:
    assert images.json_safe(b"\x00\x01") is None
    assert images.json_safe("ab\x00 ") == "ab" and images.json_safe("x" * 500) == "x" * 200
    assert images.json_safe(float("nan")) is None and images.json_safe(3) == 3
    assert images.json_safe((1, b"x", "y")) == [1, "y"]
