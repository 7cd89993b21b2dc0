"""HTTP: Open311 GeoReport v2 under /open311/v2 (each resource as .xml and .json; errors as the spec's list), and
the administration of Open311 api keys under /api/v1/open311/keys (admin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Reference, RequestBody, Schema
from litestar.params import JSONBody, Parameter
from litestar.types import ControllerRouterHandler
from redis.asyncio import Redis

from grid_mgmt.lib.auth import requires
from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.openapi import CURSOR, LIMIT, responses
from grid_mgmt.lib.pagination import check_limit, decode_cursor, encode_cursor
from grid_mgmt.lib.ratelimit import client_address
from grid_mgmt.lib.schemas import ItemPage
from grid_mgmt.open311 import formats
from grid_mgmt.open311.formats import UnknownResource, format_of, render
from grid_mgmt.open311.rules import BadParameter, RequestQuery, flag
from grid_mgmt.open311.schemas import (
    DiscoveryRead,
    Open311ErrorRead,
    Open311KeyCreate,
    Open311KeyCreatedRead,
    Open311KeyRead,
    PostedRead,
    ServiceDefinitionRead,
    ServiceRead,
    ServiceRequestRead,
    TokenRead,
)
from grid_mgmt.open311.service import KeyService, Open311Service
from grid_mgmt.settings import get_settings

PREFIX = "/open311/v2"
POST_BODY_LIMIT = get_settings().max_photo_bytes * get_settings().public_max_photos + 64 * 1024
"""The body limit of POST requests: GRID_PUBLIC_MAX_PHOTOS photos (`media`) and the form (413 above)."""

_ERRORS = {
    400: "A parameter is malformed, out of range or missing (the description names it).",
    403: "No valid api_key: missing, unknown or revoked.",
    404: "No such service, service request, token, resource or format.",
    413: "The body is larger than the photos and the form may be.",
    429: "Too many requests; retry after the Retry-After seconds.",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """Open311's error answers: a list of `{code, description}`, in the requested format."""
    return {
        code: ResponseSpec(data_container=list[Open311ErrorRead], description=_ERRORS.get(code, "error"))
        for code in codes
    }


Text = str | None
JURISDICTION = Annotated[Text, Parameter(description="accepted and ignored: this server answers for one city")]
EXTENSIONS = Annotated[
    Text, Parameter(description="true: add extended_attributes (the detailed status …) and notes (public timeline)")
]
FORMATTED = "Append `.xml` (the spec's required format) or `.json`."


def provide_open311(request: Request[Any, Any, Any], db: DB, settings: AppSettings) -> Open311Service:
    """The Open311 service of a request (the app's engine, settings, Redis, job queue and grid index)."""
    state = request.app.state
    redis: Redis | None = state.get("redis")
    return Open311Service(db, settings, redis, state.get("arq"), state.get("locator"))


Open311 = NamedDependency[Open311Service]
"""A handler parameter `open311: Open311` receives the service."""


async def provide_query(
    open311: Open311,
    service_request_id: Annotated[
        Text, Parameter(description="comma-separated case numbers; overrides every other parameter")
    ] = None,
    service_code: Annotated[Text, Parameter(description="comma-separated service codes")] = None,
    start_date: Annotated[Text, Parameter(description="ISO 8601: requested at or after (default: 90 days ago)")] = None,
    end_date: Annotated[Text, Parameter(description="ISO 8601: requested before (≤ 90 days after start_date)")] = None,
    status: Annotated[Text, Parameter(description="open, closed, or both comma-separated")] = None,
    updated_after: Annotated[
        Text, Parameter(description="ISO 8601: changed after this (without dates: whenever requested), newest first")
    ] = None,
    lat: Annotated[Text, Parameter(description="centre of a radius search (WGS84), with long")] = None,
    long: Annotated[Text, Parameter(description="centre of a radius search (WGS84), with lat")] = None,
    radius: Annotated[
        Text, Parameter(description="metres around lat/long (default 1000, at most GRID_OPEN311_MAX_RADIUS_M)")
    ] = None,
    bbox: Annotated[Text, Parameter(description="minlon,minlat,maxlon,maxlat (WGS84)")] = None,
    page: Annotated[Text, Parameter(description="page number, from 1")] = None,
    page_size: Annotated[
        Text, Parameter(description="requests per page (default GRID_OPEN311_PAGE_SIZE 1000, at most 1000)")
    ] = None,
    extensions: EXTENSIONS = None,
    jurisdiction_id: JURISDICTION = None,
) -> RequestQuery:
    """The checked parameters of `GET requests` (an empty parameter counts as absent)."""
    return open311.query(
        {
            "service_request_id": service_request_id, "service_code": service_code, "start_date": start_date,
            "end_date": end_date, "status": status, "updated_after": updated_after, "lat": lat, "long": long,
            "radius": radius, "bbox": bbox, "page": page, "page_size": page_size, "extensions": extensions,
        }
    )  # fmt: skip


