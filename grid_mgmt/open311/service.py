"""Open311 GeoReport v2 over our data: services are the public classes, service requests the cases of those classes
(whatever their source, merged duplicates aside), posting a request files a citizen's report through the public
service, and api keys say which client posted it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.cases.repository import class_facts
from grid_mgmt.lib.errors import DomainError, NotFound
from grid_mgmt.lib.ratelimit import Limit, RateLimiter
from grid_mgmt.open311 import repository as repo
from grid_mgmt.open311 import rules
from grid_mgmt.open311.rules import BadParameter, RequestQuery
from grid_mgmt.open311.schemas import (
    AttributeRead,
    AttributeValueRead,
    DiscoveryRead,
    EndpointRead,
    ExtendedAttributesRead,
    NoteRead,
    Open311KeyCreatedRead,
    Open311KeyRead,
    PostedRead,
    ServiceDefinitionRead,
    ServiceRead,
    ServiceRequestRead,
    TokenRead,
)
from grid_mgmt.public.schemas import PublicReportIn
from grid_mgmt.public.service import PublicService
from grid_mgmt.settings import Settings

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
SERVICE_NOTICE = "A grid worker verifies the report on site before it is registered; follow it with its token."
_TOKEN = re.compile(r"[0-9A-Za-z]{10}")
_MISREAD = str.maketrans({"O": "0", "I": "1", "L": "1"})
_notes = msgspec.json.Decoder(list[NoteRead])


class Forbidden(DomainError):
    """No valid api_key (403)."""

    status_code = 403


class Open311Service:
    """What the Open311 endpoints answer; one per request (it holds no state of its own)."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, redis: Redis | None = None, arq: Any = None, locator: Any = None
    ):
        self.engine = engine
        self.settings = settings
        self.redis = redis
        self.arq = arq
        self.locator = locator
        self.tz = ZoneInfo(settings.work_timezone)

    # --- discovery and services --------------------------------------------------------------------------------

    async def discovery(self, url: str) -> DiscoveryRead:
        """The discovery document; `url` is the endpoint's address when GRID_OPEN311_BASE_URL is not set."""
        async with self.engine.connect() as conn:
            changed = await repo.changeset(conn)
        endpoint = EndpointRead(
            specification=SPECIFICATION,
            url=self.settings.open311_base_url or url,
            changeset=changed,
            type="production",
            formats=["text/xml", "application/json"],
        )
        return DiscoveryRead(
            changeset=changed,
            contact=self.settings.open311_contact,
            key_service=self.settings.open311_key_service,
            endpoints=[endpoint],
        )

    async def services(self) -> list[ServiceRead]:
        async with self.engine.connect() as conn:
            rows = await repo.public_classes(conn)
        return [
            ServiceRead(
                service_code=r.code,
                service_name=r.name,
                description=r.register_criteria or r.name_en,
                metadata=bool(r.open311_attributes),
                type="realtime",
                keywords=r.name_en,
                group=r.major_name,
            )
            for r in rows
        ]

    async def definition(self, code: str) -> ServiceDefinitionRead:
        """The questions of a public class (404 for an unknown or non-public class)."""
        row = await self._class(code)
        if row is None:
            raise NotFound(
                f"no service {code!r}: GET services.json lists the services", extra={"field": "service_code"}
            )
        attributes = [
            AttributeRead(
                variable=True,
                code=str(a["code"]),
                datatype=str(a["datatype"]),
                required=bool(a.get("required")),
                datatype_description=a.get("datatype_description"),
                order=i,
                description=str(a.get("description") or a["code"]),
                values=[AttributeValueRead(key=str(v["key"]), name=str(v["name"])) for v in a.get("values") or []],
            )
            for i, a in enumerate(row.open311_attributes or [], start=1)
        ]
        return ServiceDefinitionRead(service_code=row.code, attributes=attributes)

    async def _class(self, code: str) -> Any:
        """An active public class, or None."""
        async with self.engine.connect() as conn:
            row = await repo.category(conn, code)
        return row if row is not None and row.public and row.active else None

    # --- service requests --------------------------------------------------------------------------------------

    def query(self, params: Mapping[str, str | None]) -> RequestQuery:
        s = self.settings
        return rules.request_query(
            params, dt.datetime.now(dt.UTC), self.tz, max_days=s.open311_max_days, default_size=s.open311_page_size,
            max_size=s.open311_max_page_size, max_radius_m=s.open311_max_radius_m, max_bbox_deg=s.max_bbox_deg,
        )  # fmt: skip

    async def requests(self, q: RequestQuery) -> list[ServiceRequestRead]:
        """One page of service requests, newest first."""
        async with self.engine.connect() as conn:
            if q.codes and not q.ids:
                classes = [await class_facts(conn, code) for code in q.codes]  # the process's class dictionary
                unknown = [c for c, k in zip(q.codes, classes, strict=True) if k is None or not k.citizens_may_report]
                if unknown:
                    raise BadParameter(
                        f"no service {unknown[0]!r}: GET services.json lists the services",
                        extra={"field": "service_code"},
                    )
            rows = await repo.request_rows(conn, q)
        if not q.extensions:
            return [ServiceRequestRead(*row) for row in rows]
        width = len(ServiceRequestRead.__struct_fields__) - 2  # the row: the fields, extended attributes, notes
        return [
            ServiceRequestRead(*row[:width], ExtendedAttributesRead(*row[width:-1]), _notes.decode(row[-1]))  # type: ignore[call-arg]
            for row in rows
        ]

    async def request(self, request_id: str, extensions: bool) -> list[ServiceRequestRead]:
        """One service request as a one-item list (404 when no case of a public class has this number)."""
        found = rules.request_ids(request_id)
        page = await self.requests(RequestQuery(ids=found, page_size=1, extensions=extensions)) if found else []
        if len(found) != 1 or not page:
            raise NotFound(f"no service request {request_id!r}", extra={"field": "service_request_id"})
        return page

    async def token(self, value: str) -> list[TokenRead]:
        """The service request of a token (the tracking code on the citizen's receipt)."""
        code = value.strip().upper().translate(_MISREAD)
        row = None
        if _TOKEN.fullmatch(code):
            async with self.engine.connect() as conn:
                row = await repo.token(conn, code)
        if row is None:
            raise NotFound(f"no service request has the token {value!r}", extra={"field": "token"})
        request_id = row.merged_into if row.status == "merged" and row.merged_into else row.case_no
        return [TokenRead(service_request_id=request_id, token=code)]

    # --- posting -----------------------------------------------------------------------------------------------

    async def post(self, fields: Mapping[str, Any], *, client: str, photos: Sequence[bytes] = ()) -> list[PostedRead]:
        """File a service request as a citizen's report (channel open311): api_key, class, place, answers and
        description are checked here (400/403), the rest by the public service, which files the case `verifying`."""
        key_id = await self.authenticate(_one(fields, "api_key"))
        await self._count_post(key_id)
        code = rules.present(_one(fields, "service_code"))
        if code is None:
            raise BadParameter("service_code is missing: which service is it?", extra={"field": "service_code"})
        row = await self._class(code)
        if row is None:
            raise BadParameter(
                f"no service {code!r}: GET services.json lists the services", extra={"field": "service_code"}
            )
        where = rules.point(_one(fields, "lat"), _one(fields, "long"))
        if where is None:
            raise BadParameter(
                "lat and long are missing: this server locates requests by coordinates (WGS84), not by address",
                extra={"field": "lat"},
            )
        answers = rules.check_answers(row.code, row.open311_attributes or [], rules.attribute_answers(fields))
        email, phone = rules.text_value(_one(fields, "email")), rules.text_value(_one(fields, "phone"))
        name = full_name(rules.text_value(_one(fields, "first_name")), rules.text_value(_one(fields, "last_name")))
        data = PublicReportIn(
            category_code=row.code,
            lon=where[0],
            lat=where[1],
            description=rules.description(_one(fields, "description")) or row.name,
            address=rules.text_value(_one(fields, "address_string")),
            contact_phone=phone,
            contact_email=email,
            contact_name=name,
            consent=bool(email or phone or name),  # an Open311 client sends contact details with consent
        )
        public = PublicService(self.engine, self.settings, self.redis, self.arq, self.locator)
        try:
            receipt = await public.submit(
                data, client=client, channel="open311", api_key_id=key_id, attributes=answers or None, photos=photos
            )
        except DomainError as exc:  # for a posted request Open311 knows 400 (and 403); 429 and 413 stay
            if exc.status_code in (404, 409, 422):
                exc.status_code = 400
            _open311_names(exc)
            raise
        return [
            PostedRead(
                service_request_id=receipt.case_no,
                token=receipt.tracking_code,
                service_notice=SERVICE_NOTICE,
                account_id=None,
            )
        ]

    async def authenticate(self, api_key: str | None) -> int:
        """The id of an active api_key; 403 for a missing, unknown or revoked one."""
        key = rules.present(api_key)
        if key is None:
            raise Forbidden("api_key is missing: posting a service request needs one", extra={"field": "api_key"})
        async with self.engine.begin() as conn:
            row = await repo.use_key(conn, rules.key_digest(key))
        if row is None:
            raise Forbidden("api_key is not valid", extra={"field": "api_key"})
        if not row.active:
            raise Forbidden("api_key has been revoked", extra={"field": "api_key"})
        return int(row.id)

    async def _count_post(self, key_id: int) -> None:
        per_hour = self.settings.open311_key_posts_per_hour
        limit = Limit("open311.key", per_hour, 3600, "service requests with this api_key")
        await RateLimiter(self.redis).hit((limit, str(key_id)))


