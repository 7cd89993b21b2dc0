"""Request and response structs of intake: a report, a batch of queued reports, a photo."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from litestar.datastructures import UploadFile

from grid_mgmt.lib.schemas import ErrorRead, Schema

Urgency = Literal["urgent", "fairly_urgent", "normal"]
AttachmentKind = Literal["report", "handling", "check", "verify"]

MAX_BATCH = 100
"""Queued reports one batch may carry."""


class CaseIn(Schema, kw_only=True):
    """A report (上报). Give a location (`lon`/`lat` in `crs`), a component code, or both.

    The server derives the unit grid, community, street and district; without a component, a report of a
    component class is linked to the nearest component of that class within GRID_SNAP_RADIUS_M (flag `snapped`).
    """

    category_code: str | None = None
    """Class code (C0101, E0102 …); may be left out when `component_code` is given (the component's class)."""
    urgency: Urgency = "normal"
    description: str = ""
    """What is wrong, 1 – 4,000 characters (leading and trailing blanks are dropped)."""
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    """Coordinate system of lon/lat: wgs84 (GPS), gcj02 (AMap/Tencent) or bd09 (Baidu)."""
    accuracy_m: float | None = None
    """The device's horizontal accuracy in metres (at most GRID_MAX_ACCURACY_M)."""
    component_code: str | None = None
    """The 16/17-digit code of the component concerned (without a location: its position is used)."""
    captured_at: dt.datetime | None = None
    """Device time of the observation (ISO 8601; without an offset it is read as Asia/Shanghai)."""
    address: str | None = None
    client_id: str | None = None
    """The phone's id of this report (≤ 100 characters): the idempotency key when no Idempotency-Key header."""
    source: Literal["worker", "hotline", "video", "inspection", "leader"] | None = None
    """How the report came in; by default `worker` for grid workers, `leader` for shift leaders, else `hotline`."""


class BatchIn(Schema, kw_only=True):
    """Up to 100 reports queued offline, each with its own `client_id` (a `CaseIn` each)."""

    items: list[Any]


class BatchItemRead(Schema, kw_only=True):
    """The result of one queued report: `case` (a CaseRead) when it was filed or replayed, `error` otherwise."""

    index: int
    status_code: int
    case: msgspec.Raw | None = None
    error: ErrorRead | None = None
    replayed: bool = False
    """True when the item's client_id had been filed before: `case` is the response of that time."""


class BatchRead(Schema, kw_only=True):
    """One result per item, in the order sent; failed items do not stop the others."""

    items: list[BatchItemRead]
    created: int
    replayed: int
    failed: int


class AttachmentRead(Schema, kw_only=True):
    """A stored photo: content facts, EXIF time and position, the distance to the case, flags (`photo_far`)."""

    id: int
    case_id: int
    kind: str
    sha256: str
    content_type: str
    size_bytes: int
    width: int | None
    height: int | None
    taken_at: dt.datetime | None
    lon: float | None
    lat: float | None
    distance_m: float | None
    flags: list[str]
    uploader_id: int | None
    created_at: dt.datetime


@dataclass
class PhotoUpload:
    """multipart/form-data: the photo in `file`, what it shows in `kind`."""

    file: UploadFile
    kind: AttachmentKind = "report"
