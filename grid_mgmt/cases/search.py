"""Finding cases: the filtered, sorted, keyset-paged case list (JSON and GeoJSON) and the read functions other
features use (task queues, delta sync).

`GET /api/v1/cases` answers in the caller's data scope only (see `scope_sql`); nothing counts the whole table.
The page cursor is opaque: it encodes the sort, the last row's sort key and its id, so a page never repeats or
skips a row while the filters stay the same, however many cases arrive meanwhile.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from litestar import Request, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from geo.geojson import Point
from geo.validate import parse_bbox
from grid_mgmt.cases import search_repository as repo
from grid_mgmt.cases.encoded import EncodedCases
from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.db.listpool import ListPools
from grid_mgmt.db.models.case import URGENCIES
from grid_mgmt.lib.auth import Principal, current, holding
from grid_mgmt.lib.errors import DomainError, InvalidInput
from grid_mgmt.lib.openapi import BBOX, CURSOR, responses
from grid_mgmt.lib.pagination import check_limit, decode_cursor, encode_cursor
from grid_mgmt.lib.schemas import Feature, FeatureCollection, ItemPage
from grid_mgmt.lib.sql import Source
from grid_mgmt.settings import Settings

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
Q_MIN, Q_MAX = 2, 50
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
"""Dates and times without an offset in `received_from` / `received_to` are local time of the city."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class BadParameter(DomainError):
    """A malformed parameter: an unknown enum value, a code of the wrong shape (HTTP 400)."""

    status_code = 400


# ---- parameters -------------------------------------------------------------------------------------------


def _split(values: Sequence[str] | str | None) -> list[str]:
    """Repeated parameters and comma lists alike: `?status=a&status=b,c` → [a, b, c] (order kept, no repeats)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def parse_statuses(values: Sequence[str] | str | None) -> tuple[str, ...]:
    found = _split(values)
    unknown = [s for s in found if s not in repo.ALL_STATUSES]
    if unknown:
        raise BadParameter(
            f"unknown status {', '.join(map(repr, unknown))}; statuses are {', '.join(repo.ALL_STATUSES)}",
            extra={"field": "status"},
        )
    return tuple(found)


def parse_enum(values: Sequence[str] | str | None, field: str, allowed: Sequence[str]) -> tuple[str, ...]:
    found = _split(values)
    unknown = [v for v in found if v not in allowed]
    if unknown:
        raise BadParameter(
            f"unknown {field} {', '.join(map(repr, unknown))}; one of {', '.join(allowed)}", extra={"field": field}
        )
    return tuple(found)


_CATEGORY = re.compile(r"^[CE][0-9]{4,5}$")
_UNIT = re.compile(r"^[0-9A-Za-z_-]{2,32}$")


def parse_codes(
    values: Sequence[str] | str | None, field: str, pattern: re.Pattern[str], shape: str
) -> tuple[str, ...]:
    found = _split(values)
    bad = [v for v in found if not pattern.match(v)]
    if bad:
        raise BadParameter(f"{field} {bad[0]!r} is not {shape}", extra={"field": field})
    if len(found) > 100:
        raise InvalidInput(f"at most 100 values of {field}", extra={"field": field})
    return tuple(found)


def parse_region(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) not in (6, 9, 12):
        raise BadParameter(
            f"region {value!r} is not a 6-digit district, 9-digit street or 12-digit community code",
            extra={"field": "region"},
        )
    return value


def parse_grid(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) != 15:
        raise BadParameter(f"grid_code {value!r} is not a 15-digit unit grid code", extra={"field": "grid_code"})
    return value


def parse_time(value: str | None, field: str, *, end: bool = False) -> dt.datetime | None:
    """ISO 8601 date or date-time; without an offset it is local time. A bare date as the end of a range
    means the end of that day (the range is half-open: from ≤ received_at < to)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day, dt.time(), LOCAL_TZ)
            return start + dt.timedelta(days=1) if end else start
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise BadParameter(
            f"{field} {value!r} is not an ISO 8601 date (2026-03-01) or date-time (2026-03-01T08:00:00+08:00)",
            extra={"field": field},
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL_TZ)


def parse_q(value: str | None) -> str | None:
    if value is None:
        return None
    q = " ".join(value.split())
    if not Q_MIN <= len(q) <= Q_MAX:
        raise InvalidInput(
            f"q must be {Q_MIN} to {Q_MAX} characters (part of a description, address or case number); got {len(q)}",
            extra={"field": "q"},
        )
    return q


