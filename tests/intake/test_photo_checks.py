"""grid_mgmt.intake.photos without HTTP: magic bytes, header sizes of every variant, EXIF, storage."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from PIL import Image

from grid_mgmt.intake import photos
from grid_mgmt.lib.errors import InvalidInput
from tests.intake.conftest import exif_bytes, gif_bytes, photo, png_bomb

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


@pytest.mark.parametrize(
    ("label", "data", "size"),
    [
        ("baseline jpeg", photo("JPEG", size=(123, 45)), (123, 45)),
        ("progressive jpeg", _save(Image.new("RGB", (77, 66), (5, 5, 5)), "JPEG", progressive=True), (77, 66)),
        ("grey png", _save(Image.new("L", (31, 17)), "PNG"), (31, 17)),
        ("lossy webp (VP8)", _save(Image.new("RGB", (50, 20), (9, 9, 9)), "WEBP", quality=80), (50, 20)),
        ("lossless webp (VP8L)", _save(Image.new("RGB", (51, 21), (9, 9, 9)), "WEBP", lossless=True), (51, 21)),
        ("webp with alpha (VP8X)", _save(Image.new("RGBA", (52, 22), (9, 9, 9, 100)), "WEBP"), (52, 22)),
    ],
)
def test_header_sizes_match_pillow(label: str, data: bytes, size: tuple[int, int]) -> None:
    fmt = photos.sniff(data)
    assert photos.header_size(fmt, data) == size, label
    facts = photos.inspect(data, **LIMITS)
    assert (facts.width, facts.height) == size


def test_exif_time_offset_and_southern_western_position() -> None:
    data = photo("JPEG", exif=exif_bytes("2026:01:02 03:04:05", -70.5, -33.25))
    facts = photos.inspect(data, **LIMITS)
    assert facts.taken_at == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert facts.lon == pytest.approx(-70.5, abs=1e-6) and facts.lat == pytest.approx(-33.25, abs=1e-6)


def test_exif_in_webp_and_png() -> None:
    for fmt in ("WEBP", "PNG"):
        data = photo(fmt, exif=exif_bytes("2026:03:04 05:06:07", 110.2, 32.2))
        facts = photos.inspect(data, **LIMITS)
        assert facts.lon == pytest.approx(110.2, abs=1e-6), fmt
        assert facts.taken_at is not None and facts.taken_at.hour == 5


def test_limits_and_refusals() -> None:
    with pytest.raises(photos.PhotoTooLarge):
        photos.inspect(photo("JPEG"), max_bytes=100, max_pixels=40_000_000)
    with pytest.raises(InvalidInput, match="megapixels"):
        photos.inspect(photo("PNG", size=(300, 300)), max_bytes=10**7, max_pixels=80_000)
    with pytest.raises(InvalidInput, match="megapixels"):
        photos.inspect(png_bomb(), **LIMITS)
    with pytest.raises(photos.UnsupportedPhoto, match="GIF"):
        photos.inspect(gif_bytes(), **LIMITS)
    with pytest.raises(photos.UnsupportedPhoto, match="HEIC"):
        photos.inspect(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100, **LIMITS)
    truncated_png = photo("PNG", size=(200, 200))
    with pytest.raises(InvalidInput, match="damaged or truncated"):
        photos.inspect(truncated_png[: len(truncated_png) // 2], **LIMITS)
    webp = photo("WEBP", size=(200, 200))
    with pytest.raises(InvalidInput):
        photos.inspect(webp[: len(webp) // 2], **LIMITS)


def test_store_is_content_addressed_and_atomic(tmp_path: Path) -> None:
    data = photo("PNG")
    facts = photos.inspect(data, **LIMITS)
    assert photos.store(tmp_path, facts.storage_key, data) is True
    assert photos.store(tmp_path, facts.storage_key, data) is False
    path = photos.path_of(tmp_path, facts.storage_key)
    assert path.read_bytes() == data
    assert path.relative_to(tmp_path).parts == (facts.sha256[:2], facts.sha256[2:4], f"{facts.sha256}.png")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]
