"""Following a citizen's report by its tracking code: the public view, and with the token the own view, comments,
photos, the rating after closure and the request to reopen (through the case lifecycle, as the citizen)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec

from grid_mgmt.cases import lifecycle as lc
from grid_mgmt.cases.schemas import ReasonPayload
from grid_mgmt.cases.service import CaseService, apply_in
from grid_mgmt.intake import photos as photo_checks
from grid_mgmt.lib.auth import SYSTEM, Principal
from grid_mgmt.lib.errors import Conflict, InvalidInput, NotFound
from grid_mgmt.lib.jobs import JobBuffer
from grid_mgmt.notify.service import announce
from grid_mgmt.public import repository as repo
from grid_mgmt.public import rules
from grid_mgmt.public.schemas import (
    CommentRead,
    OwnRead,
    PhotoRead,
    PlaceRead,
    PublicReportRead,
    RatingIn,
    StepRead,
)
from grid_mgmt.public.service import PublicService, insert_photos

CITIZEN = Principal(user_id=0, username="citizen", roles=frozenset({lc.Role.CITIZEN}))
"""The holder of a report's token acting on that report (reopen): no user row behind it, like SYSTEM; the token,
checked before, is what scopes it to its own case."""

FINAL = frozenset({*lc.TERMINAL, lc.Status.MERGED})
"""A report in these statuses takes no more comments or photos."""

_own = msgspec.json.Decoder(OwnRead)


class FollowUpService(PublicService):
    """What a citizen does with a report after filing it."""

    async def view(self, code: str, token: str | None) -> PublicReportRead:
        """The public view; with the right token the own view too (403 for a wrong one, 404 for an unknown code)."""
        row = await self._report(code, token)
        return await self._read(row, own=token is not None)

    async def comment(self, code: str, token: str | None, text: str, client: str) -> CommentRead:
        """Add information to an open report: a timeline row of the citizen, an event for the centre."""
        row = await self._report(code, token, required=True)
        cleaned = rules.note(text, "text", "say what you want to add")
        self._still_open(row, "comments")
        await self.limiter.hit((self.followups, client))
        with JobBuffer.collect() as jobs:
            async with self.engine.begin() as conn:
                status = await repo.lock_case(conn, row.case_id)
                await repo.append_citizen_row(conn, row.case_id, str(status), rules.COMMENT_ACTION, cleaned, {})
                await announce(conn, topic="case.citizen_comment", case_id=row.case_id)
            await jobs.flush(self.arq)
        return CommentRead(text=cleaned, at=dt.datetime.now(dt.UTC))

    async def add_photos(self, code: str, token: str | None, photos: Sequence[bytes], client: str) -> list[PhotoRead]:
        """Add photos to an open report (checked like the report's; the same photo again is stored once)."""
        row = await self._report(code, token, required=True)
        self._still_open(row, "photos")
        if not photos:
            raise InvalidInput("no photo sent: attach one or more files as `file`", extra={"field": "file"})
        self.check_photo_count(len(photos))
        await self.limiter.hit((self.followups, client))
        checked = await self.store_photos(photos)
        with JobBuffer.collect() as jobs:
            async with self.engine.begin() as conn:
                status = await repo.lock_case(conn, row.case_id)
                ids = await insert_photos(conn, self.settings, row.case_id, row.lon, row.lat, checked)
                await repo.append_citizen_row(conn, row.case_id, str(status), rules.PHOTO_ACTION, None,
                                              {"attachment_ids": ids})  # fmt: skip
                await announce(conn, topic="case.citizen_photo", case_id=row.case_id)
            await jobs.flush(self.arq)
        own = await self._own(row.case_id)
        return [p for p in own.photos if p.id in ids]

    async def rate(self, code: str, token: str | None, data: RatingIn, client: str) -> PublicReportRead:
        """Rate the outcome once, after closure (409 before closure or a second time)."""
        row = await self._report(code, token, required=True)
        comment = rules.note(data.comment, "comment", "") if data.comment and data.comment.strip() else None
        await self.limiter.hit((self.followups, client))
        if row.rating is not None:
            raise Conflict(f"report {row.tracking_code} was rated already ({row.rating} of 5)",
                           extra={"rating": row.rating})  # fmt: skip
        if row.status != lc.Status.CLOSED:
            raise _not_closed(row, "rated")
        with JobBuffer.collect() as jobs:
            async with self.engine.begin() as conn:
                rated = await repo.rate(conn, row.case_id, data.score, comment)
                if rated is None:  # a concurrent rating or reopening came first
                    raise Conflict(f"report {row.tracking_code} was rated or reopened meanwhile: reload it")
                await announce(conn, topic="case.rated", case_id=row.case_id, payload={"rating": data.score})
            await jobs.flush(self.arq)
        return await self.view(code, token)

    async def reopen(self, code: str, token: str | None, reason: str, client: str) -> PublicReportRead:
        """Ask to reopen a closed report that was not really fixed, within GRID_PUBLIC_REOPEN_DAYS of closure: the
        case goes back to `registered` through the lifecycle (role citizen), its timeline says so."""
        row = await self._report(code, token, required=True)
        cleaned = rules.note(reason, "reason", "say what is still wrong")
        await self.limiter.hit((self.followups, client))
        if row.status != lc.Status.CLOSED:
            raise _not_closed(row, "reopened")
        until = rules.reopen_until(row.status, row.closed_at, self.settings.public_reopen_days)
        if until is not None and dt.datetime.now(dt.UTC) > until:
            raise Conflict(
                f"report {row.tracking_code} was closed on {row.closed_at:%Y-%m-%d}; it can be reopened only within "
                f"{self.settings.public_reopen_days} days of closure: please file a new report",
                extra={"closed_at": row.closed_at.isoformat(), "reopen_until": until.isoformat()},
            )
        case = await CaseService(self.engine).get(SYSTEM, row.case_id)
        with JobBuffer.collect() as jobs:
            async with self.engine.begin() as conn:
                await apply_in(conn, row.case_id, "reopen", CITIZEN, ReasonPayload(note=cleaned), current=case)
                await repo.count_reopen(conn, row.case_id)
            await jobs.flush(self.arq)
        return await self.view(code, token)

    async def photo_file(self, code: str, token: str | None, attachment_id: int) -> tuple[str, str, str]:
        """(path, content type, sha256) of a photo the citizen sent (404 for any other)."""
        row = await self._report(code, token, required=True)
        async with self.engine.connect() as conn:
            photo = await repo.own_photo(conn, row.case_id, attachment_id)
        if photo is None:
            raise NotFound(f"report {row.tracking_code} has no photo {attachment_id} of yours")
        path = photo_checks.path_of(self.settings.media_dir, photo.storage_key)
        if not await asyncio.to_thread(path.is_file):
            raise NotFound(f"the file of photo {attachment_id} is missing from the media store")
        return str(path), str(photo.content_type), str(photo.sha256)

    # --- helpers --------------------------------------------------------------------------------------------------

    async def _report(self, code: str, token: str | None, *, required: bool = False) -> Any:
        """The report row by its code (404), its token checked when given or `required` (403)."""
        canonical = rules.tracking_code(code)
        row = None
        if canonical is not None:
            async with self.engine.connect() as conn:
                row = await repo.report(conn, canonical)
        if row is None:
            raise NotFound(f"no report with tracking code {code[:20]!r}")
        if token is not None or required:
            rules.check_token(token, row.token_sha256)
        return row

    async def _own(self, case_id: int) -> OwnRead:
        async with self.engine.connect() as conn:
            own = await repo.own(conn, case_id, rules.COMMENT_ACTION)
        return msgspec.convert(
            {"description": "", "contact": own.contact, "photos": own.photos, "comments": own.comments}, OwnRead
        )

    async def _read(self, row: Any, *, own: bool) -> PublicReportRead:
        actions = [(str(a), dt.datetime.fromisoformat(at)) for a, at in row.activities]
        steps = rules.steps(actions)
        if row.rated_at is not None:
            steps.append(("rated", row.rated_at))
        until = rules.reopen_until(row.status, row.closed_at, self.settings.public_reopen_days)
        mine = None
        if own:
            mine = await self._own(row.case_id)
            mine.description = row.description
        return PublicReportRead(
            tracking_code=row.tracking_code, status=row.status, category_code=row.category_code,
            category_name=row.category_name,
            place=PlaceRead(lon=row.lon, lat=row.lat, address=row.address, grid_code=row.grid_code,
                            community=row.community, street=row.street),
            received_at=row.received_at, closed_at=row.closed_at,
            can_rate=row.status == lc.Status.CLOSED and row.rating is None,
            can_reopen_until=until if until is not None and until > dt.datetime.now(dt.UTC) else None,
            rating=row.rating, timeline=[StepRead(step=s, at=at) for s, at in sorted(steps, key=lambda x: x[1])],
            own=mine,
        )  # fmt: skip

    def _still_open(self, row: Any, what: str) -> None:
        if row.status in FINAL:
            raise Conflict(
                f"report {row.tracking_code} is {row.status}: it takes no more {what}"
                + (" (rate it, or ask to reopen it)" if row.status == lc.Status.CLOSED else ""),
                extra={"status": row.status},
            )


def _not_closed(row: Any, what: str) -> Conflict:
    return Conflict(
        f"report {row.tracking_code} is {row.status}, not closed: it can be {what} only after closure",
        extra={"status": row.status},
    )