QueryDep = NamedDependency[RequestQuery]


def _suffixed(name: str) -> list[str]:
    return [f"/{name}.xml", f"/{name}.json"]


def _base_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


@get(_suffixed("discovery"), summary="Service discovery", description=FORMATTED, responses=errors(404))
async def discovery(request: Request[Any, Any, Any], open311: Open311) -> Response[DiscoveryRead]:
    found = await open311.discovery(_base_url(request))
    return render(format_of(request), found, root="discovery")


@get(
    _suffixed("services"),
    summary="Services: the classes citizens may report",
    description=FORMATTED + " `metadata` true: the service asks questions (GET services/{service_code}).",
    responses=errors(404),
)
async def services(
    request: Request[Any, Any, Any], open311: Open311, jurisdiction_id: JURISDICTION = None
) -> Response[list[ServiceRead]]:
    found = await open311.services()
    return render(format_of(request), found, root="services", item="service")


@get(
    "/services/{name:str}",
    summary="A service's definition: its questions",
    description="`services/E0102.xml` or `.json`: the questions of a service, answered as `attribute[code]` when "
    "posting. Unknown services and classes citizens may not report: 404.",
    responses=errors(404),
)
async def service_definition(
    open311: Open311,
    name: Annotated[str, Parameter(description="the service code with the format: E0102.json")],
    jurisdiction_id: JURISDICTION = None,
) -> Response[ServiceDefinitionRead]:
    code, fmt = formats.split(name)
    found = await open311.definition(code)
    return render(fmt, found, root="service_definition")


_LIST_DOC = (
    FORMATTED + " Service requests are the cases of the classes citizens may report, whatever their source (merged "
    "duplicates aside), newest first: `service_request_id` is the case number, `status` open or closed (the detailed "
    "status is in `extended_attributes` with `extensions=true`, with `notes`: the public timeline), "
    "`expected_datetime` the current deadline, `agency_responsible` the handling unit. Without dates: the last "
    "GRID_OPEN311_MAX_DAYS (90) days; pages of GRID_OPEN311_PAGE_SIZE (1000). No personal data is ever shown."
)


@get(
    _suffixed("requests"),
    summary="Service requests",
    description=_LIST_DOC,
    dependencies={"open311_query": Provide(provide_query)},
    responses=errors(400, 404),
)
async def list_requests(
    request: Request[Any, Any, Any], open311: Open311, open311_query: QueryDep
) -> Response[list[ServiceRequestRead]]:
    body = await open311.requests(open311_query)
    return render(format_of(request), body, root="service_requests", item="request")


@get(
    "/requests/{name:str}",
    summary="One service request",
    description="`requests/<case number>.xml` or `.json`: a list holding the one request (404 when unknown).",
    responses=errors(400, 404),
)
async def get_request(
    open311: Open311,
    name: Annotated[str, Parameter(description="the case number with the format: 20261121000123.json")],
    extensions: EXTENSIONS = None,
    jurisdiction_id: JURISDICTION = None,
) -> Response[list[ServiceRequestRead]]:
    ident, fmt = formats.split(name)
    body = await open311.request(ident, flag(extensions, "extensions"))
    return render(fmt, body, root="service_requests", item="request")


