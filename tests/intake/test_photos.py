"""Photos: real JPEG/PNG/WebP with EXIF, refused fakes, limits, content-addressed storage, scope by id."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.intake.conftest import (
    CASES,
    exif_bytes,
    files_named,
    gif_bytes,
    photo,
    place_of,
    png_bomb,
    report,
)

ATTACHMENTS = "/api/v1/attachments"


@pytest.fixture
async def case(client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection, media_dir: Path) -> dict[str, Any]:
    """A fresh case reported by worker1 inside their duty grid (photos go to the test's media directory)."""
    _, lon, lat = await place_of(pg, "worker1")
    r = await client.post(CASES, json=report(lon, lat), headers=await auth_headers("worker1"))
    assert r.status_code == 201, r.text
    return dict(r.json())


def upload(data: bytes, name: str = "photo.jpg", kind: str = "report", content_type: str = "image/jpeg") -> Any:
    return {"files": {"file": (name, data, content_type)}, "data": {"kind": kind}}


async def other_worker(pg: asyncpg.Connection, grid_code: str) -> str:
    """A worker of another street: the case is neither theirs nor in their duty grids."""
    return str(
        await pg.fetchval(
            "SELECT u.username FROM app_user u JOIN duty_grid_worker w ON w.user_id = u.id"
            " JOIN duty_grid_grid g USING (duty_grid_code) WHERE left(g.grid_code, 9) <> $1"
            " ORDER BY u.username LIMIT 1",
            grid_code[:9],
        )
    )


async def test_jpeg_with_exif_time_and_position(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], media_dir: Path, pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    exif = exif_bytes("2026:11:20 09:30:15", case["lon"] + 0.0002, case["lat"])  # ~19 m east
    data = photo("JPEG", exif=exif)
    r = await client.post(f"{CASES}/{case['id']}/attachments", headers=headers, **upload(data))
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["content_type"] == "image/jpeg" and a["size_bytes"] == len(data)
    assert (a["width"], a["height"]) == (64, 48)
    taken = dt.datetime(2026, 11, 20, 9, 30, 15, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert dt.datetime.fromisoformat(a["taken_at"]) == taken
    assert abs(a["lon"] - (case["lon"] + 0.0002)) < 1e-6 and abs(a["lat"] - case["lat"]) < 1e-6
    assert 15 < a["distance_m"] < 25 and a["flags"] == []
    assert a["kind"] == "report" and a["case_id"] == case["id"]
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    assert a["sha256"] == sha
    stored = media_dir / sha[:2] / sha[2:4] / f"{sha}.jpg"
    assert stored.read_bytes() == data
    row = await pg.fetchrow("SELECT storage_key, ST_X(exif_geom) AS lon FROM attachment WHERE id = $1", a["id"])
    assert row["storage_key"] == f"{sha[:2]}/{sha[2:4]}/{sha}.jpg" and row["lon"] == a["lon"]

    meta = await client.get(f"{ATTACHMENTS}/{a['id']}", headers=headers)
    assert meta.status_code == 200 and meta.json() == a
    content = await client.get(f"{ATTACHMENTS}/{a['id']}/content", headers=headers)
    assert content.status_code == 200 and content.content == data
    assert content.headers["content-type"].startswith("image/jpeg")
    assert content.headers["etag"] == f'"{sha}"'
    assert content.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("fmt", "content_type", "ext"), [("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp")])
async def test_png_and_webp(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], media_dir: Path, fmt: str, content_type: str,
    ext: str,
) -> None:  # fmt: skip
    data = photo(fmt, size=(40, 30), color=(10, 120, 200))
    # the name and the client's type do not matter: the content decides
    r = await client.post(f"{CASES}/{case['id']}/attachments", headers=await auth_headers("worker1"),
                          **upload(data, name="x.bin", content_type="application/octet-stream"))  # fmt: skip
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["content_type"] == content_type and (a["width"], a["height"]) == (40, 30)
    assert a["taken_at"] is None and a["lon"] is None and a["distance_m"] is None
    assert (media_dir / a["sha256"][:2] / a["sha256"][2:4] / f"{a['sha256']}.{ext}").is_file()


