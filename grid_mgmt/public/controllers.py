"""HTTP endpoints of the citizens' side (no login): reports, following them, classes, nearby; and the centre's view
of a citizen's contact."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody
from litestar.params import HeaderParameter, JSONBody, MultipartBody, Parameter, QueryParameter
from litestar.response import File

from grid_mgmt.lib.auth import current, requires
from grid_mgmt.lib.deps import AppSettings
from grid_mgmt.lib.errors import DomainError
from grid_mgmt.lib.files import stored_file
from grid_mgmt.lib.openapi import responses
from grid_mgmt.lib.ratelimit import client_of
from grid_mgmt.lib.schemas import ErrorRead
from grid_mgmt.public.followup import FollowUpService
from grid_mgmt.public.schemas import (
    CommentIn,
    CommentRead,
    ContactRead,
    NearbyPage,
    PhotoRead,
    PublicClassRead,
    PublicReceiptRead,
    PublicReportIn,
    PublicReportRead,
    RatingIn,
    ReopenIn,
)
from grid_mgmt.public.service import MAX_NEARBY_RADIUS_M, NEARBY_LIMIT
from grid_mgmt.settings import Settings, get_settings

_S = get_settings()
JSON_BODY_LIMIT = _S.public_max_body
"""Body limit of the JSON routes (413 above); the report route checks GRID_PUBLIC_MAX_BODY itself for JSON."""
UPLOAD_BODY_LIMIT = max(1, _S.public_max_photos) * _S.max_photo_bytes + _S.public_max_body
"""Body limit of the routes that take photos: the photos plus room for the fields and the multipart envelope."""
CENTRE = ("acceptor", "leader", "dispatcher", "supervisor", "admin")

TOKEN_HEADER = HeaderParameter(
    name="X-Report-Token", required=False, description="the report's secret token (from the answer to the report)"
)
TOKEN_QUERY = QueryParameter(name="token", required=False, description="the token, when a header cannot be sent")
TOO_LARGE = ResponseSpec(data_container=ErrorRead, description="the body (or a photo) is larger than allowed")
UNSUPPORTED = ResponseSpec(data_container=ErrorRead, description="not a JPEG, PNG or WebP by its content")
THROTTLED = "Too many requests from this address or with this contact; retry after `Retry-After` seconds."

_REPORT_DOC = """Report a problem without an account (市民上报). JSON (`application/json`, at most GRID_PUBLIC_MAX_BODY
bytes) or `multipart/form-data` with the same fields and up to GRID_PUBLIC_MAX_PHOTOS photos as `file` (JPEG, PNG or
WebP by content, each at most GRID_MAX_PHOTO_BYTES).

* `category_code`: a class citizens may report (`GET /api/v1/public/classes`); `lon`/`lat` in `crs` (wgs84, gcj02,
  bd09) inside the city; `description` 1 – 4,000 characters; `address` optional.
* `contact_phone`, `contact_email`, `contact_name` only with `consent: true`; never shown publicly, deleted after
  GRID_CONTACT_RETENTION_DAYS.
* The answer has the public `tracking_code` and the secret `token` (shown only now): follow the report with
  `GET /api/v1/public/reports/{tracking_code}`, add the token (`X-Report-Token`) to see and change your own report.
