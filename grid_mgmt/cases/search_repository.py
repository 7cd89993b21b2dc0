"""SQL of the case lists: filters, keyset pages over an index, task queues and the delta-sync walk.

Every statement ANDs the caller's data scope (`scope_sql`). Nothing here counts the whole table: pages are
keyset (`ORDER BY <key>, id LIMIT n + 1`), queue counts stop at a cap.

Index use (migration 0002):
- newest/oldest first (`received_at`) with or without a status filter: one branch per status over
  `ix_cases_status_received (status, received_at)`, merged by a UNION ALL whose branches each stop after a page;
  PostgreSQL 15 cannot read one btree in order across several values of its leading column, so without this a
  status list (or no status at all) would fetch and sort every matching row (a reporter's or a grid's cases
  without a status filter read `ix_cases_reporter` / `ix_cases_grid` in order instead);
- bbox: `geom && envelope` (and x, y within it) in a branch per status (every status without a status filter) → the
  status's partial GiST index `ix_cases_geom_<status>` (`db.models.case.GEOM_INDEXES`), in any order;
- overdue: `deadline < now() AND closed_at IS NULL AND cancelled_at IS NULL` → the partial `ix_cases_deadline_open`;
- `updated_at` order and the sync walk: `ix_cases_updated (updated_at, id)`;
- unit, grid, reporter filters: their composite indexes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.cases.encoded import ROW_SQL, EncodedCases
from grid_mgmt.cases.lifecycle import TERMINAL, Status
from grid_mgmt.cases.repository import CASE_SELECT, scope_sql, to_cases
from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.db.listpool import list_settings
from grid_mgmt.db.models.case import status_among
from grid_mgmt.db.models.category import KIND_LETTERS
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.sql import Source, statement_of, text


@dataclass(frozen=True, slots=True)
class Sort:
    """An order of the list: the column, its direction, whether it can be NULL (sorted last either way)."""

    name: str
    column: str
    descending: bool
    nullable: bool = False


SORTS: dict[str, Sort] = {
    s.name: s
    for s in (
        Sort("received_at", "received_at", descending=False),
        Sort("-received_at", "received_at", descending=True),
        Sort("deadline", "deadline", descending=False, nullable=True),
        Sort("-deadline", "deadline", descending=True, nullable=True),
        Sort("updated_at", "updated_at", descending=False),
        Sort("-updated_at", "updated_at", descending=True),
    )
}
DEFAULT_SORT = "-received_at"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the sort key (None for a NULL deadline) and the case id."""

    key: dt.datetime | None
    id: int


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """Checked list filters; empty tuples and None do not apply."""

    statuses: tuple[str, ...] = ()
    category_codes: tuple[str, ...] = ()
    kind: str | None = None
    urgencies: tuple[str, ...] = ()
    unit_codes: tuple[str, ...] = ()
    region: str | None = None
    grid_code: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    reporter_id: int | None = None
    overdue: bool = False
    """Only cases whose running clock has passed its deadline."""
    received_from: dt.datetime | None = None
    received_to: dt.datetime | None = None
    q: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)
    """Further SQL conditions over `c` (task queues), with their parameters in `extra_params`."""
    extra_params: tuple[tuple[str, Any], ...] = ()


OVERDUE_SQL = "c.deadline < now() AND c.closed_at IS NULL AND c.cancelled_at IS NULL AND c.paused_at IS NULL"
"""A running clock past its deadline. `deadline` is NULL once the clock stops (CaseService); a paused (shelved)
case is not late; `closed_at IS NULL AND cancelled_at IS NULL` is the predicate of the partial index
`ix_cases_deadline_open`, spelled as in the migration so the planner can use it."""