@get(
    "/tokens/{name:str}",
    summary="The service request of a token",
    description="`tokens/<token>.xml` or `.json`: the token is the tracking code on the citizen's receipt; a "
    "report merged as a duplicate answers the request it was merged into.",
    responses=errors(404),
)
async def get_token(
    open311: Open311,
    name: Annotated[str, Parameter(description="the token with the format: 7K3M9Q2X4B.json")],
    jurisdiction_id: JURISDICTION = None,
) -> Response[list[TokenRead]]:
    token, fmt = formats.split(name)
    found = await open311.token(token)
    return render(fmt, found, root="service_requests", item="request")


_POST_FIELDS = {
    "api_key": "the client's api key (also accepted as a query parameter)",
    "service_code": "the service (GET services)",
    "lat": "latitude, WGS84",
    "long": "longitude, WGS84",
    "address_string": "a description of the place",
    "description": "what is wrong (at most 4,000 characters; default: the service's name)",
    "email": "the citizen's e-mail (sending contact details is consent to keep them; never shown)",
    "phone": "the citizen's phone (never shown)",
    "first_name": "never shown",
    "last_name": "never shown",
    "device_id": "accepted and ignored",
    "account_id": "accepted and ignored",
    "media_url": "accepted and ignored (send photos as multipart `media` files)",
    "attribute[code]": "the answer to a question of the service (repeat for a multivaluelist)",
}


@dataclass
class _PostOperation(Operation):
    """The operation of POST requests, with its body documented (it is read by hand: three encodings)."""

    def __post_init__(self) -> None:
        fields: dict[str, Schema | Reference] = {
            name: Schema(type=OpenAPIType.STRING, description=text) for name, text in _POST_FIELDS.items()
        }
        schema = Schema(type=OpenAPIType.OBJECT, properties=fields, required=["service_code", "lat", "long"])
        files = Schema(type=OpenAPIType.OBJECT, properties={**fields, "media": Schema(type=OpenAPIType.STRING)})
        self.request_body = RequestBody(
            required=True,
            content={
                RequestEncodingType.URL_ENCODED.value: OpenAPIMediaType(schema=schema),
                RequestEncodingType.MULTI_PART.value: OpenAPIMediaType(schema=files),
                RequestEncodingType.JSON.value: OpenAPIMediaType(schema=schema),
            },
        )


@post(
    _suffixed("requests"),
    summary="Post a service request",
    description=FORMATTED + " Form-encoded as the spec says (`attribute[code]` for the answers), multipart with "
    "`media` photos, or JSON (`attribute` may be an object). Needs an `api_key` (403 without a valid one). Filed as "
    "a citizen's report: verified on site by a grid worker before it is registered. Answers the service request id "
    "and its token (the tracking code). Points outside the city, unknown services, wrong answers: 400.",
    status_code=201,
    operation_class=_PostOperation,
    request_max_body_size=POST_BODY_LIMIT,
    responses=errors(400, 403, 404, 413, 429),
)
async def post_request(
    request: Request[Any, Any, Any], open311: Open311, settings: AppSettings, jurisdiction_id: JURISDICTION = None
) -> Response[list[PostedRead]]:
    fmt = format_of(request)
    fields, photos = await _posted(request)
    header = settings.trusted_proxy_header
    address = client_address(header, settings.trusted_proxies).resolve(
        request.client.host if request.client else None, request.headers.get(header) if header else None
    )
    posted = await open311.post(fields, client=address, photos=photos)
    return render(fmt, posted, root="service_requests", item="request", status=201)


