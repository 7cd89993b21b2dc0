"""SQL of Open311: services from the class dictionary, service requests, tokens, api keys.

A page of requests is one prepared asyncpg statement (the hot path; no ORM, no transaction): the newest cases of
public classes in the window, read through `ix_cases_received` (or `ix_cases_updated` for `updated_after`) in index
order with no sort, joined to their class and unit, one column per field of the answer in the answer's order; the
service turns each row into a struct and msgspec writes the JSON. (Building the JSON in PostgreSQL was measured
too: `json_agg` of 1,000 rows cost the database about twice what the rows cost the API process to encode.)
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.cases.repository import public_codes
from grid_mgmt.db.models.case import status_among
from grid_mgmt.lib.sql import driver_connection, text
from grid_mgmt.open311.rules import CLOSED, NOTES, OPEN, STATUS_NOTES, RequestQuery


def _lit(value: str) -> str:
    """A constant of our own as an SQL string literal (never client input: that is always a bound parameter)."""
    return "'" + value.replace("'", "''") + "'"


def _ts(column: str) -> str:
    """A timestamp to the second (written as ISO 8601 in UTC: 2026-03-01T00:00:00Z)."""
    return f"date_trunc('second', {column})"


def _coordinate(expression: str) -> str:
    """A coordinate to 6 decimals (≈ 0.1 m)."""
    return f"round({expression} * 1e6) / 1e6"


_CLOSED = ", ".join(map(_lit, CLOSED))
_STATUS_NOTES = "CASE r.status " + " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in STATUS_NOTES.items()) + " END"
_NOTE_TYPE = "CASE a.action " + " ".join(f"WHEN {_lit(k)} THEN {_lit(t)}" for k, (t, _, _) in NOTES.items()) + " END"
_NOTE_SUMMARY = (
    "CASE a.action "
    + " ".join(
        f"WHEN {_lit(k)} THEN {_lit(s)}" + (" || coalesce(' ' || au.name, '')" if agency else "")
        for k, (_, s, agency) in NOTES.items()
    )
    + " END"
)

REQUEST_COLUMNS = f"""
    r.case_no, CASE WHEN r.status IN ({_CLOSED}) THEN 'closed' ELSE 'open' END, {_STATUS_NOTES}, k.name,
    r.category_code, r.description, u.name, NULL::text, {_ts("r.received_at")}, {_ts("r.updated_at")},
    {_ts("r.deadline")}, r.address, NULL::text, NULL::text, {_coordinate("ST_Y(r.geom)")},
    {_coordinate("ST_X(r.geom)")}, NULL::text"""
"""The fields of a service request (schemas.ServiceRequestRead, in its order) over `r` (the case), `k`, `u`."""

EXTENSION_COLUMNS = f""",
    r.status, r.stage, r.urgency, r.source, k.major_name,
    coalesce(r.deadline < now() AND r.paused_at IS NULL AND r.status NOT IN ({_CLOSED}), false),
    {_ts(f"CASE WHEN r.status IN ({_CLOSED}) THEN coalesce(r.closed_at, r.updated_at) END")},
    (SELECT coalesce(json_agg(n), '[]'::json)::text FROM (
        SELECT {_ts("a.at")} AS "datetime", {_NOTE_TYPE} AS "type", {_NOTE_SUMMARY} AS "summary"
        FROM case_activity a LEFT JOIN unit au ON au.code = coalesce(a.payload->>'unit_code', a.unit_code)
        WHERE a.case_id = r.id AND a.action IN ({", ".join(map(_lit, NOTES))})
        ORDER BY a.seq
    ) n)"""
"""What `extensions=true` adds (schemas.ExtendedAttributesRead in its order, then the notes as JSON text)."""


def _public(codes: list[str]) -> str:
    """The cases Open311 shows: of classes citizens may report (`codes`), whatever their source, except merged
    duplicates. The codes are written into the statement (our dictionary's own codes, quoted), not bound: a constant
    list of nine or more is looked up by hash, a bound one or `ANY(ARRAY(SELECT …))` is compared one by one with the
    collation for every row read (measured: 1.1 ms of a 5 ms statement for 1,000 requests)."""
    listed = ", ".join(map(_lit, codes))
    return f"c.category_code = ANY(ARRAY[{listed}]::text[]) AND c.status <> 'merged'"


def degrees_around(lat: float, radius_m: float) -> tuple[float, float]:
    """Half the width and height in degrees of a box that surely holds a circle of `radius_m` at latitude `lat`."""
    margin = 1.01 * radius_m + 1.0
    return margin / (111_320.0 * max(math.cos(math.radians(lat)), 0.01)), margin / 110_574.0


def requests_sql(q: RequestQuery, public_codes: list[str]) -> tuple[str, list[Any]]:
    """The statement answering one page of `GET requests` (asyncpg's $n parameters) over the public classes
    `public_codes`, and its arguments."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = [_public(public_codes)]
    if q.ids:  # the spec: ids override every other parameter
        where.append(f"c.case_no = ANY({arg(list(q.ids))}::text[])")
    else:
        if q.start is not None:
            where.append(f"c.received_at >= {arg(q.start)}")
        if q.end is not None:
            where.append(f"c.received_at < {arg(q.end)}")
        if q.updated_after is not None:
            where.append(f"c.updated_at > {arg(q.updated_after)}")
        if q.codes:
            where.append(f"c.category_code = ANY({arg(list(q.codes))}::text[])")
        if q.bbox is not None or q.where is not None:  # through the GiST index of each status
            where.append(status_among(q.statuses or (*OPEN, *CLOSED)))
        elif q.statuses:
            where.append(f"c.status = ANY({arg(list(q.statuses))}::text[])")
        if q.where is not None and q.radius_m is not None:
            # a box in degrees that holds the circle (through the statuses' geom indexes), then metres exactly
            lon, lat = q.where
            centre = f"ST_SetSRID(ST_MakePoint({arg(lon)}, {arg(lat)}), 4326)"
            dx, dy = degrees_around(lat, q.radius_m)
            where.append(f"c.geom && ST_Expand({centre}, {arg(dx)}, {arg(dy)})")
            where.append(f"ST_DWithin(c.geom::geography, {centre}::geography, {arg(q.radius_m)})")
        if q.bbox is not None:
            where.append(f"ST_Intersects(c.geom, ST_MakeEnvelope({', '.join(map(arg, q.bbox))}, 4326))")
    order = "updated_at" if q.updated_after is not None and q.start is None else "received_at"
    sql = f"""
SELECT {REQUEST_COLUMNS}{EXTENSION_COLUMNS if q.extensions else ""}
FROM (
    SELECT c.id, c.case_no, c.status, c.stage, c.urgency, c.source, c.category_code, c.description, c.received_at,
           c.updated_at, c.deadline, c.paused_at, c.closed_at, c.address, c.geom, c.unit_code
    FROM cases c
    WHERE {" AND ".join(where)}
    ORDER BY c.{order} DESC, c.id DESC
    LIMIT {arg(q.page_size)} OFFSET {arg((q.page - 1) * q.page_size)}
) r
JOIN category k ON k.code = r.category_code
LEFT JOIN unit u ON u.code = r.unit_code
ORDER BY r.{order} DESC, r.id DESC"""
    return sql, args


async def request_rows(conn: AsyncConnection, q: RequestQuery) -> list[Any]:
    """One page of service requests as asyncpg records (columns: REQUEST_COLUMNS, then EXTENSION_COLUMNS)."""
    sql, args = requests_sql(q, await public_codes(conn))
    return list(await (await driver_connection(conn)).fetch(sql, *args))


async def public_classes(conn: AsyncConnection) -> list[Any]:
    """The classes citizens may report (active ones), by code."""
    return list(
        (
            await conn.execute(
                text(
                    "SELECT code, name, name_en, major_name, register_criteria, open311_attributes FROM category"
                    " WHERE public AND active ORDER BY code"
                )
            )
        ).all()
    )


async def category(conn: AsyncConnection, code: str) -> Any:
    """A class by code with what Open311 needs to know of it (None when unknown)."""
    sql = "SELECT code, name, public, active, open311_attributes FROM category WHERE code = :code"
    return (await conn.execute(text(sql), {"code": code})).one_or_none()


async def changeset(conn: AsyncConnection) -> Any:
    """When the class dictionary last changed (None when empty)."""
    return (await conn.execute(text("SELECT date_trunc('second', max(updated_at)) FROM category"))).scalar_one()


async def token(conn: AsyncConnection, tracking_code: str) -> Any:
    """The case behind a tracking code, and the case it was merged into (None when unknown or not public)."""
    sql = """
SELECT c.case_no, c.status, d.case_no AS merged_into
FROM public_report p
JOIN cases c ON c.id = p.case_id
JOIN category k ON k.code = c.category_code AND k.public
LEFT JOIN cases d ON d.id = c.duplicate_of
WHERE p.tracking_code = :code"""
    return (await conn.execute(text(sql), {"code": tracking_code})).one_or_none()


# ---- api keys -------------------------------------------------------------------------------------------------

_KEY_COLUMNS = "id, name, key_prefix, active, created_at, last_used_at"


async def insert_key(conn: AsyncConnection, name: str, digest: str, prefix: str) -> Any:
    sql = (
        "INSERT INTO open311_key (name, key_sha256, key_prefix) VALUES (:name, :digest, :prefix)"
        f" RETURNING {_KEY_COLUMNS}"
    )
    return (await conn.execute(text(sql), {"name": name, "digest": digest, "prefix": prefix})).one()


async def list_keys(conn: AsyncConnection, after: int | None, limit: int) -> list[Any]:
    sql = f"SELECT {_KEY_COLUMNS} FROM open311_key WHERE id > :after ORDER BY id LIMIT :limit"
    return list((await conn.execute(text(sql), {"after": after or 0, "limit": limit})).all())


async def keys_named(conn: AsyncConnection, name: str) -> list[Any]:
    sql = f"SELECT {_KEY_COLUMNS} FROM open311_key WHERE name = :name ORDER BY id"
    return list((await conn.execute(text(sql), {"name": name})).all())


async def revoke_key(conn: AsyncConnection, key_id: int) -> Any:
    sql = f"UPDATE open311_key SET active = false WHERE id = :id RETURNING {_KEY_COLUMNS}"
    return (await conn.execute(text(sql), {"id": key_id})).one_or_none()


async def use_key(conn: AsyncConnection, digest: str) -> Any:
    """The key with this sha256 (id, active); an active key's `last_used_at` becomes now."""
    sql = """
UPDATE open311_key SET last_used_at = CASE WHEN active THEN now() ELSE last_used_at END
WHERE key_sha256 = :digest RETURNING id, active"""
    return (await conn.execute(text(sql), {"digest": digest})).one_or_none()