_REGION_COLUMN = {6: "district_code", 9: "street_code", 12: "community_code"}


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filter_sql(flt: CaseFilter, principal: Principal) -> tuple[list[str], dict[str, Any]]:
    """The WHERE conditions (over `c` = cases) of a filter inside the principal's scope."""
    scope, params = scope_sql(principal)
    where = [scope] if scope != "TRUE" else []
    if flt.category_codes:
        where.append("c.category_code = ANY(:f_categories)")
        params["f_categories"] = list(flt.category_codes)
    if flt.kind is not None:
        where.append("left(c.category_code, 1) = :f_kind")  # the class's kind is its code's letter
        params["f_kind"] = KIND_LETTERS[flt.kind]
    if flt.urgencies:
        where.append("c.urgency = ANY(:f_urgencies)")
        params["f_urgencies"] = list(flt.urgencies)
    if flt.unit_codes:
        where.append("c.unit_code = ANY(:f_units)")
        params["f_units"] = list(flt.unit_codes)
    if flt.region is not None:
        where.append(f"c.{_REGION_COLUMN[len(flt.region)]} = :f_region")
        params["f_region"] = flt.region
    if flt.grid_code is not None:
        where.append("c.grid_code = :f_grid")
        params["f_grid"] = flt.grid_code
    if flt.bbox is not None:
        # geom is a POINT: in the box when its x and y are (edges included, as ST_Intersects), a cheaper exact test
        # than ST_Intersects with a polygon (the list statement: 40 µs less per page); && reads the GiST index
        where.append(
            "c.geom && ST_MakeEnvelope(:f_minx, :f_miny, :f_maxx, :f_maxy, 4326)"
            " AND ST_X(c.geom) BETWEEN :f_minx AND :f_maxx AND ST_Y(c.geom) BETWEEN :f_miny AND :f_maxy"
        )
        params.update(f_minx=flt.bbox[0], f_miny=flt.bbox[1], f_maxx=flt.bbox[2], f_maxy=flt.bbox[3])
    if flt.reporter_id is not None:
        where.append("c.reporter_id = :f_reporter")
        params["f_reporter"] = flt.reporter_id
    if flt.overdue:
        where.append(OVERDUE_SQL)
    if flt.received_from is not None:
        where.append("c.received_at >= :f_from")
        params["f_from"] = flt.received_from
    if flt.received_to is not None:
        where.append("c.received_at < :f_to")
        params["f_to"] = flt.received_to
    if flt.q is not None:
        where.append("(c.description ILIKE :f_q OR c.address ILIKE :f_q OR c.case_no ILIKE :f_q)")
        params["f_q"] = _like(flt.q)
    where.extend(flt.extra)
    params.update(dict(flt.extra_params))
    return where, params


def _order(sort: Sort, alias: str = "c") -> str:
    direction = "DESC" if sort.descending else "ASC"
    nulls = " NULLS LAST" if sort.nullable else ""
    return f"{alias}.{sort.column} {direction}{nulls}, {alias}.id {direction}"


def _after(sort: Sort, after: Position, params: dict[str, Any]) -> str:
    """Rows strictly after `after` in `sort` order (NULL keys come last in both directions)."""
    col = f"c.{sort.column}"
    op = "<" if sort.descending else ">"
    params["after_id"] = after.id
    if after.key is None:  # inside the NULL tail: only the id moves
        return f"{col} IS NULL AND c.id {op} :after_id"
    params["after_key"] = after.key
    # The row comparison is exact; the single-column bound lets a (…, key) btree start at the right place.
    cond = f"{col} {op}= :after_key AND ({col}, c.id) {op} (:after_key, :after_id)"
    if sort.nullable:
        cond = f"(({cond}) OR {col} IS NULL)"
    return cond


ALL_STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page of a list: the checked filter, whose scope it is read in, the order, where the previous page
    ended, and the page's size."""

    flt: CaseFilter
    principal: Principal
    sort: Sort
    after: Position | None
    limit: int


