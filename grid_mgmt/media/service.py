"""Thumbnails and EXIF of uploaded photos, made by a worker job after the upload; the thumbnail for the API.

`process` is the job: it re-reads the attachment and does nothing once `processed_at` is set, so a duplicate job,
a sweep re-enqueue or a retry has one effect. A photo that is gone or cannot be decoded is marked processed with
`exif = {"error": …}` and no thumbnail: it is logged once instead of failing on every sweep. Only failures that may
pass (the database, a full disk, an unreadable media volume) raise, and the sweep retries them later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.intake import photos
from grid_mgmt.intake.service import IntakeService
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.errors import NotFound
from grid_mgmt.media import images
from grid_mgmt.media import repository as repo
from grid_mgmt.settings import Settings

log = logging.getLogger(__name__)

SWEEP_LIMIT = 1000
"""Attachments one sweep re-enqueues at most (the next sweep takes the rest)."""


async def process(engine: AsyncEngine, settings: Settings, attachment_id: int) -> str:
    """Make the thumbnail and EXIF summary of one attachment and record them in one UPDATE.

    Returns "processed", "failed" (recorded with an error, no thumbnail), "done" (already processed, nothing
    changed) or "missing" (no such attachment).
    """
    async with engine.connect() as conn:
        row = await repo.get_state(conn, attachment_id)
    if row is None:
        return "missing"
    if row.processed_at is not None:
        return "done"
    thumb_key, exif = await asyncio.to_thread(_derive, settings, attachment_id, str(row.storage_key))
    async with engine.begin() as conn:
        if not await repo.mark_processed(conn, attachment_id, thumb_key=thumb_key, exif=exif):
            return "done"  # a concurrent run recorded first; its thumbnail has the same content and key
    return "processed" if thumb_key is not None else "failed"


def _derive(settings: Settings, attachment_id: int, storage_key: str) -> tuple[str | None, dict[str, Any]]:
    """(thumbnail key, EXIF summary), or (None, {"error": …}) for a file that is gone or not a readable image."""
    path = photos.path_of(settings.media_dir, storage_key)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        log.warning("attachment %d: the file %s is missing; recorded without a thumbnail", attachment_id, path)
        return None, {"error": "the stored file is missing"}
    try:
        derived = images.make(data, thumb_px=settings.thumb_px, max_pixels=settings.max_photo_pixels)
    except images.Unreadable as exc:
        log.warning("attachment %d: %s cannot be decoded (%s); recorded without a thumbnail", attachment_id, path, exc)
        return None, {"error": f"the stored file cannot be decoded: {exc}"[: images.MAX_TEXT]}
    photos.store(settings.media_dir, derived.thumb_key, derived.thumbnail)
    return derived.thumb_key, derived.exif


async def unprocessed(engine: AsyncEngine, *, older_than: dt.timedelta, limit: int = SWEEP_LIMIT) -> list[int]:
    """Attachments without a recorded outcome stored more than `older_than` ago (their job was lost or failed)."""
    async with engine.connect() as conn:
        return await repo.unprocessed(conn, created_before=dt.datetime.now(dt.UTC) - older_than, limit=limit)


async def thumbnail(
    engine: AsyncEngine, settings: Settings, principal: Principal, attachment_id: int
) -> tuple[str, str]:
    """(file path, sha256) of the thumbnail of a photo the principal may see (scoped like the photo: 404)."""
    await IntakeService(engine, settings).attachment(principal, attachment_id)
    async with engine.connect() as conn:
        row = await repo.get_state(conn, attachment_id)
    if row is None:  # deleted in between
        raise NotFound(f"no attachment {attachment_id} (or it is outside your scope)")
    if row.processed_at is None:
        raise NotFound(
            f"thumbnail not made yet: attachment {attachment_id} is waiting for the media worker; try again shortly",
            extra={"reason": "pending"},
        )
    if row.thumb_key is None:
        error = (row.exif or {}).get("error", "the photo could not be processed")
        raise NotFound(f"attachment {attachment_id} has no thumbnail: {error}", extra={"reason": "failed"})
    path = photos.path_of(settings.media_dir, str(row.thumb_key))
    if not await asyncio.to_thread(path.is_file):
        log.error("attachment %d: thumbnail %s is missing", attachment_id, path)
        raise NotFound(f"the thumbnail of attachment {attachment_id} is missing from the media store")
    return str(path), Path(str(row.thumb_key)).stem