async def _posted(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """The fields of a posted request (query parameters, then the body's) and its photos."""
    fields: dict[str, Any] = dict(request.query_params.dict())
    kind = request.content_type[0]
    photos: list[bytes] = []
    if kind == RequestEncodingType.JSON:
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            raise BadParameter("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadParameter("the JSON body must be an object of the request's fields")
        fields.update(body)
    elif kind in (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART):
        form = await request.form()
        for name in dict.fromkeys(form.keys()):
            values = form.getall(name)
            uploads = [v for v in values if isinstance(v, UploadFile)]
            if name == "media":
                photos += [await u.read() for u in uploads]
            texts = [v for v in values if isinstance(v, str)]
            if texts:
                fields[name] = texts if len(texts) > 1 or name.endswith("[]") else texts[0]
    else:
        raise BadParameter(
            "send the request form-encoded (application/x-www-form-urlencoded), as multipart/form-data or as JSON"
        )
    return fields, photos


_RESOURCES = ("services", "requests", "tokens")
_UNKNOWN_PATHS = [
    "/{rest:path}",
    *(f"/{r}" for r in _RESOURCES),
    *(f"/{r}/{{name:str}}/{{rest:path}}" for r in _RESOURCES),
]
"""Every other path under the prefix (the resources' own nodes included: the router would answer them itself)."""


@get(["/", *_UNKNOWN_PATHS], include_in_schema=False)
async def unknown_get(request: Request[Any, Any, Any]) -> None:
    raise UnknownResource(f"no Open311 resource {request.url.path}: see {PREFIX}/discovery.xml")


@post(
    [*_UNKNOWN_PATHS, *(f"/{r}/{{name:str}}" for r in _RESOURCES), *_suffixed("discovery"), *_suffixed("services")],
    include_in_schema=False,
)
async def unknown_post(request: Request[Any, Any, Any]) -> None:
    raise UnknownResource(f"nothing to POST at {request.url.path}: POST {PREFIX}/requests.xml files a request")


OPEN311 = Router(
    PREFIX,
    route_handlers=[
        discovery, services, service_definition, list_requests, post_request, get_request, get_token, unknown_get,
        unknown_post,
    ],
    tags=["open311"],
    dependencies={"open311": Provide(provide_open311, sync_to_thread=False)},
    exception_handlers=formats.EXCEPTION_HANDLERS,
)  # fmt: skip
"""The GeoReport v2 endpoints (their own error format; unknown paths under the prefix answer 404 in it)."""


class Open311KeyController(Controller):
    """Api keys of Open311 clients (admin): the key is shown once, when it is made; only its sha256 is kept."""

    path = "/api/v1/open311/keys"
    tags = ["open311"]
    guards = [requires("admin")]

    @get("/", summary="Open311 api keys", responses=responses(400, 401, 403, 422))
    async def list_keys(self, db: DB, limit: LIMIT = None, cursor: CURSOR = None) -> ItemPage[Open311KeyRead]:
        size = check_limit(limit, default=100, maximum=1000)
        after = decode_cursor(cursor)
        keys = await KeyService(db).list_keys(int(after) if after and after.isdigit() else None, size + 1)
        more = len(keys) > size
        keys = keys[:size]
        return ItemPage(items=keys, next_cursor=encode_cursor(str(keys[-1].id)) if more else None)

    @post(
        "/",
        summary="Make an Open311 api key (shown only in this answer)",
        status_code=201,
        responses=responses(400, 401, 403, 422),
    )
    async def create_key(self, db: DB, data: JSONBody[Open311KeyCreate]) -> Open311KeyCreatedRead:
        return await KeyService(db).create(data.name)

    @post(
        "/{key_id:int}/revoke",
        summary="Revoke an Open311 api key (posting with it answers 403)",
        status_code=200,
        responses=responses(401, 403, 404),
    )
    async def revoke_key(
        self, db: DB, key_id: Annotated[int, Parameter(description="the key's id", ge=1)]
    ) -> Open311KeyRead:
        return await KeyService(db).revoke(key_id)


ROUTES: list[ControllerRouterHandler] = [OPEN311, Open311KeyController]