* The report is verified on site by a grid worker (status `verifying`) before it is registered.
* Limits: GRID_PUBLIC_REPORTS_PER_ADDRESS per GRID_PUBLIC_ADDRESS_WINDOW_S per client address,
  GRID_PUBLIC_REPORTS_PER_CONTACT per GRID_PUBLIC_CONTACT_WINDOW_S per phone or e-mail: then 429 with Retry-After."""


@dataclass
class ReportOperation(Operation):
    """The report route reads its body itself (JSON or multipart): both are documented here."""

    def __post_init__(self) -> None:
        schema = msgspec.json.schema(PublicReportIn)
        fields = dict(schema["$defs"]["PublicReportIn"])
        fields["description"] = inspect.cleandoc(fields.get("description", ""))
        form = {
            **fields,
            "properties": {
                **fields["properties"],
                "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
            },
        }
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(schema=fields),  # type: ignore[arg-type]  # a plain JSON schema
                "multipart/form-data": OpenAPIMediaType(schema=form),  # type: ignore[arg-type]
            },
        )  # fmt: skip


@dataclass
class PhotoForm:
    """multipart/form-data: one or more photos as `file`."""

    file: list[UploadFile]


async def provide_public(request: Request[Any, Any, Any]) -> FollowUpService:
    """The service of the citizens' side over the app's engine and settings, with its Redis (rate limits), arq
    and grid index (from the app's state: dependencies side by side cost a task group per request)."""
    state = request.app.state
    return FollowUpService(state.engine, state.settings, state.get("redis"), state.get("arq"), state.get("locator"))


async def provide_token(
    x_report_token: Annotated[str | None, TOKEN_HEADER] = None, token: Annotated[str | None, TOKEN_QUERY] = None
) -> str | None:
    """The report's token from the X-Report-Token header, else from `?token=`."""
    return x_report_token or token


async def provide_client(request: Request[Any, Any, Any], settings: AppSettings) -> str:
    """The client's address: the socket peer, or the trusted proxy's header when the peer is a trusted proxy."""
    return client_of(request, settings)


Public = NamedDependency[FollowUpService]
ReportToken = NamedDependency[str | None]
Client = NamedDependency[str]
Code = Annotated[str, Parameter(description="the report's tracking code (10 characters; O is read as 0, I and L as 1)")]
DEPENDENCIES = {
    "public": Provide(provide_public),
    "report_token": Provide(provide_token),
    "client": Provide(provide_client),
}


def _too_large(limit: int) -> DomainError:
    return DomainError(f"the body is larger than {limit:,} bytes (GRID_PUBLIC_MAX_BODY)", status_code=413)


def _bad_body(exc: Exception) -> DomainError:
    return DomainError(f"the report is malformed: {exc}", status_code=400)


async def read_report(request: Request[Any, Any, Any], settings: Settings) -> tuple[PublicReportIn, list[bytes]]:
    """The report of a JSON or multipart body, and its photos; 400 malformed, 413 too large, 415 another type."""
    content_type, _ = request.content_type
    limit = settings.public_max_body
    if content_type == "multipart/form-data":
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if sum(len(k) + len(v) for k, v in fields.items()) > limit:
            raise _too_large(limit)
        uploads = [f for f in form.getall("file") if isinstance(f, UploadFile)] if "file" in form else []
        if fields.get("consent", "").strip().lower() in ("on", "yes"):  # an HTML checkbox
            fields["consent"] = "true"
        try:
            data = msgspec.convert(fields, PublicReportIn, strict=False)
        except msgspec.ValidationError as exc:
            raise _bad_body(exc) from None
        photos = [await upload.read() for upload in uploads]
        for upload in uploads:
            await upload.close()
        return data, photos
    if content_type not in ("application/json", ""):
        raise DomainError(
            f"send the report as application/json or multipart/form-data, not {content_type}", status_code=415
        )
    if (request.content_length or 0) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    try:
        return msgspec.json.decode(b"".join(chunks), type=PublicReportIn), []
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _bad_body(exc) from None


def _token_write(path: str, summary: str, description: str, status_code: int = 200) -> post:
    """The route decorator of a JSON write by the holder of a report's token: body limit and documented errors."""
    return post(
        f"/reports/{{code:str}}/{path}",
        summary=summary,
        description=description,
        status_code=status_code,
        request_max_body_size=JSON_BODY_LIMIT,
        responses={**responses(400, 403, 404, 409, 422, 429), 413: TOO_LARGE},
    )


class PublicReportController(Controller):
    """Citizens report problems and follow them; no login (rate limited per address and contact)."""

    path = "/api/v1/public"
    tags = ["public"]
    security = [{}]
    dependencies = DEPENDENCIES

    @post(
        "/reports",
        summary="Report a problem (citizens, no login)",
        description=_REPORT_DOC,
        status_code=201,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        operation_class=ReportOperation,
        responses={**responses(400, 422, 429, descriptions={429: THROTTLED}), 413: TOO_LARGE, 415: UNSUPPORTED},
    )
    async def report(self, request: Request[Any, Any, Any], public: Public) -> PublicReceiptRead:
        settings = public.settings
        data, photos = await read_report(request, settings)
        receipt = await public.submit(data, client=client_of(request, settings), photos=photos)
        return PublicReceiptRead(tracking_code=receipt.tracking_code, token=receipt.token, status=receipt.status)

    @get(
        "/reports/{code:str}",
        summary="Follow a report by its tracking code",
        description="Status, class, place and a coarse public timeline (never who acted, notes or contacts). With "
        "the report's token (`X-Report-Token` or `?token=`) also `own`: your description, contact, photos and "
        "comments. A wrong token is 403.",
        responses=responses(403, 404),
    )
    async def follow(self, public: Public, code: Code, report_token: ReportToken) -> PublicReportRead:
        return await public.view(code, report_token)

    @_token_write(
        "comments",
        "Add information to your report",
        '`{"text"}` (1 – 2,000 characters) with the token; the centre sees it on the case\'s timeline. A closed, '
        "rejected, cancelled or merged report takes no more comments (409).",
        status_code=201,
    )
    async def comment(
        self, public: Public, code: Code, data: JSONBody[CommentIn], report_token: ReportToken, client: Client
    ) -> CommentRead:
        return await public.comment(code, report_token, data.text, client)

    @post(
        "/reports/{code:str}/photos",
        summary="Add photos to your report",
        description="multipart/form-data with up to GRID_PUBLIC_MAX_PHOTOS photos as `file`, with the token; "
        "checked like the report's photos (415 not an image by content, 413 too large, 422 damaged).",
        status_code=201,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        responses={**responses(400, 403, 404, 409, 422, 429), 413: TOO_LARGE, 415: UNSUPPORTED},
    )
    async def add_photos(
        self, public: Public, code: Code, data: MultipartBody[PhotoForm], report_token: ReportToken, client: Client
    ) -> list[PhotoRead]:
        photos = [await f.read() for f in data.file]
        return await public.add_photos(code, report_token, photos, client)

    @get(
        "/reports/{code:str}/photos/{photo_id:int}",
        summary="A photo you sent",
        responses=responses(403, 404),
        media_type="image/*",
    )
    async def photo(
        self,
        public: Public,
        code: Code,
        photo_id: Annotated[int, Parameter(description="the photo's id (from `own.photos`)", ge=1)],
        report_token: ReportToken,
    ) -> File:
        path, content_type, sha256 = await public.photo_file(code, report_token, photo_id)
        return stored_file(path, content_type, path.rsplit("/", 1)[-1], sha256)

    @_token_write(
        "rating",
        "Rate the outcome (once, after closure)",
        '`{"score": 1-5, "comment"}` with the token. Before closure or a second time: 409; a score outside 1 – 5: 400.',
    )
    async def rate(
        self, public: Public, code: Code, data: JSONBody[RatingIn], report_token: ReportToken, client: Client
    ) -> PublicReportRead:
        return await public.rate(code, report_token, data, client)

    @_token_write(
        "reopen",
        "Ask to reopen: it was not really fixed",
        '`{"reason"}` with the token, within GRID_PUBLIC_REOPEN_DAYS (7) days of closure: the case goes back to '
        "`registered` for dispatch (timeline: `reopen` by role citizen). Not closed, or after the window: 409.",
    )
    async def reopen(
        self, public: Public, code: Code, data: JSONBody[ReopenIn], report_token: ReportToken, client: Client
    ) -> PublicReportRead:
        return await public.reopen(code, report_token, data.reason, client)

    @get(
        "/classes",
        summary="What citizens can report",
        description="The public, active classes: code, name, name_en, kind, major class.",
        responses=responses(400),
    )
    async def classes(self, public: Public) -> list[PublicClassRead]:
        return await public.classes()

    @get(
        "/nearby",
        summary="Open reports nearby (before reporting)",
        description=f"Open reports of a class near a point, nearest first, at most {NEARBY_LIMIT}, public fields only: "
        "follow one (by its tracking code) instead of filing a duplicate. `radius` defaults to the class's "
        f"duplicate radius, at most {MAX_NEARBY_RADIUS_M:g} m.",
        responses=responses(400, 422),
    )
    async def nearby(
        self,
        public: Public,
        lon: Annotated[float, Parameter(description="longitude in `crs`")],
        lat: Annotated[float, Parameter(description="latitude in `crs`")],
        category: Annotated[str, QueryParameter(name="class", description="a public class code, e.g. E0102")],
        radius: Annotated[float | None, Parameter(description="metres, at most 500")] = None,
        crs: Annotated[str, Parameter(description="wgs84 (default), gcj02 or bd09")] = "wgs84",
    ) -> NearbyPage:
        return await public.nearby(lon, lat, crs, category, radius)


class CaseContactController(Controller):
    """A citizen's contact details, for the centre roles that call back."""

    path = "/api/v1/cases"
    tags = ["public"]
    dependencies = {"public": Provide(provide_public)}

    @get(
        "/{case_id:int}/contact",
        summary="The citizen's contact of a case",
        description="Phone, e-mail and name the citizen gave with consent, until GRID_CONTACT_RETENTION_DAYS after "
        "the report. Roles acceptor, leader, dispatcher, supervisor, admin, in their scope (404 outside it, or when "
        "there is no contact).",
        guards=[requires(*CENTRE)],
        responses=responses(401, 403, 404),
    )
    async def contact(
        self,
        request: Request[Any, Any, Any],
        public: Public,
        case_id: Annotated[int, Parameter(description="the case id", ge=1)],
    ) -> ContactRead:
        return await public.contact(current(request), case_id)


ROUTES: list[type[Controller]] = [PublicReportController, CaseContactController]