def list_sql(page: PageRequest, select: str = CASE_SELECT) -> tuple[str, dict[str, Any]]:
    """The statement of one page (limit + 1 rows, to tell whether there is more) and its parameters; `select` is
    what it reads of each case (`SELECT … FROM cases c`: the whole case, or `refs_select`)."""
    flt, sort, after, limit = page.flt, page.sort, page.after, page.limit
    where, params = filter_sql(flt, page.principal)
    if after is not None:
        where.append(_after(sort, after, params))
    params["limit"] = limit + 1
    order = _order(sort)
    statuses = list(flt.statuses)
    by_status = statuses or (flt.reporter_id is None and flt.grid_code is None)
    in_order = sort.column == "received_at" and not flt.overdue and by_status
    if flt.bbox is None and not in_order:
        # without a box: deadline / updated_at orders, the overdue list (partial deadline index), and a reporter's
        # or a grid's cases without a status filter ((reporter_id, received_at) / (grid_code, received_at)): one
        # statement
        if statuses:
            where.append("c.status = ANY(:f_statuses)")
            params["f_statuses"] = statuses
        sql = select + _where(where) + f" ORDER BY {order} LIMIT :limit"
        return sql, params
    # a branch per status, each stopping after a page: in received_at order over (status, received_at); a box
    # over the status's own GiST index (`ix_cases_geom_<status>`, which a list of statuses could not name)
    # The status is written in, not bound: planning with the literal proves the partial index's predicate at once
    # (measured: the list statement's PostgreSQL CPU 480–560 → 390 µs per page); statuses are checked names.
    branches = []
    for status in statuses or ALL_STATUSES:
        branch_where = [status_among((status,)), *where]  # checked: an unknown status raises ValueError
        branches.append(f"({select}{_where(branch_where)} ORDER BY {order} LIMIT :limit)")
    if len(branches) == 1:
        return branches[0][1:-1], params
    sql = f"SELECT * FROM ({' UNION ALL '.join(branches)}) u ORDER BY {_order(sort, 'u')} LIMIT :limit"
    return sql, params


GENERIC_BOX_DEG = 0.05
"""The widest and highest box (degrees, about 5 km) a list may plan generically (`generic_plan_fits`)."""

ENDED_STATUSES = frozenset(str(s) for s in {*TERMINAL, Status.MERGED})
"""Statuses cases stay in for good: their numbers grow without bound, so even a small box of them is planned with
its values (PostgreSQL may then read them in order of the sort instead)."""


def generic_plan_fits(flt: CaseFilter, principal: Principal) -> bool:
    """Whether a page's statement has one best plan whatever its values, so that it may be planned once per
    connection (`db.listpool.ListPools.generic`; planning a page cost PostgreSQL ~180 µs of ~550): a small box of
    cases in open statuses, by statuses, classes, kind and urgency only, read by a role whose scope is its district or
    everything. Each status's branch then reads the status's GiST index over the box (`ix_cases_geom_<status>`)
    and sorts what the box holds; no other index could serve it better. Anything else (other filters, the scopes
    of units and workers, which other indexes serve) is planned with its values."""
    box = flt.bbox
    if box is None or not flt.statuses or ENDED_STATUSES.intersection(flt.statuses):
        return False
    if box[2] - box[0] > GENERIC_BOX_DEG or box[3] - box[1] > GENERIC_BOX_DEG:
        return False
    others = (flt.unit_codes, flt.region, flt.grid_code, flt.reporter_id is not None, flt.overdue,
              flt.received_from, flt.received_to, flt.q, flt.extra)  # fmt: skip
    if any(others):
        return False
    return principal.sees_all or not principal.roles & {"unit_staff", "worker"}


def _where(conditions: Sequence[str]) -> str:
    return (" WHERE " + " AND ".join(f"({w})" for w in conditions)) if conditions else ""


async def tune(conn: AsyncConnection, timeout_ms: int) -> None:
    """`db.listpool.list_settings` for the list statements of this transaction (SET LOCAL), on a connection of the
    main engine (the task queues read in the transaction of their other statements)."""
    wanted = list_settings(timeout_ms)
    calls = ", ".join(f"set_config('{name}', :{name}, true)" for name in wanted)
    await conn.execute(text(f"SELECT {calls}"), wanted)


async def list_page(driver: Any, source: Source, page: PageRequest) -> tuple[list[CaseRead], bool]:
    """One page of cases and whether more follow, read on `driver` (an asyncpg connection of a list pool);
    the class dictionary comes from `source` when it must be read."""
    rows = await _fetch(driver, *list_sql(page))
    return await to_cases(source, rows[: page.limit], page.principal.roles), len(rows) > page.limit