_FIELD_NAMES = {
    "contact_phone": "phone",
    "contact_email": "email",
    "contact_name": "first_name",
    "category_code": "service_code",
    "lon": "long",
    "photos": "media",
    "address": "address_string",
}
"""The public service's field names → the ones an Open311 client sent."""


def _open311_names(exc: DomainError) -> None:
    """Name the fields of the public service's refusal as the Open311 client knows them."""
    field = exc.extra.get("field") if exc.extra else None
    if isinstance(field, str) and field in _FIELD_NAMES:
        exc.extra["field"] = _FIELD_NAMES[field]
    for ours, theirs in _FIELD_NAMES.items():
        if ours != "address" or field == "address":  # "address" is also a plain word ("from this address")
            exc.detail = re.sub(rf"\b{ours}\b", theirs, exc.detail)


def _one(fields: Mapping[str, Any], name: str) -> str | None:
    """A single text field of a form or JSON body (the last of repeated values)."""
    value = fields.get(name)
    if isinstance(value, list | tuple):
        value = value[-1] if value else None
    return None if value is None else str(value)


def full_name(first: str | None, last: str | None) -> str | None:
    """first_name and last_name as one name: Chinese names surname first without a space, others `first last`."""
    if not (first and last):
        return first or last
    if all(ord(ch) > 0x2E80 for ch in first + last):
        return last + first
    return f"{first} {last}"


