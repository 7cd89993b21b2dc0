"""HTTP endpoint of media: GET /attachments/{id}/thumbnail (the worker-made JPEG, scoped like the photo)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter
from litestar.response import File

from grid_mgmt.lib.auth import authenticated, current
from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.files import stored_file
from grid_mgmt.lib.openapi import responses
from grid_mgmt.media import service

ATTACHMENT_ID = Parameter(description="the attachment id", ge=1)


class ThumbnailController(Controller):
    """Thumbnails of photos by attachment id (outside your scope: 404, like the photo)."""

    path = "/api/v1/attachments"
    tags = ["media"]
    guards = [authenticated]

    @get(
        "/{attachment_id:int}/thumbnail",
        summary="A photo's thumbnail (JPEG)",
        description="An upright JPEG whose longest side is GRID_THUMB_PX (320), without metadata, made by the media "
        "worker shortly after the upload. 404 while it is not made yet (`extra.reason` = `pending`), when the photo "
        "could not be decoded (`failed`), or when the photo is outside your scope. The ETag is the thumbnail's "
        "sha256.",
        responses=responses(401, 404),
        media_type="image/jpeg",
    )
    async def get_thumbnail(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: AppSettings,
        attachment_id: Annotated[int, ATTACHMENT_ID],
    ) -> File:
        path, sha256 = await service.thumbnail(db, settings, current(request), attachment_id)
        return stored_file(path, "image/jpeg", f"{attachment_id}-thumb.jpg", sha256)