def _micros(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def encode_position(sort: repo.Sort, pos: repo.Position) -> str:
    key = "" if pos.key is None else str(_micros(pos.key))
    return encode_cursor(f"{sort.name}|{key}|{pos.id}")


def decode_position(cursor: str | None, sort: repo.Sort) -> repo.Position | None:
    key = decode_cursor(cursor)
    if key is None:
        return None
    parts = key.split("|")
    try:
        name, micros, ident = parts
        pos = repo.Position(key=_moment(int(micros)) if micros else None, id=int(ident))
    except (ValueError, OverflowError):
        raise InvalidInput("cursor is not one this API issued", extra={"field": "cursor"}) from None
    if name not in repo.SORTS:
        raise InvalidInput("cursor is not one this API issued", extra={"field": "cursor"})
    if name != sort.name:
        raise InvalidInput(
            f"this cursor belongs to sort={name}, not sort={sort.name}: keep the sort while paging",
            extra={"field": "cursor"},
        )
    if pos.key is None and not sort.nullable:
        raise InvalidInput("cursor is not one this API issued", extra={"field": "cursor"})
    return pos


def parse_sort(value: str | None) -> repo.Sort:
    name = (value or repo.DEFAULT_SORT).strip()
    sort = repo.SORTS.get(name)
    if sort is None:
        raise BadParameter(f"unknown sort {name!r}; one of {', '.join(repo.SORTS)}", extra={"field": "sort"})
    return sort


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """A checked list request."""

    filter: repo.CaseFilter
    sort: repo.Sort
    after: repo.Position | None
    limit: int

    def page(self, principal: Principal) -> repo.PageRequest:
        return repo.PageRequest(self.filter, principal, self.sort, self.after, self.limit)


def build_query(
    principal: Principal,
    settings: Settings,
    *,
    status: Sequence[str] | str | None = None,
    category_code: Sequence[str] | str | None = None,
    kind: str | None = None,
    urgency: Sequence[str] | str | None = None,
    unit_code: Sequence[str] | str | None = None,
    region: str | None = None,
    grid_code: str | None = None,
    bbox: str | None = None,
    reporter_id: int | None = None,
    mine: bool | None = None,
    overdue: bool | None = None,
    received_from: str | None = None,
    received_to: str | None = None,
    q: str | None = None,
    sort: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> CaseQuery:
    """Check every parameter: 400 for a malformed one (unknown status, sort, kind…), 422 for an unacceptable
    one (from after to, bad bbox, page size, cursor)."""
    if kind is not None and kind not in ("component", "event"):
        raise BadParameter(f"unknown kind {kind!r}; one of component, event", extra={"field": "kind"})
    if mine:
        if reporter_id is not None and reporter_id != principal.user_id:
            raise InvalidInput("mine=true and reporter_id name different reporters", extra={"field": "reporter_id"})
        reporter_id = principal.user_id
    start = parse_time(received_from, "received_from")
    end = parse_time(received_to, "received_to", end=True)
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"received_from {received_from} is after received_to {received_to}", extra={"field": "received_from"}
        )
    order = parse_sort(sort)
    flt = repo.CaseFilter(
        statuses=parse_statuses(status),
        category_codes=parse_codes(category_code, "category_code", _CATEGORY, "a class code such as C0101 or E0102"),
        kind=kind,
        urgencies=parse_enum(urgency, "urgency", URGENCIES),
        unit_codes=parse_codes(unit_code, "unit_code", _UNIT, "a unit code"),
        region=parse_region(region),
        grid_code=parse_grid(grid_code),
        bbox=parse_bbox(bbox, max_span_deg=settings.max_bbox_deg) if bbox else None,
        reporter_id=reporter_id,
        overdue=bool(overdue),
        received_from=start,
        received_to=end,
        q=parse_q(q),
    )
    return CaseQuery(
        filter=flt,
        sort=order,
        after=decode_position(cursor, order),
        limit=check_limit(limit, default=DEFAULT_LIMIT, maximum=MAX_LIMIT),
    )


# ---- reading (also used by other features) ----------------------------------------------------------------


@asynccontextmanager
async def _reading(pools: ListPools, principal: Principal, query: CaseQuery) -> AsyncIterator[Any]:
    """A connection of a list pool (`db.listpool`: the list's settings, first come first served) — of the pool of
    generic plans when the query's shape fits them (`generic_plan_fits`); a statement that runs out of time
    becomes a 422 that says how to narrow the search."""
    pool = pools.generic if repo.generic_plan_fits(query.filter, principal) else pools.custom
    try:
        async with pool.connection() as conn:
            yield conn
    except asyncpg.QueryCanceledError as exc:
        raise InvalidInput(
            "this search takes too long: narrow it with status, region, bbox or a received_from/received_to range",
            extra={"field": "q"} if query.filter.q else None,
        ) from exc


async def search(
    pools: ListPools, source: Source, principal: Principal, query: CaseQuery
) -> tuple[list[CaseRead], str | None]:
    """One page of cases in the principal's scope and the cursor of the next page (None on the last); the class
    dictionary, when it must be read, from `source`."""
    async with _reading(pools, principal, query) as conn:
        items, more = await repo.list_page(conn, source, query.page(principal))
    next_cursor = None
    if more and items:
        last = items[-1]
        key = getattr(last, query.sort.column)
        next_cursor = encode_position(query.sort, repo.Position(key=key, id=last.id))
    return items, next_cursor


async def search_encoded(
    pools: ListPools, source: Source, cache: EncodedCases, principal: Principal, query: CaseQuery
) -> tuple[msgspec.Raw, str | None]:
    """`search` with the cases as one encoded JSON array, from the process's cache where a case has not changed
    (`cases.encoded`)."""
    async with _reading(pools, principal, query) as conn:
        items, last = await repo.list_page_encoded(conn, source, cache, query.page(principal))
    return items, None if last is None else encode_position(query.sort, last)


@dataclass(frozen=True, slots=True)
class Queue:
    """A named set of cases the caller must act on: the first items, a capped count, how many are late."""

    name: str
    items: list[CaseRead]
    count: int
    overdue: int
    capped: bool


async def queue(
    conn: AsyncConnection,
    principal: Principal,
    name: str,
    *,
    statuses: Sequence[str] = (),
    overdue: bool = False,
    region: str | None = None,
    extra: Sequence[str] = (),
    extra_params: dict[str, Any] | None = None,
    items: int = 50,
    cap: int = 1000,
) -> Queue:
    """A task queue inside the principal's scope; `extra` are SQL conditions over `c` (cases)."""
    flt = repo.CaseFilter(
        statuses=tuple(statuses),
        overdue=overdue,
        region=region,
        extra=tuple(extra),
        extra_params=tuple((extra_params or {}).items()),
    )
    rows, count, late = await repo.queue(conn, flt, principal, items=items, cap=cap + 1)
    return Queue(name=name, items=rows, count=min(count, cap), overdue=min(late, cap), capped=count > cap)


async def changed_since(
    conn: AsyncConnection, principal: Principal, after: tuple[dt.datetime, int] | None, limit: int
) -> tuple[list[CaseRead], bool]:
    """Cases in scope whose (updated_at, id) is after `after`, oldest change first, and whether more follow."""
    return await repo.changed_since(conn, principal, after, limit)


async def db_now(conn: AsyncConnection) -> dt.datetime:
    """The database clock (the one `updated_at` is written with), as of this transaction's start."""
    return await repo.db_now(conn)


async def prepare(conn: AsyncConnection, timeout_ms: int) -> None:
    """Tune this transaction for list statements (custom plans, no parallel workers, a statement timeout)."""
    await repo.tune(conn, timeout_ms)


def as_features(items: list[CaseRead], next_cursor: str | None) -> FeatureCollection[CaseRead]:
    features = [
        Feature(id=str(case.id), geometry=Point(coordinates=[case.lon, case.lat]), properties=case) for case in items
    ]
    return FeatureCollection(features=features, next_cursor=next_cursor)


# ---- HTTP -------------------------------------------------------------------------------------------------

Multi = Annotated[list[str] | None, Parameter(description="repeat the parameter or give a comma-separated list")]
LIMIT = Annotated[int | None, Parameter(description=f"page size (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})")]
SORT = Annotated[
    str | None,
    Parameter(description="received_at, -received_at (default), deadline, -deadline, updated_at, -updated_at"),
]


async def provide_case_query(
    request: Request[Any, Any, Any],
    status: Multi = None,
    category_code: Multi = None,
    kind: Annotated[str | None, Parameter(description="component or event")] = None,
    urgency: Multi = None,
    unit_code: Multi = None,
    region: Annotated[str | None, Parameter(description="district (6), street (9) or community (12) code")] = None,
    grid_code: Annotated[str | None, Parameter(description="15-digit unit grid code")] = None,
    bbox: BBOX = None,
    reporter_id: Annotated[int | None, Parameter(description="cases reported by this user")] = None,
    mine: Annotated[bool | None, Parameter(description="true: cases I reported")] = None,
    overdue: Annotated[bool | None, Parameter(description="true: only cases past their deadline")] = None,
    received_from: Annotated[str | None, Parameter(description="ISO date or date-time, inclusive")] = None,
    received_to: Annotated[str | None, Parameter(description="ISO date or date-time, exclusive")] = None,
    q: Annotated[str | None, Parameter(description="text in description, address or case number")] = None,
    sort: SORT = None,
    cursor: CURSOR = None,
    limit: LIMIT = None,
) -> CaseQuery:
    """The checked parameters of a case list (the app's settings from its state: a second dependency beside this
    one would cost a task group per request)."""
    return build_query(
        holding(request), request.app.state.settings, status=status, category_code=category_code, kind=kind,
        urgency=urgency, unit_code=unit_code, region=region, grid_code=grid_code, bbox=bbox, reporter_id=reporter_id,
        mine=mine, overdue=overdue, received_from=received_from, received_to=received_to, q=q, sort=sort, cursor=cursor,
        limit=limit,
    )  # fmt: skip


CaseQueryDep = NamedDependency[CaseQuery]
"""A handler parameter `case_query: CaseQueryDep` receives the checked list parameters."""

LIST_DESCRIPTION = (
    "Cases in your scope. Filters combine with AND; a list parameter (status, category_code, urgency, unit_code)"
    " matches any of its values. `region` is a 6-digit district, 9-digit street or 12-digit community code."
    " `overdue=true`: a running clock past its deadline. `received_from` ≤ received_at < `received_to` (ISO 8601;"
    " without an offset: Asia/Shanghai; a bare date as `received_to` includes that day). `q` searches description,"
    " address and case number (2–50 characters). Pages: pass `next_cursor` back as `cursor` with the same filters"
    " and sort; there is no total count."
)


# Plain handlers, not a Controller: `POST /api/v1/cases` (intake) is in a Controller on the same path, and Litestar
# 2 refuses two Controllers on one path (each brings its own OPTIONS handler). Register these after it (app.py).
@get(
    "/api/v1/cases",
    summary="List cases in your scope",
    description=LIST_DESCRIPTION + " `format=geojson` answers a FeatureCollection of points, as `/cases.geojson`.",
    dependencies={"case_query": Provide(provide_case_query)},
    tags=["cases"],
    responses=responses(400, 401, 422),
)
async def list_cases(
    request: Request[Any, Any, Any],
    case_query: CaseQueryDep,
    format_: Annotated[
        Literal["json", "geojson"], QueryParameter(name="format", description="json (default) or geojson")
    ] = "json",
) -> ItemPage[CaseRead] | FeatureCollection[CaseRead]:
    state = request.app.state
    if format_ == "geojson":
        return as_features(*await search(state.list_pools, state.engine, current(request), case_query))
    items, next_cursor = await search_encoded(
        state.list_pools, state.engine, state.case_cache, current(request), case_query
    )
    # the items are a JSON array of CaseRead encoded ahead (msgspec.Raw); the annotation documents them
    return ItemPage(items=cast(list[CaseRead], items), next_cursor=next_cursor)


@get(
    "/api/v1/cases.geojson",
    summary="List cases in your scope as GeoJSON points",
    description=LIST_DESCRIPTION + " Each feature's `properties` are the case; its `id` the case id.",
    dependencies={"case_query": Provide(provide_case_query)},
    tags=["cases"],
    responses=responses(400, 401, 422),
)
async def list_cases_geojson(request: Request[Any, Any, Any], case_query: CaseQueryDep) -> FeatureCollection[CaseRead]:
    state = request.app.state
    return as_features(*await search(state.list_pools, state.engine, current(request), case_query))


CASE_LIST_ROUTES: list[HTTPRouteHandler] = [list_cases, list_cases_geojson]
"""The case list handlers; app.py registers them after the controllers (see above)."""