class KeyService:
    """Open311 api keys: made (shown once), listed, revoked. Only the sha256 of a key is stored."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def create(self, name: str) -> Open311KeyCreatedRead:
        key = rules.new_key()
        name = name.strip()
        if not name:
            raise BadParameter("name is empty: say who uses the key", extra={"field": "name"})
        async with self.engine.begin() as conn:
            row = await repo.insert_key(conn, name, rules.key_digest(key), key[: rules.KEY_PREFIX_LENGTH])
        return Open311KeyCreatedRead(**_fields(row), key=key)

    async def list_keys(self, after: int | None = None, limit: int = 1000) -> list[Open311KeyRead]:
        async with self.engine.connect() as conn:
            return [_key(r) for r in await repo.list_keys(conn, after, limit)]

    async def revoke(self, key_id: int) -> Open311KeyRead:
        """Revoke a key (again: no change); 404 for an unknown id."""
        async with self.engine.begin() as conn:
            row = await repo.revoke_key(conn, key_id)
        if row is None:
            raise NotFound(f"no api key {key_id}", extra={"field": "key_id"})
        return _key(row)

    async def named(self, name: str) -> list[Open311KeyRead]:
        async with self.engine.connect() as conn:
            return [_key(r) for r in await repo.keys_named(conn, name)]


def _fields(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in ("id", "name", "key_prefix", "active", "created_at", "last_used_at")}


def _key(row: Any) -> Open311KeyRead:
    return Open311KeyRead(**_fields(row))
