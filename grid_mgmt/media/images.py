"""Pillow work of the media worker (synchronous, CPU-bound: callers run it in a thread): EXIF and thumbnails."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, ImageOps

from grid_mgmt.intake.photos import FORMATS
from grid_mgmt.settings import get_settings

# Uploads are refused above the pixel limit from their header before anything is decoded, and `make` checks it
# again; Pillow's own bomb guard is set to the same limit so that no other path can decode more than that.
Image.MAX_IMAGE_PIXELS = get_settings().max_photo_pixels

MAX_TEXT = 200
"""EXIF strings are cut to this many characters (a Software tag can hold anything a camera app writes)."""

QUALITY = 80
"""JPEG quality of thumbnails."""

_IFD0 = {
    0x010F: "Make",
    0x0110: "Model",
    0x0112: "Orientation",
    0x0131: "Software",
    0x0132: "DateTime",
    0x0100: "ImageWidth",
    0x0101: "ImageHeight",
}
_EXIF_IFD = {
    0x9003: "DateTimeOriginal",
    0x9011: "OffsetTimeOriginal",
    0xA002: "ImageWidth",  # PixelXDimension: the size the camera wrote when IFD0 has none
    0xA003: "ImageHeight",
}
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6


class Unreadable(Exception):
    """The stored file is not an image Pillow can decode (damaged, truncated, too large, another format)."""


@dataclass(slots=True)
class Derived:
    """What the worker makes of one photo: the thumbnail (JPEG bytes) and the EXIF summary."""

    thumbnail: bytes
    exif: dict[str, Any]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.thumbnail).hexdigest()

    @property
    def thumb_key(self) -> str:
        """Content-addressed like the originals, under `thumbs/`: derived files stay apart from the evidence."""
        sha = self.sha256
        return f"thumbs/{sha[:2]}/{sha[2:4]}/{sha}.jpg"


def make(data: bytes, *, thumb_px: int, max_pixels: int) -> Derived:
    """The EXIF summary and an upright thumbnail (longest side `thumb_px`, no metadata); `Unreadable` otherwise."""
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise Unreadable(f"{width} × {height} pixels is over the limit of {max_pixels:,}")
            exif = read_exif(im)
            if im.format == "JPEG":  # decode at the smallest scale that still covers the thumbnail
                im.draft("RGB", (thumb_px, thumb_px))
            try:
                upright = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block: the pixels are still good, only unrotated
                exif["orientation_unreadable"] = True
                upright = im.copy()
        flat = _flatten(upright)
        flat.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        flat.save(out, format="JPEG", quality=QUALITY, optimize=True)  # no exif/icc_profile given: none written
    except Unreadable:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError … for damaged data
        raise Unreadable(f"{type(exc).__name__}: {exc}"[:MAX_TEXT]) from None
    return Derived(thumbnail=out.getvalue(), exif=exif)


def _flatten(im: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts become white rather than black."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im if im.mode == "RGB" else im.convert("RGB")


def read_exif(im: Image.Image) -> dict[str, Any]:
    """A small JSON-safe summary of the EXIF block: known tags only, strings cut, bytes dropped."""
    out: dict[str, Any] = {}
    try:
        exif = im.getexif()
        if not exif:
            return out
        _pick(exif, _IFD0, out)
        _pick(exif.get_ifd(ExifTags.IFD.Exif), _EXIF_IFD, out)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if gps:
            lat = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), "S")
            lon = _degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), "W")
            if lat is not None and -90 <= lat <= 90:
                out["GPSLatitude"] = round(lat, 7)
            if lon is not None and -180 <= lon <= 180:
                out["GPSLongitude"] = round(lon, 7)
            alt = _number(gps.get(_GPS_ALT))
            if alt is not None:
                below = gps.get(_GPS_ALT_REF) in (1, b"\x01")
                out["GPSAltitude"] = round(-alt if below else alt, 2)
    except Exception:
        out["exif_unreadable"] = True
    return out


def _pick(ifd: Any, tags: dict[int, str], out: dict[str, Any]) -> None:
    for tag, name in tags.items():
        if name in out:
            continue
        value = json_safe(ifd.get(tag))
        if value is not None:
            out[name] = value


def json_safe(value: Any) -> Any:
    """A tag's value as JSON: str (cut), int, finite float, or a short list of those; None drops it."""
    if isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, str):
        text = value.replace("\x00", "").strip()
        return text[:MAX_TEXT] or None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, tuple | list):
        items = [v for v in (json_safe(v) for v in value[:16]) if v is not None]
        return items or None
    return _number(value)


def _number(value: Any) -> float | None:
    """Floats and EXIF rationals (IFDRational); a zero denominator or NaN is no number."""
    if value is None or isinstance(value, str | bytes):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _degrees(value: Any, ref: Any, negative: str) -> float | None:
    """Degrees, minutes, seconds (rationals) → signed decimal degrees."""
    if not isinstance(value, tuple | list) or not value:
        return None
    parts = [_number(v) for v in value[:3]]
    if any(p is None for p in parts):
        return None
    d, m, s = ([*parts, 0.0, 0.0])[:3]
    assert d is not None and m is not None and s is not None
    degrees = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode(errors="ignore")
    if isinstance(ref, str) and ref.strip().upper().startswith(negative):
        degrees = -degrees
    return degrees
