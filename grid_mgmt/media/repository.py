"""SQL of the media worker: an attachment's processing state, the one UPDATE that records it, the sweep query."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.db.models import Attachment

_t = Attachment.__table__.c


async def get_state(conn: AsyncConnection, attachment_id: int) -> Any:
    """(id, storage_key, thumb_key, exif, processed_at) of an attachment, or None."""
    sql = select(_t.id, _t.storage_key, _t.thumb_key, _t.exif, _t.processed_at).where(_t.id == attachment_id)
    return (await conn.execute(sql)).first()


async def mark_processed(
    conn: AsyncConnection, attachment_id: int, *, thumb_key: str | None, exif: dict[str, Any]
) -> bool:
    """Record the outcome once: compare-and-set on `processed_at IS NULL`; False when another run was first."""
    sql = (
        update(Attachment)
        .where(_t.id == attachment_id, _t.processed_at.is_(None))
        .values(thumb_key=thumb_key, exif=exif, processed_at=func.now())
    )
    return (await conn.execute(sql)).rowcount == 1


async def unprocessed(conn: AsyncConnection, *, created_before: dt.datetime, limit: int) -> list[int]:
    """Ids of attachments still without thumbnail and EXIF that were stored before `created_before`, oldest first."""
    sql = select(_t.id).where(_t.processed_at.is_(None), _t.created_at < created_before).order_by(_t.id).limit(limit)
    return [int(i) for i in (await conn.execute(sql)).scalars()]
