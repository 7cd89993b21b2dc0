"""Photo checks and content-addressed storage. Synchronous and CPU-bound: callers run them in a thread.

Order matters: the type comes from the magic bytes (never the file name or the client's Content-Type), the pixel
size from the header alone (a decompression bomb is refused before anything is decoded), then Pillow verifies and
decodes the whole image (a truncated file fails), and only then are EXIF time and GPS position read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import math
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import ExifTags, Image

from grid_mgmt.lib.errors import DomainError, InvalidInput

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

#: accepted formats: Pillow format → (content type, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}

_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4


class UnsupportedPhoto(DomainError):
    """Not a JPEG, PNG or WebP by its content (HTTP 415)."""

    status_code = 415


class PhotoTooLarge(DomainError):
    """Over the byte limit (HTTP 413)."""

    status_code = 413


@dataclass(slots=True)
class PhotoFacts:
    """What the checks found out about a photo."""

    sha256: str
    format: str
    content_type: str
    ext: str
    size_bytes: int
    width: int
    height: int
    taken_at: dt.datetime | None = None
    lon: float | None = None
    lat: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def storage_key(self) -> str:
        return f"{self.sha256[:2]}/{self.sha256[2:4]}/{self.sha256}.{self.ext}"


def sniff(data: bytes) -> str:
    """The Pillow format name from the magic bytes; 415 naming what the content really is otherwise."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise UnsupportedPhoto(
        f"only JPEG, PNG and WebP photos are accepted; by its content this file is {_what(data)}",
        extra={"field": "file"},
    )


def _what(data: bytes) -> str:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "a GIF image"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypheif", b"ftyphevc"):
        return "a HEIC/HEIF image (set the camera to save JPEG)"
    if data[4:8] == b"ftyp":
        return "an ISO media file (video or HEIF)"
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data.startswith(b"BM"):
        return "a BMP image"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image"
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<")):
        return "an HTML/XML document"
    if data.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    return "not an image we recognise"


def header_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the file header without decoding; None when the header is unreadable."""
    try:
        if fmt == "PNG":
            if data[12:16] != b"IHDR":
                return None
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if fmt == "WEBP":
            return _webp_size(data)
        if fmt == "JPEG":
            return _jpeg_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def inspect(data: bytes, *, max_bytes: int, max_pixels: int) -> PhotoFacts:
    """Check a photo completely and read its facts; raises 413, 415 or 422 with a message that says why."""
    size = len(data)
    if size == 0:
        raise InvalidInput("the file is empty", extra={"field": "file"})
    if size > max_bytes:
        raise PhotoTooLarge(
            f"the photo has {size:,} bytes; at most {max_bytes:,} are accepted", extra={"field": "file"}
        )
    fmt = sniff(data)
    dims = header_size(fmt, data)
    if dims is None:
        raise InvalidInput(
            f"the file starts like a {fmt} image but its header is damaged or missing", extra={"field": "file"}
        )
    width, height = dims
    if width <= 0 or height <= 0:
        raise InvalidInput(f"the {fmt} header says {width} × {height} pixels", extra={"field": "file"})
    if width * height > max_pixels:
        raise InvalidInput(
            f"the photo claims {width:,} × {height:,} pixels ({width * height / 1e6:,.0f} megapixels); at most "
            f"{max_pixels / 1e6:g} megapixels are accepted",
            extra={"field": "file"},
        )
    facts = PhotoFacts(
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        content_type=FORMATS[fmt][0],
        ext=FORMATS[fmt][1],
        size_bytes=size,
        width=width,
        height=height,
    )
    exif = _decode(data, fmt, facts)
    _read_exif(exif, facts)
    return facts


def _decode(data: bytes, fmt: str, facts: PhotoFacts) -> Image.Exif | None:
    """verify() then a full load(): damaged and truncated files fail here. Returns the EXIF block."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            if im.size != (facts.width, facts.height):
                raise InvalidInput(f"the {fmt} header and the image disagree about its size", extra={"field": "file"})
            im.verify()
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            if fmt == "JPEG":  # decode at 1/8 scale: every byte is still read, an eighth of the memory
                im.draft("RGB", (max(1, facts.width // 8), max(1, facts.height // 8)))
            im.load()
            try:
                return im.getexif()
            except Exception:  # a broken EXIF block is not a broken photo
                facts.notes.append("exif_unreadable")
                return None
    except InvalidInput:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError … for damaged data
        raise InvalidInput(
            f"the {fmt} photo is damaged or truncated and cannot be decoded ({exc})", extra={"field": "file"}
        ) from None


def _read_exif(exif: Image.Exif | None, facts: PhotoFacts) -> None:
    if not exif:
        return
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        raw = sub.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME)
        facts.taken_at = _exif_time(raw, sub.get(_TAG_OFFSET_TIME_ORIGINAL))
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if gps:
            lat = _dms(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), "S")
            lon = _dms(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), "W")
            known = lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180
            if known and not (lat == 0 and lon == 0):  # (0, 0) is what some phones write without a fix
                facts.lon, facts.lat = lon, lat
    except Exception:
        facts.notes.append("exif_unreadable")


def _exif_time(raw: Any, offset: Any) -> dt.datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        naive = dt.datetime.strptime(raw.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(offset, str):
        with contextlib.suppress(ValueError):
            tz = dt.datetime.strptime(offset.strip().rstrip("\x00"), "%z").tzinfo
            if tz is not None:
                return naive.replace(tzinfo=tz)
    return naive.replace(tzinfo=LOCAL_TZ)


def _dms(value: Any, ref: Any, negative: str) -> float | None:
    if value is None:
        return None
    try:
        parts = [float(v) for v in value] if isinstance(value, tuple | list) else [float(value)]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not parts or not all(math.isfinite(p) for p in parts):
        return None
    degrees = parts[0] + (parts[1] / 60 if len(parts) > 1 else 0) + (parts[2] / 3600 if len(parts) > 2 else 0)
    if isinstance(ref, bytes):
        ref = ref.decode(errors="ignore")
    if isinstance(ref, str) and ref.strip().upper().startswith(negative):
        degrees = -degrees
    return degrees


def store(media_dir: str | os.PathLike[str], key: str, data: bytes) -> bool:
    """Write the content under its key (temp file + rename: readers never see half a file).

    Returns False when the same content was already stored (content-addressed: stored once).
    """
    path = Path(media_dir) / key
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def path_of(media_dir: str | os.PathLike[str], key: str) -> Path:
    """The file of a storage key (keys are ours: ab/cd/<sha256>.<ext>, never client input)."""
    return Path(media_dir) / key
