"""Request and response structs of the citizens' side: a report, its receipt, the public and the own view."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from grid_mgmt.lib.schemas import Schema

Text = Annotated[str, msgspec.Meta(max_length=4000)]


class PublicReportIn(Schema, kw_only=True, forbid_unknown_fields=True):
    """A citizen's report (no account). Contact details are optional and need `consent`.

    The class must be one citizens may report (`GET /api/v1/public/classes`); the point is checked like the phones'
    (inside the city, not swapped, finite). The report is verified on site by a grid worker before it is registered.
    """

    category_code: str
    """A public class code (E0102 …)."""
    lon: float
    lat: float
    crs: str = "wgs84"
    """Coordinate system of lon/lat: wgs84 (GPS), gcj02 (AMap/Tencent) or bd09 (Baidu)."""
    description: str = ""
    """What is wrong, 1 – 4,000 characters."""
    address: str | None = None
    """A description of the place (≤ 200 characters)."""
    contact_phone: str | None = None
    """A mobile (11 digits, 1…) or fixed-line number; only with `consent`. Never shown publicly."""
    contact_email: str | None = None
    """Only with `consent`. Never shown publicly."""
    contact_name: str | None = None
    """Only with `consent` (≤ 100 characters). Never shown publicly."""
    consent: bool = False
    """The citizen agrees that the centre keeps the contact for GRID_CONTACT_RETENTION_DAYS to ask back."""


class ReceiptRead(Schema, kw_only=True):
    """What filing a report gave: the public tracking code, the secret token (shown once), the case."""

    tracking_code: str
    token: str
    status: str
    case_id: int
    case_no: str
    created_at: dt.datetime


class PublicReceiptRead(Schema, kw_only=True):
    """The answer to a citizen's report: keep the token, it is shown only now (it proves the report is yours)."""

    tracking_code: str
    token: str
    status: str


class PublicClassRead(Schema, kw_only=True):
    """A class citizens may report."""

    code: str
    name: str
    name_en: str
    kind: str
    major: str
    """The major class (大类) code with its kind letter: E01, C01 …"""
    major_name: str
    duplicate_radius_m: int


class PlaceRead(Schema, kw_only=True):
    """Where the problem is (WGS84) and the areas around it."""

    lon: float
    lat: float
    address: str | None
    grid_code: str | None
    community: str | None
    street: str | None


class StepRead(Schema, kw_only=True):
    """One coarse step of a report's public timeline (who did it is never shown)."""

    step: str
    """received, verified, not_confirmed, registered, dispatched, in_progress, handled, checking, checked, rework,
    closed, reopened, rejected, shelved, resumed, merged, cancelled, comment, rated."""
    at: dt.datetime


class PhotoRead(Schema, kw_only=True):
    """A photo the citizen sent (fetch it with `GET …/photos/{id}` and the token)."""

    id: int
    content_type: str
    size_bytes: int
    created_at: dt.datetime


class CommentRead(Schema, kw_only=True):
    """What the citizen added after filing."""

    text: str
    at: dt.datetime


class ContactRead(Schema, kw_only=True):
    """A citizen's contact details (centre roles; the citizen's own view)."""

    phone: str | None
    email: str | None
    name: str | None
    consent_at: dt.datetime
    purge_after: dt.datetime
    """When the nightly purge deletes it."""


class OwnRead(Schema, kw_only=True):
    """What only the holder of the token sees."""

    description: str
    contact: ContactRead | None
    photos: list[PhotoRead]
    comments: list[CommentRead]


class PublicReportRead(Schema, kw_only=True):
    """A report as the public sees it; `own` only with the report's token."""

    tracking_code: str
    status: str
    """The case's status: verifying, reported, registered, dispatched, handling, handled, checking, checked, closed,
    shelved, rejected, declined, cancelled or merged."""
    category_code: str
    category_name: str
    place: PlaceRead
    received_at: dt.datetime
    closed_at: dt.datetime | None
    can_rate: bool
    can_reopen_until: dt.datetime | None
    """While the report is closed and not yet this old, the citizen may ask to reopen it."""
    rating: int | None
    timeline: list[StepRead]
    own: OwnRead | None = None


class NearbyRead(Schema, kw_only=True):
    """An open report near a point (public fields only), to follow instead of filing a duplicate."""

    tracking_code: str | None
    """The tracking code when it came from a citizen (follow it with GET /api/v1/public/reports/{code})."""
    case_no: str
    status: str
    category_code: str
    category_name: str
    lon: float
    lat: float
    distance_m: float
    received_at: dt.datetime


class NearbyPage(Schema, kw_only=True):
    """Open reports nearest first (at most 20) within `radius_m`."""

    radius_m: float
    items: list[NearbyRead]


class CommentIn(Schema, kw_only=True, forbid_unknown_fields=True):
    """Something to add to the report (1 – 2,000 characters)."""

    text: str


class RatingIn(Schema, kw_only=True, forbid_unknown_fields=True):
    """Satisfaction with the outcome, once, after closure: 1 (very dissatisfied) – 5 (very satisfied)."""

    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ReopenIn(Schema, kw_only=True, forbid_unknown_fields=True):
    """Why the problem is not fixed (1 – 2,000 characters)."""

    reason: str