async def test_fakes_are_refused_by_content(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    url = f"{CASES}/{case['id']}/attachments"
    before = await pg.fetchval("SELECT count(*) FROM attachment")
    r = await client.post(url, headers=headers, **upload(gif_bytes(), name="photo.jpg"))
    assert r.status_code == 415, r.text
    assert "GIF" in r.json()["detail"] and "JPEG, PNG and WebP" in r.json()["detail"]
    html = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    r = await client.post(url, headers=headers, **upload(html, name="photo.jpg"))
    assert r.status_code == 415 and "HTML" in r.json()["detail"], r.text
    jpeg = photo("JPEG", size=(320, 240))
    r = await client.post(url, headers=headers, **upload(jpeg[: len(jpeg) * 2 // 3]))
    assert r.status_code == 422 and "truncated" in r.json()["detail"], r.text
    r = await client.post(url, headers=headers, **upload(b"\xff\xd8\xff\xe0" + b"\x00" * 40))
    assert r.status_code == 422, r.text
    r = await client.post(url, headers=headers, **upload(b""))
    assert r.status_code in (400, 422), r.text
    assert await pg.fetchval("SELECT count(*) FROM attachment") == before


async def test_decompression_bomb_is_refused_before_decoding(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any]
) -> None:
    bomb = png_bomb(50_000, 50_000)
    assert len(bomb) < 100_000
    r = await client.post(f"{CASES}/{case['id']}/attachments", headers=await auth_headers("worker1"),
                          **upload(bomb, name="x.png"))  # fmt: skip
    assert r.status_code == 422, r.text
    assert "50,000 × 50,000" in r.json()["detail"] and "megapixels" in r.json()["detail"]


async def test_too_large(client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], settings: Any) -> None:
    headers = await auth_headers("worker1")
    url = f"{CASES}/{case['id']}/attachments"
    limit = settings.max_photo_bytes
    assert limit == 10 * 1024 * 1024
    just_over = photo("JPEG") + b"\x00" * (limit + 1)  # under the body limit, over the photo limit
    r = await client.post(url, headers=headers, **upload(just_over[: limit + 1]))
    assert r.status_code == 413, r.text
    assert "at most 10,485,760" in r.json()["detail"]
    way_over = b"\xff\xd8\xff" + b"\x00" * (limit + 200_000)  # the body limit stops it while streaming
    r = await client.post(url, headers=headers, **upload(way_over))
    assert r.status_code == 413, r.text


async def test_photo_far_from_the_case_is_flagged(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any]
) -> None:
    exif = exif_bytes("2026:11:20 10:00:00", case["lon"], case["lat"] + 0.01)  # ~1.1 km north
    r = await client.post(f"{CASES}/{case['id']}/attachments", headers=await auth_headers("worker1"),
                          **upload(photo("JPEG", color=(1, 2, 3), exif=exif)))  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["flags"] == ["photo_far"] and r.json()["distance_m"] > 1000


async def test_same_content_is_stored_once(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], media_dir: Path, pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    url = f"{CASES}/{case['id']}/attachments"
    data = photo("PNG", size=(33, 33), color=(9, 9, 9))
    first = await client.post(url, headers=headers, **upload(data, name="a.png"))
    again = await client.post(url, headers=headers, **upload(data, name="b.png"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    as_check = await client.post(url, headers=headers, **upload(data, name="c.png", kind="check"))
    assert as_check.status_code == 201 and as_check.json()["id"] != first.json()["id"]
    assert as_check.json()["sha256"] == first.json()["sha256"]
    sha = first.json()["sha256"]
    assert files_named(media_dir, f"{sha}*") == [f"{sha}.png"]
    assert files_named(media_dir, "*.part") == []
    keys = await pg.fetch("SELECT DISTINCT storage_key FROM attachment WHERE sha256 = $1", sha)
    assert len(keys) == 1


async def test_who_may_upload_and_read(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection
) -> None:
    url = f"{CASES}/{case['id']}/attachments"
    data = photo("JPEG", color=(50, 60, 70))
    r = await client.post(url, headers=await auth_headers("worker1"), **upload(data))
    assert r.status_code == 201
    attachment = r.json()["id"]
    stranger = await other_worker(pg, case["grid_code"])
    # a worker elsewhere can neither upload to the case nor read its photos by id
    r = await client.post(url, headers=await auth_headers(stranger), **upload(data))
    assert r.status_code == 404, r.text
    for path in (f"{ATTACHMENTS}/{attachment}", f"{ATTACHMENTS}/{attachment}/content"):
        r = await client.get(path, headers=await auth_headers(stranger))
        assert r.status_code == 404, r.text
        r = await client.get(path, headers=await auth_headers("unit-U0201"))
        assert r.status_code == 404, r.text
        r = await client.get(path, headers=await auth_headers("supervisor1"))
        assert r.status_code == 200, r.text
        r = await client.get(path)
        assert r.status_code == 401
    r = await client.get(f"{ATTACHMENTS}/999999999", headers=await auth_headers("supervisor1"))
    assert r.status_code == 404
    # the reporter may not post a handling photo; the centre may; an unknown kind is malformed
    r = await client.post(url, headers=await auth_headers("worker1"), **upload(data, kind="handling"))
    assert r.status_code == 403, r.text
    r = await client.post(url, headers=await auth_headers("dispatcher1"), **upload(data, kind="handling"))
    assert r.status_code == 201, r.text
    r = await client.post(url, headers=await auth_headers("worker1"), **upload(data, kind="selfie"))
    assert r.status_code == 400, r.text
    r = await client.post(f"{CASES}/999999999/attachments", headers=await auth_headers("worker1"), **upload(data))
    assert r.status_code == 404


async def test_assigned_unit_may_upload_handling_photos(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection
) -> None:
    await pg.execute("UPDATE cases SET unit_code = 'U0103', status = 'handling' WHERE id = $1", case["id"])
    url = f"{CASES}/{case['id']}/attachments"
    data = photo("JPEG", color=(70, 80, 90))
    r = await client.post(url, headers=await auth_headers("unit-U0103"), **upload(data, kind="handling"))
    assert r.status_code == 201, r.text
    r = await client.post(url, headers=await auth_headers("unit-U0103"), **upload(data, kind="check"))
    assert r.status_code == 403, r.text
    await pg.execute("UPDATE cases SET status = 'closed' WHERE id = $1", case["id"])
    r = await client.post(url, headers=await auth_headers("unit-U0103"), **upload(data, kind="handling"))
    assert r.status_code == 409, r.text


async def test_the_same_photo_uploaded_twice_at_once_is_one_record(
    client: AsyncTestClient, auth_headers: Any, case: dict[str, Any], pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    data = photo("JPEG", size=(50, 40), color=(1, 2, 3))
    url = f"{CASES}/{case['id']}/attachments"
    first, second = await asyncio.gather(*(client.post(url, headers=headers, **upload(data)) for _ in range(2)))
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    assert await pg.fetchval("SELECT count(*) FROM attachment WHERE case_id = $1", case["id"]) == 1
