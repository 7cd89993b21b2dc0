"""Citizens' reports: filing them (web and Open311 alike), what can be reported, open reports nearby, contacts.

Filing is a hot path. Per report: the checks that need nothing, one Redis round trip for every rate limit, the class
from the process's class dictionary (`cases.repository.class_facts`), the grid from the process's index, then one
case planned in the process and written with the concurrent reports of the process (`cases.filing.filer`: one
transaction for the batch's cases, public reports and contacts, one Redis call for their jobs).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from geo.crs import normalize_crs, to_wgs84
from geo.validate import check_lonlat
from grid_mgmt.cases import lifecycle as lc
from grid_mgmt.cases.filing import Filing, NewCase, filer, plan_case
from grid_mgmt.cases.repository import ClassFacts, class_facts
from grid_mgmt.cases.service import CaseService
from grid_mgmt.intake import photos as photo_checks
from grid_mgmt.intake.service import checked_photo, record_photo
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.errors import InvalidInput, NotFound
from grid_mgmt.lib.ratelimit import Limit, RateLimiter
from grid_mgmt.public import repository as repo
from grid_mgmt.public import rules
from grid_mgmt.public.schemas import (
    ContactRead,
    NearbyPage,
    NearbyRead,
    PublicClassRead,
    PublicReportIn,
    ReceiptRead,
)
from grid_mgmt.regions import service as regions
from grid_mgmt.regions.schemas import Place
from grid_mgmt.settings import Settings

NEARBY_LIMIT = 20
MAX_NEARBY_RADIUS_M = 500.0
NOT_OPEN = sorted(str(s) for s in {*lc.TERMINAL, lc.Status.MERGED})
"""Statuses a report nearby is no longer open in."""
CODE_ATTEMPTS = 5


class PublicService:
    """Everything a citizen (or an Open311 client on a citizen's behalf) does; no account involved."""

    def __init__(self, engine: AsyncEngine, settings: Settings, redis: Any, arq: Any, locator: Any = None):
        self.engine = engine
        self.settings = settings
        self.arq = arq
        self.locator = locator
        self.limiter = RateLimiter(redis)
        s = settings
        self.per_address = Limit("public.address", s.public_reports_per_address, s.public_address_window_s,
                                 "reports from this address")  # fmt: skip
        self.per_contact = Limit("public.contact", s.public_reports_per_contact, s.public_contact_window_s,
                                 "reports with this phone number or e-mail address")  # fmt: skip
        self.followups = Limit("public.followup", s.public_followups_per_address, s.public_address_window_s,
                               "comments, photos, ratings and reopen requests from this address")  # fmt: skip

    # --- filing ---------------------------------------------------------------------------------------------------

    async def submit(
        self,
        data: PublicReportIn,
        *,
        client: str,
        channel: str = "web",
        api_key_id: int | None = None,
        attributes: dict[str, str] | None = None,
        photos: Sequence[bytes] = (),
    ) -> ReceiptRead:
        """File a citizen's report as a case waiting for on-site verification (status `verifying`, source
        `citizen`), with its public report (tracking code, token hash), contact and photos, in one transaction.

        Refused without writing anything: 422 for bad input (field named), 413/415/422 for a photo, 429 over a rate
        limit (per `client` address — not for an Open311 client, limited per key — and per contact phone/e-mail).
        Callers check their own extras (Open311 attributes, API keys and their limits) before; `client` is the
        resolved client address.
        """
        s = self.settings
        description = rules.description(data.description)
        address = rules.address(data.address)
        crs = normalize_crs(data.crs)
        contact = rules.contact(data.contact_phone, data.contact_email, data.contact_name, data.consent)
        self.check_photo_count(len(photos))
        subjects = contact.subjects() if contact is not None else []
        # an Open311 client is one server speaking for many citizens: its key has its own limit, not its address's
        per_address = [(self.per_address, client)] if api_key_id is None else []
        await self.limiter.hit(*per_address, *((self.per_contact, subject) for subject in subjects))
        category = await self.public_class(data.category_code)
        where = await self.locate(data.lon, data.lat, crs)
        checked = await self.store_photos(photos)
        new = NewCase(
            source="citizen", category_code=category.code, urgency="normal", description=description,
            lon=where.lon, lat=where.lat, input_crs=crs, address=address, grid_code=where.grid_code,
            community_code=where.community_code, street_code=where.street_code, district_code=where.district_code,
            status=lc.Status.VERIFYING,
        )  # fmt: skip
        filing = await plan_case(self.engine, new, None)
        token, token_sha256 = rules.new_token()
        report = _Report(
            code=rules.new_tracking_code(), token_sha256=token_sha256, channel=channel, api_key_id=api_key_id,
            client=client, attributes=attributes, contact=contact, photos=checked, settings=s,
        )  # fmt: skip
        filing.attached = report
        await filer(self.engine, "public", _write_reports).submit((filing, self.arq))
        case = filing.case
        return ReceiptRead(
            tracking_code=report.code, token=token, status=case.status, case_id=case.id, case_no=case.case_no,
            created_at=case.received_at,
        )  # fmt: skip

    async def public_class(self, code: str, field: str = "category_code") -> ClassFacts:
        """A class citizens may report (public and active; from the process's class dictionary); 422 naming
        `field`."""
        found = await class_facts(self.engine, code)
        if found is None or not found.citizens_may_report:
            raise InvalidInput(
                f"{field} {code!r} is not a class citizens can report: GET /api/v1/public/classes lists them",
                extra={"field": field},
            )
        return found

    async def locate(self, lon: float, lat: float, crs: str) -> Place:
        """Grid, community, street and district of a point (422 for bad or swapped coordinates, or outside)."""
        return await regions.place_reported(self.engine, self.locator, lon, lat, crs)

    # --- photos ---------------------------------------------------------------------------------------------------

    def check_photo_count(self, count: int) -> None:
        limit = self.settings.public_max_photos
        if count > limit:
            raise InvalidInput(f"{count} photos sent; at most {limit} at a time", extra={"field": "photos"})

    async def store_photos(self, photos: Sequence[bytes]) -> list[photo_checks.PhotoFacts]:
        """Check every photo (413, 415, 422 as intake does) before storing any; the files are content-addressed."""
        s = self.settings
        checked = [await checked_photo(s, data) for data in photos]
        for facts, data in zip(checked, photos, strict=True):
            await asyncio.to_thread(photo_checks.store, s.media_dir, facts.storage_key, data)
        return checked

    # --- reading --------------------------------------------------------------------------------------------------

    async def classes(self) -> list[PublicClassRead]:
        """The classes citizens may report, by code."""
        async with self.engine.connect() as conn:
            rows = await repo.public_classes(conn)
        return [
            PublicClassRead(code=r.code, name=r.name, name_en=r.name_en, kind=r.kind, major=r.major,
                            major_name=r.major_name, duplicate_radius_m=int(r.duplicate_radius_m))
            for r in rows
        ]  # fmt: skip

    async def nearby(self, lon: float, lat: float, crs: str, category_code: str, radius_m: float | None) -> NearbyPage:
        """Open reports of the class within `radius_m` (default: the class's duplicate radius; ≤ 500 m)."""
        check_lonlat(lon, lat)
        wlon, wlat = to_wgs84(lon, lat, normalize_crs(crs))
        category = await self.public_class(category_code, field="class")
        radius = float(category.duplicate_radius_m) if radius_m is None else radius_m
        if not math.isfinite(radius) or radius <= 0 or radius > MAX_NEARBY_RADIUS_M:
            raise InvalidInput(
                f"radius must be more than 0 and at most {MAX_NEARBY_RADIUS_M:g} m, got {radius_m}",
                extra={"field": "radius"},
            )
        async with self.engine.connect() as conn:
            rows = await repo.nearby(conn, category=category.code, lon=wlon, lat=wlat, radius_m=radius,
                                     closed=NOT_OPEN, limit=NEARBY_LIMIT)  # fmt: skip
        items = [
            NearbyRead(tracking_code=r.tracking_code, case_no=r.case_no, status=r.status,
                       category_code=r.category_code, category_name=r.category_name, lon=r.lon, lat=r.lat,
                       distance_m=round(float(r.distance_m), 1), received_at=r.received_at)
            for r in rows
        ]  # fmt: skip
        return NearbyPage(radius_m=radius, items=items)

    async def contact(self, principal: Principal, case_id: int) -> ContactRead:
        """The contact of a citizen's case, for centre roles within their scope (404 outside it or without one)."""
        await CaseService(self.engine).get(principal, case_id)
        async with self.engine.connect() as conn:
            row = await repo.contact(conn, case_id)
        if row is None:
            raise NotFound(
                f"case {case_id} has no contact details (none were given, or they were deleted after "
                f"{self.settings.contact_retention_days} days)"
            )
        return ContactRead(phone=row.phone, email=row.email, name=row.name, consent_at=row.consent_at,
                           purge_after=row.purge_after)  # fmt: skip


@dataclass(slots=True)
class _Report:
    """What a citizen's report writes beside its case (`Filing.attached`)."""

    code: str
    token_sha256: str
    channel: str
    api_key_id: int | None
    client: str
    attributes: dict[str, str] | None
    contact: rules.Contact | None
    photos: list[photo_checks.PhotoFacts]
    settings: Settings


async def _write_reports(conn: AsyncConnection, filings: list[Filing]) -> None:
    """The public reports, contacts and photos of a batch of citizens' cases (in the cases' transaction); a
    tracking code found taken is drawn again."""
    pending = filings
    for _ in range(CODE_ATTEMPTS):
        rows = []
        for f in pending:
            r: _Report = f.attached
            c = r.contact
            rows.append({
                "case_id": f.case.id, "code": r.code, "token_sha256": r.token_sha256, "channel": r.channel,
                "api_key_id": r.api_key_id, "client": r.client, "attributes": r.attributes or None,
                "phone": c.phone if c else None, "email": c.email if c else None, "name": c.name if c else None,
                "created_at": f.case.received_at, "retention_days": r.settings.contact_retention_days,
            })  # fmt: skip
        written = await repo.file_reports(conn, rows)
        pending = [f for f in pending if f.case.id not in written]
        if not pending:
            break
        for f in pending:
            f.attached.code = rules.new_tracking_code()
    else:  # pragma: no cover - 32^10 codes
        raise RuntimeError("no free tracking code after several attempts")
    for f in filings:
        r = f.attached
        if r.photos:
            await insert_photos(conn, r.settings, f.case.id, f.case.lon, f.case.lat, r.photos)


async def insert_photos(
    conn: AsyncConnection, settings: Settings, case_id: int, lon: float, lat: float,
    photos: list[photo_checks.PhotoFacts],
) -> list[int]:  # fmt: skip
    """Attachment rows (kind report, no uploader: the citizen) and their media jobs; the ids, old or new."""
    rows = [
        await record_photo(conn, settings, case_id=case_id, case_lon=lon, case_lat=lat, kind="report", facts=f,
                           uploader_id=None)
        for f in photos
    ]  # fmt: skip
    return [int(row.id) for row in rows]
