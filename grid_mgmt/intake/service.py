"""Turning a phone's (or the centre's) report into a filed case, idempotently; storing its photos.

The report path is the hot path. A report of an event class takes no connection of its own: the grid comes from the
process's index, the class from its dictionary cache, the id from a per-process block, and the case — planned in full
with its answer — goes to the process's group commit (`cases.filing.filer`), which writes the reports of concurrent
requests together: one statement for their cases, first timeline rows and idempotency records, one commit, one Redis
call for their jobs. A report naming a component, or of a component class (snapping), adds one read. A replayed key
costs the refused insert and a read. Checks that need no database run first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from geo.crs import normalize_crs
from geo.errors import GeoInputError
from geo.measure import distance_m
from grid_mgmt.cases import repository as cases_repo
from grid_mgmt.cases.filing import Filing, NewCase, filer, plan_case
from grid_mgmt.cases.lifecycle import TERMINAL
from grid_mgmt.cases.repository import ClassFacts
from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.cases.service import CaseService
from grid_mgmt.intake import photos, rules
from grid_mgmt.intake import repository as repo
from grid_mgmt.intake.schemas import MAX_BATCH, AttachmentRead, BatchItemRead, BatchRead, CaseIn
from grid_mgmt.lib.auth import ALL_SEEING, CENTRE_ROLES, Principal
from grid_mgmt.lib.errors import Conflict, DomainError, InvalidInput, NotFound
from grid_mgmt.lib.jobs import JobBuffer, enqueue
from grid_mgmt.lib.schemas import ErrorRead
from grid_mgmt.lib.sql import Source, connected
from grid_mgmt.regions import service as regions
from grid_mgmt.regions.schemas import Place
from grid_mgmt.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

ROUTE = "POST /api/v1/cases"
"""The operation an idempotency key of a report belongs to (single and batched reports share it)."""

#: who may attach which kind of photo (besides centre roles, supervisors and admins, who may attach any)
WORKER_KINDS = frozenset({"report", "verify", "check"})
UNIT_KINDS = frozenset({"handling"})


@dataclass(slots=True)
class Outcome:
    """The response to a report: status and the exact body bytes (stored for replays)."""

    status_code: int
    body: bytes
    replayed: bool = False


@dataclass(slots=True)
class _Ready:
    """A report after the checks that need no database: cleaned values and where it is."""

    data: CaseIn
    key: str | None
    source: str
    description: str
    address: str | None
    accuracy: float | None
    crs: str
    request_hash: str = ""
    where: Place | None = None


class IntakeService:
    """Reports (single and batched) and photos."""

    def __init__(self, engine: AsyncEngine, settings: Settings, locator: Any = None, arq: Any = None):
        self.engine = engine
        self.settings = settings
        self.locator = locator
        self.arq = arq

    # --- reports ------------------------------------------------------------------------------------------

    async def report(self, principal: Principal, data: CaseIn, header_key: str | None = None) -> Outcome:
        """File one report (201 with the case), or replay the stored response of its idempotency key."""
        key = rules.idempotency_key(header_key, data.client_id)
        ready = await self._prepare(principal, data, key)  # no connection is taken for a refused report
        planned = await self._plan(self.engine, principal, ready)
        return planned if isinstance(planned, Outcome) else await self._commit(principal, ready, planned)

    async def batch(self, principal: Principal, items: list[Any]) -> BatchRead:
        """File queued reports: each is checked and planned alone (one connection for the reads), then all are
        written together; one result per item."""
        if len(items) > MAX_BATCH:
            raise InvalidInput(
                f"a batch carries at most {MAX_BATCH} reports; this one has {len(items)}: send the rest in another",
                extra={"field": "items"},
            )
        if not items:
            raise InvalidInput("the batch has no items", extra={"field": "items"})
        async with self.engine.connect() as conn:
            planned = [await _item(index, self._plan_item(conn, principal, index, raw)) for index, raw in
                       enumerate(items)]  # fmt: skip
        results = await asyncio.gather(*(self._commit_item(principal, index, p) for index, p in enumerate(planned)))
        return BatchRead(
            items=results,
            created=sum(1 for r in results if r.case is not None and not r.replayed),
            replayed=sum(1 for r in results if r.replayed),
            failed=sum(1 for r in results if r.error is not None),
        )

    async def _plan_item(
        self, conn: AsyncConnection, principal: Principal, index: int, raw: Any
    ) -> tuple[_Ready, Filing | Outcome]:
        if not isinstance(raw, dict):
            raise InvalidInput(f"item {index} is not an object", extra={"field": "items"})
        data = msgspec.convert(raw, CaseIn, strict=False)
        if not data.client_id:
            raise InvalidInput(
                "a queued report needs its client_id (the phone's id of the report) so that a resend files it only "
                "once",
                extra={"field": "client_id"},
            )
        ready = await self._prepare(principal, data, rules.idempotency_key(None, data.client_id))
        return ready, await self._plan(conn, principal, ready)

    async def _commit_item(
        self, principal: Principal, index: int, planned: tuple[_Ready, Filing | Outcome] | BatchItemRead
    ) -> BatchItemRead:
        if isinstance(planned, BatchItemRead):  # refused when planned
            return planned
        ready, filing = planned

        async def commit() -> Outcome:
            return filing if isinstance(filing, Outcome) else await self._commit(principal, ready, filing)

        outcome = await _item(index, commit())
        if isinstance(outcome, BatchItemRead):
            return outcome
        return BatchItemRead(
            index=index, status_code=outcome.status_code, case=msgspec.Raw(outcome.body), replayed=outcome.replayed
        )

    async def _prepare(self, principal: Principal, data: CaseIn, key: str | None) -> _Ready:
        """Every check that needs no database, and the grid lookup (in-process while the index is fresh)."""
        s = self.settings
        ready = _Ready(
            data=data,
            key=key,
            source=rules.source(principal.roles, data.source),
            description=rules.description(data.description),
            address=rules.address(data.address),
            accuracy=rules.accuracy(data.accuracy_m, s.max_accuracy_m),
            crs=normalize_crs(data.crs),
        )
        has_point = rules.location_given(data)
        if not data.category_code and not data.component_code:
            raise InvalidInput(
                "category_code is missing: which class is the problem?", extra={"field": "category_code"}
            )
        ready.request_hash = rules.request_hash(ROUTE, data) if key else ""
        ready.where = await self._locate(data.lon, data.lat, ready.crs) if has_point else None
        return ready

    async def _plan(self, source: Source, principal: Principal, ready: _Ready) -> Filing | Outcome:
        """The case of a prepared report, planned in full with its answer (reads through `source` only what the
        caches do not hold); a refused report whose key was used before answers the stored response."""
        try:
            filing = await plan_case(source, await self._new_case(source, principal, ready), principal)
        except DomainError:
            replay = await _answered(source, principal, ready) if ready.key is not None else None
            if replay is None:  # a replay answers as the first time, even if the report would now be refused
                raise
            return replay
        if ready.key is not None:
            filing.values.update(key_user=principal.user_id, key=ready.key, request_hash=ready.request_hash,
                                 body=msgspec.json.encode(filing.case).decode())  # fmt: skip
        return filing

    async def _commit(self, principal: Principal, ready: _Ready, filing: Filing) -> Outcome:
        """Write a planned case with the concurrent reports of this process (one statement, one Redis call); a key
        used before answers the stored response."""
        body = filing.values["body"].encode() if ready.key is not None else msgspec.json.encode(filing.case)
        if not await filer(self.engine).submit((filing, self.arq)):  # the key was used before
            replay = await _answered(self.engine, principal, ready)
            if replay is None:  # the key's holder rolled back after we waited for it
                raise Conflict("a concurrent request with the same key failed; retry")
            return replay
        return Outcome(201, body)

    async def _new_case(self, source: Source, principal: Principal, ready: _Ready) -> NewCase:
        """The report checked against the dictionary and the register: class, component, snapping, flags."""
        s, data, where, crs = self.settings, ready.data, ready.where, ready.crs
        cls = await cases_repo.class_facts(source, data.category_code) if data.category_code else None
        if data.category_code and cls is None:
            raise InvalidInput(
                f"unknown class {data.category_code!r}: GET /api/v1/categories lists the classes",
                extra={"field": "category_code"},
            )
        f = None
        snap = cls is not None and cls.kind == "component" and where is not None and s.snap_radius_m > 0
        if data.component_code or snap:
            f = await repo.facts(
                source, category=data.category_code, component=data.component_code,
                lon=where.lon if where else None, lat=where.lat if where else None, snap_radius_m=s.snap_radius_m,
            )  # fmt: skip
            if data.component_code and f.comp_code is None:
                raise InvalidInput(
                    f"no component {data.component_code!r} in the register", extra={"field": "component_code"}
                )
            if cls is None and f.comp_category is not None:
                cls = await cases_repo.class_facts(source, f.comp_category)
        assert cls is not None  # a category or a component was required by _prepare
        _check_class(cls, f)
        captured = rules.captured_at(data.captured_at, dt.datetime.now(dt.UTC), s.report_max_age_days)
        component = data.component_code
        flags: list[str] = []
        if where is None:  # only a component: it is the location
            assert f is not None
            where = await self._locate(f.comp_lon, f.comp_lat, "wgs84", source)
            crs = "wgs84"
        elif component is None and f is not None and f.snap_code is not None:
            component = f.snap_code
            flags.append("snapped")
        if ready.source == "worker" and where.grid_code not in principal.duty_grid_codes:
            flags.append("outside_duty_grid")
        return NewCase(
            source=ready.source, category_code=cls.code, urgency=data.urgency, description=ready.description,
            lon=where.lon, lat=where.lat, input_crs=crs, accuracy_m=ready.accuracy, address=ready.address,
            grid_code=where.grid_code, community_code=where.community_code, street_code=where.street_code,
            district_code=where.district_code,
            component_code=component, captured_at=captured, flags=flags,
        )  # fmt: skip

    async def _locate(self, lon: float | None, lat: float | None, crs: str, source: Source | None = None) -> Place:
        """Grid, community, street and district of a point through the regions service (422 outside the city);
        a caller holding a connection passes it as `source`."""
        assert lon is not None and lat is not None
        return await regions.place_reported(source or self.engine, self.locator, lon, lat, crs)

    # --- photos -------------------------------------------------------------------------------------------

    async def attach(self, principal: Principal, case_id: int, kind: str, data: bytes) -> AttachmentRead:
        """Check and store a photo of a case; the same content as the same kind again returns the first record."""
        case = await CaseService(self.engine).get(principal, case_id)
        _may_attach(principal, case, kind)
        if case.status in TERMINAL:
            raise Conflict(f"case {case_id} is {case.status}: it takes no more photos", extra={"status": case.status})
        facts = await checked_photo(self.settings, data)
        await asyncio.to_thread(photos.store, self.settings.media_dir, facts.storage_key, data)
        with JobBuffer.collect() as jobs:
            async with self.engine.begin() as conn:
                row = await record_photo(
                    conn, self.settings, case_id=case_id, case_lon=case.lon, case_lat=case.lat, kind=kind,
                    facts=facts, uploader_id=principal.user_id,
                )  # fmt: skip
            await jobs.flush(self.arq)
        return _attachment(row)

    async def attachment(self, principal: Principal, attachment_id: int) -> AttachmentRead:
        return _attachment(await self._visible_attachment(principal, attachment_id))

    async def content(self, principal: Principal, attachment_id: int) -> tuple[str, str, str]:
        """(file path, content type, sha256) of a photo the principal may see."""
        row = await self._visible_attachment(principal, attachment_id)
        path = photos.path_of(self.settings.media_dir, row.storage_key)
        if not await asyncio.to_thread(path.is_file):
            log.error("attachment %d: file %s is missing", attachment_id, path)
            raise NotFound(f"the file of attachment {attachment_id} is missing from the media store")
        return str(path), str(row.content_type), str(row.sha256)

    async def _visible_attachment(self, principal: Principal, attachment_id: int) -> Any:
        async with self.engine.connect() as conn:
            row = await repo.get_attachment(conn, attachment_id)
        missing = NotFound(f"no attachment {attachment_id} (or it is outside your scope)")
        if row is None:
            raise missing
        try:
            await CaseService(self.engine).get(principal, int(row.case_id))
        except NotFound:
            raise missing from None
        return row


async def checked_photo(settings: Settings, data: bytes) -> photos.PhotoFacts:
    """A photo checked by its content (415 not an image, 413 too large, 422 damaged), off the event loop."""
    return await asyncio.to_thread(
        photos.inspect, data, max_bytes=settings.max_photo_bytes, max_pixels=settings.max_photo_pixels
    )


async def record_photo(
    conn: AsyncConnection, settings: Settings, *, case_id: int, case_lon: float, case_lat: float, kind: str,
    facts: photos.PhotoFacts, uploader_id: int | None,
) -> Any:  # fmt: skip
    """The attachment row of a stored photo (no uploader: a citizen), with its distance from the case (flag
    `photo_far` beyond GRID_PHOTO_FAR_M). The same photo of the same kind again — or a concurrent upload of it — is
    the first record; a new one gets its thumbnail and EXIF job (the id coalesces with the media sweep's)."""
    distance = None
    flags: list[str] = []
    if facts.lon is not None and facts.lat is not None:
        distance = round(distance_m(facts.lon, facts.lat, case_lon, case_lat), 1)
        if distance > settings.photo_far_m:
            flags.append("photo_far")
    row = await repo.insert_attachment(
        conn, case_id=case_id, kind=kind, sha256=facts.sha256, content_type=facts.content_type,
        size_bytes=facts.size_bytes, width=facts.width, height=facts.height, taken_at=facts.taken_at, lon=facts.lon,
        lat=facts.lat, distance_m=distance, flags=flags, uploader_id=uploader_id, storage_key=facts.storage_key,
    )  # fmt: skip
    if row is None:
        return await repo.find_attachment(conn, case_id, kind, facts.sha256)
    enqueue("media.process", job_id=f"media:{row.id}", attachment_id=int(row.id))
    return row


async def _item(index: int, work: Awaitable[T]) -> T | BatchItemRead:
    """The result of one item's step of a batch, or its error as the item's result."""
    try:
        return await work
    except msgspec.ValidationError as exc:
        return _item_error(index, 400, str(exc))
    except DomainError as exc:
        return _item_error(index, exc.status_code, exc.detail, exc.extra)
    except GeoInputError as exc:
        return _item_error(index, 422, exc.message, {"field": exc.field} if exc.field else None)
    except Exception:
        log.exception("batch item %d failed", index)
        return _item_error(index, 500, "internal server error")


def _item_error(index: int, status: int, detail: str, extra: dict[str, Any] | None = None) -> BatchItemRead:
    return BatchItemRead(
        index=index, status_code=status, error=ErrorRead(status_code=status, detail=detail, extra=extra or None)
    )


async def _answered(source: Source, principal: Principal, ready: _Ready) -> Outcome | None:
    """The stored answer to the report's idempotency key (409 when it was for another body); None when unused."""
    assert ready.key is not None
    async with connected(source) as conn:
        stored = await repo.stored_response(conn, principal.user_id, ready.key)
    if stored is None:
        return None
    if stored.request_hash != ready.request_hash:
        raise Conflict(
            f"the idempotency key {ready.key!r} was already used for a different report; use a new key for a new "
            "report",
            extra={"field": "client_id"},
        )
    return Outcome(int(stored.status_code), bytes(stored.body), replayed=True)


def _check_class(cls: ClassFacts, f: Any) -> None:
    """The class of the report is in use and consistent with the named component (`f`, when one was read)."""
    if not cls.active:
        raise InvalidInput(
            f"class {cls.code} ({cls.name}) is no longer in use; choose a current class",
            extra={"field": "category_code"},
        )
    if f is not None and f.comp_code is not None:
        if f.comp_status == "removed":
            raise InvalidInput(
                f"component {f.comp_code} has been removed from the register", extra={"field": "component_code"}
            )
        if cls.kind == "component" and f.comp_category != cls.code:
            raise InvalidInput(
                f"component {f.comp_code} is of class {f.comp_category}, not {cls.code}: fix the class or the code",
                extra={"field": "component_code"},
            )


def _may_attach(principal: Principal, case: CaseRead, kind: str) -> None:
    """403 unless the caller's role and relation to the case allow photos of this kind."""
    if principal.roles & (CENTRE_ROLES | ALL_SEEING):
        return
    allowed: set[str] = set()
    if "worker" in principal.roles and (
        case.reporter_id == principal.user_id
        or case.checker_id == principal.user_id
        or case.grid_code in principal.duty_grid_codes
    ):
        allowed |= WORKER_KINDS
    if "unit_staff" in principal.roles and case.unit_code is not None and case.unit_code in principal.unit_codes:
        allowed |= UNIT_KINDS
    if kind not in allowed:
        if allowed:
            raise DomainError(
                f"you may attach {', '.join(sorted(allowed))} photos to case {case.id}, not {kind}",
                status_code=403,
                extra={"field": "kind"},
            )
        raise DomainError(
            f"only the reporter, the workers of the grid, the assigned unit and the centre attach photos to case "
            f"{case.id}",
            status_code=403,
        )


def _attachment(row: Any) -> AttachmentRead:
    return AttachmentRead(
        id=int(row.id), case_id=int(row.case_id), kind=row.kind, sha256=row.sha256, content_type=row.content_type,
        size_bytes=int(row.size_bytes), width=row.width, height=row.height, taken_at=row.taken_at, lon=row.lon,
        lat=row.lat, distance_m=row.distance_m, flags=list(row.flags or []), uploader_id=row.uploader_id,
        created_at=row.created_at,
    )  # fmt: skip
