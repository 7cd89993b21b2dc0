"""HTTP endpoints of intake: POST /cases (one report), POST /cases/batch (an offline queue), photos."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, MultipartBody, Parameter
from litestar.response import File

from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.intake.rules import REPORTING_ROLES
from grid_mgmt.intake.schemas import MAX_BATCH, AttachmentRead, BatchIn, BatchRead, CaseIn, PhotoUpload
from grid_mgmt.intake.service import IntakeService
from grid_mgmt.lib.auth import authenticated, current, holding, requires
from grid_mgmt.lib.files import stored_file
from grid_mgmt.lib.openapi import responses
from grid_mgmt.lib.schemas import ErrorRead
from grid_mgmt.settings import get_settings

UPLOAD_BODY_LIMIT = get_settings().max_photo_bytes + 64 * 1024
"""The upload route's request body limit: the photo limit plus room for the multipart envelope (413 above)."""

IDEMPOTENCY_KEY = HeaderParameter(
    name="Idempotency-Key",
    required=False,
    description="the phone's id of this report (≤ 100 characters); a resend with the same key and body returns the "
    "first response and files nothing; the same key with another body is 409. `client_id` in the body does the same.",
)
CASE_ID = Parameter(description="the case id", ge=1)
ATTACHMENT_ID = Parameter(description="the attachment id", ge=1)

_REPORT_DOC = """Reports a problem (上报). Roles: grid workers (source `worker`), shift leaders (`leader`, `hotline` …),
acceptors and dispatchers (`hotline`, `video`, `inspection`).

* Location: `lon`/`lat` in `crs` (wgs84, gcj02, bd09), or only a `component_code` (its position is used). The
  server derives grid, community, street and district; a point outside every grid is 422 (swapped lon/lat says so).
* A report of a component class without a component code is linked to the nearest component of that class within
  GRID_SNAP_RADIUS_M metres (flag `snapped`). A worker reporting outside their duty grids gets `outside_duty_grid`.
* `captured_at` (device time) is kept next to the server's `received_at`; more than 5 minutes in the future or
  older than GRID_REPORT_MAX_AGE_DAYS is 422, as are `accuracy_m` over GRID_MAX_ACCURACY_M, an empty or over-long
  description, an unknown or retired class, an unknown component.
* Idempotent by `Idempotency-Key` or `client_id`: the replay answers the stored first response byte for byte
  (header `Idempotency-Replayed: true`)."""


def _service(request: Request[Any, Any, Any]) -> IntakeService:
    """The service over the app's engine, settings, grid index and job queue — taken from the app's state, not as
    dependencies: two dependencies at one level cost a task group (two tasks) per request on the hot path."""
    state = request.app.state
    return IntakeService(state.engine, state.settings, state.get("locator"), state.get("arq"))


class IntakeController(Controller):
    """Reports from phones and the centre, one at a time or as an offline queue, and their photos."""

    path = "/api/v1/cases"
    tags = ["intake"]

    @post(
        "/",
        summary="Report a problem (file a case)",
        description=_REPORT_DOC,
        status_code=201,
        media_type=MediaType.JSON,
        responses=responses(400, 401, 403, 409, 422),
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CaseIn],
        idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    ) -> Response[CaseRead]:
        principal = holding(request, *REPORTING_ROLES)  # not a guard: this is the hot path
        outcome = await _service(request).report(principal, data, idempotency_key)
        headers = {"Idempotency-Replayed": "true"} if outcome.replayed else None
        return Response(
            content=outcome.body,  # type: ignore[arg-type]  # pre-encoded CaseRead (stored for replays)
            status_code=outcome.status_code,
            media_type=MediaType.JSON,
            headers=headers,
        )

    @post(
        "/batch",
        summary=f"Upload up to {MAX_BATCH} reports queued offline",
        description="Each item is the body of `POST /api/v1/cases` and must carry its own `client_id`. Items are "
        "checked one by one and written together; a failing item does not stop the others. The answer has one "
        "result per item, in order: `status_code` and the `case` (201, or the stored response of a resend, "
        f"`replayed`), or the `error`. More than {MAX_BATCH} items: 422.",
        guards=[requires(*REPORTING_ROLES)],
        status_code=200,
        responses=responses(400, 401, 403, 422),
    )
    async def batch(self, request: Request[Any, Any, Any], data: JSONBody[BatchIn]) -> BatchRead:
        return await _service(request).batch(current(request), data.items)

    @post(
        "/{case_id:int}/attachments",
        summary="Attach a photo (JPEG, PNG or WebP)",
        description="multipart/form-data with `file` and `kind` (report, handling, check, verify). The type is "
        "decided by the content, not the name (415 otherwise); at most GRID_MAX_PHOTO_BYTES (413) and "
        "GRID_MAX_PHOTO_PIXELS (checked on the header, before decoding); damaged or truncated files are 422. EXIF "
        "time and GPS position are kept; a position more than GRID_PHOTO_FAR_M from the case is flagged "
        "`photo_far`. Who: the reporter and the grid's workers (report, verify, check), the assigned unit "
        "(handling), the centre (any); others 403, a case outside your scope 404. The same content again as the "
        "same kind returns the first record.",
        guards=[authenticated],
        status_code=201,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        responses={
            **responses(400, 401, 403, 404, 409, 422),
            413: ResponseSpec(data_container=ErrorRead, description="the photo is larger than GRID_MAX_PHOTO_BYTES"),
            415: ResponseSpec(data_container=ErrorRead, description="not a JPEG, PNG or WebP by its content"),
        },
    )
    async def attach(
        self,
        request: Request[Any, Any, Any],
        case_id: Annotated[int, CASE_ID],
        data: MultipartBody[PhotoUpload],
    ) -> AttachmentRead:
        content = await data.file.read()
        await data.file.close()
        return await _service(request).attach(current(request), case_id, data.kind, content)


class AttachmentController(Controller):
    """Photos by id, scoped like their case (outside your scope: 404)."""

    path = "/api/v1/attachments"
    tags = ["intake"]
    guards = [authenticated]

    @get("/{attachment_id:int}", summary="A photo's record", responses=responses(401, 404))
    async def get_attachment(
        self,
        request: Request[Any, Any, Any],
        attachment_id: Annotated[int, ATTACHMENT_ID],
    ) -> AttachmentRead:
        return await _service(request).attachment(current(request), attachment_id)

    @get(
        "/{attachment_id:int}/content",
        summary="A photo's file",
        responses=responses(401, 404),
        media_type="image/*",
    )
    async def get_content(
        self,
        request: Request[Any, Any, Any],
        attachment_id: Annotated[int, ATTACHMENT_ID],
    ) -> File:
        path, content_type, sha256 = await _service(request).content(current(request), attachment_id)
        return stored_file(path, content_type, path.rsplit("/", 1)[-1], sha256)