async def _fetch(driver: Any, sql: str, params: dict[str, Any]) -> list[Any]:
    stmt = statement_of(sql)
    rows: list[Any] = await driver.fetch(stmt.positional, *stmt.args(params))
    return rows


def refs_select(sort: Sort) -> str:
    """What a page of references reads of each case: id, row version and the sort key (for the next cursor)."""
    return f"SELECT c.id, c.row_version, c.{sort.column} FROM cases c"


async def list_page_encoded(
    driver: Any, source: Source, cache: EncodedCases, page: PageRequest
) -> tuple[msgspec.Raw, Position | None]:
    """One page of cases as a JSON array (`cases.encoded`) and where it ends when more follow: the page's
    references in one statement, the cases the cache lacks (at their row version) in a second."""
    refs = await _fetch(driver, *list_sql(page, refs_select(page.sort)))
    limit = page.limit
    last = Position(key=refs[limit - 1][2], id=refs[limit - 1][0]) if len(refs) > limit else None
    refs = refs[:limit]
    await cache.check_classes(source)
    found, missing = cache.lookup(refs)
    if missing:
        scope, scope_params = scope_sql(page.principal)  # again: a case may have left the scope since the first read
        rows = await _fetch(driver, f"{ROW_SQL} WHERE c.id = ANY(:ids) AND {scope}", {**scope_params, "ids": missing})
        await cache.check_classes(source, rows)
        added = cache.add(rows)
        found = [e if e is not None else added.get(r[0]) for r, e in zip(refs, found, strict=True)]
    return cache.page(found, page.principal.roles), last


async def explain(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> str:
    """EXPLAIN of a statement (tests and benchmarks check the plan uses indexes)."""
    rows = (await conn.execute(text("EXPLAIN " + sql), params)).all()
    return "\n".join(str(r[0]) for r in rows)


# ---- task queues ------------------------------------------------------------------------------------------


async def queue(
    conn: AsyncConnection, flt: CaseFilter, principal: Principal, *, items: int, cap: int
) -> tuple[list[CaseRead], int, int]:
    """A task queue: its first `items` cases (earliest deadline first, so overdue first), how many there are and
    how many of them are overdue — both counted up to `cap` (a bounded scan, never the whole table)."""
    where, params = filter_sql(flt, principal)
    if flt.statuses:
        where.append("c.status = ANY(:f_statuses)")
        params["f_statuses"] = list(flt.statuses)
    cond = _where(where)
    sql = CASE_SELECT + cond + " ORDER BY c.deadline ASC NULLS LAST, c.received_at, c.id LIMIT :items"
    rows = (await conn.execute(text(sql), {**params, "items": items})).all()
    count_sql = (
        "SELECT count(*) AS n, count(*) FILTER (WHERE late) AS late FROM ("
        " SELECT c.deadline < now() AS late FROM cases c"
        f"{cond} LIMIT :cap) x"
    )
    counted = (await conn.execute(text(count_sql), {**params, "cap": cap})).one()
    return await to_cases(conn, rows, principal.roles), int(counted.n), int(counted.late)


# ---- delta sync -------------------------------------------------------------------------------------------


async def changed_since(
    conn: AsyncConnection, principal: Principal, after: tuple[dt.datetime, int] | None, limit: int
) -> tuple[list[CaseRead], bool]:
    """Cases in the principal's scope changed after `after` = (updated_at, id), in (updated_at, id) order."""
    scope, params = scope_sql(principal)
    where = [scope] if scope != "TRUE" else []
    if after is not None:
        where.append("c.updated_at >= :after_ts AND (c.updated_at, c.id) > (:after_ts, :after_id)")
        params.update(after_ts=after[0], after_id=after[1])
    sql = CASE_SELECT + _where(where) + " ORDER BY c.updated_at, c.id LIMIT :limit"
    rows = (await conn.execute(text(sql), {**params, "limit": limit + 1})).all()
    return await to_cases(conn, rows[:limit], principal.roles), len(rows) > limit


async def db_now(conn: AsyncConnection) -> dt.datetime:
    """The database's transaction time (the clock `updated_at` is written with)."""
    value = await conn.scalar(text("SELECT now()"))
    assert isinstance(value, dt.datetime)
    return value
