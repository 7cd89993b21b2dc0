"""SQL of the citizens' side: public classes, the report and contact rows, the public view, nearby reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.lib.sql import text

# Statements of the hot path are built once (text() parses its bind parameters with a regex on every call).

_CLASSES = text("""
SELECT code, name, name_en, kind, left(code, 3) AS major, major_name, duplicate_radius_m
FROM category WHERE public AND active ORDER BY code
""")


async def public_classes(conn: AsyncConnection) -> list[Any]:
    """The classes citizens may report (public and active), by code."""
    return list((await conn.execute(_CLASSES)).all())


# Citizens' reports and their contacts, many in one statement; a report whose tracking code is taken already (one in
# 10^15) inserts nothing and the caller draws another code for it.
_FILE = text("""
WITH r AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        case_id bigint, code text, token_sha256 text, channel text, api_key_id bigint, client text, attributes jsonb,
        phone text, email text, name text, created_at timestamptz, retention_days int)
), pr AS (
    INSERT INTO public_report (case_id, tracking_code, token_sha256, channel, api_key_id, client_address, attributes,
                               created_at)
    SELECT case_id, code, token_sha256, channel, api_key_id, left(client, 64), attributes, created_at
    FROM r ORDER BY case_id
    ON CONFLICT (tracking_code) DO NOTHING
    RETURNING case_id
), cc AS (
    INSERT INTO case_contact (case_id, phone, email, name, consent_at, purge_after)
    SELECT r.case_id, r.phone, r.email, r.name, r.created_at, r.created_at + make_interval(days => r.retention_days)
    FROM pr JOIN r ON r.case_id = pr.case_id
    WHERE r.phone IS NOT NULL OR r.email IS NOT NULL
)
SELECT case_id FROM pr
""")


async def file_reports(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[int]:
    """Insert public reports (keys: case_id, code, token_sha256, channel, api_key_id, client, attributes, phone,
    email, name, created_at, retention_days) with their contacts; the case ids written (a taken code is missing)."""
    result = await conn.execute(_FILE, {"rows": msgspec.json.encode(rows).decode()})
    return {int(r.case_id) for r in result}


_REPORT = text("""
SELECT pr.case_id, pr.tracking_code, pr.token_sha256, pr.rating, pr.rated_at, c.status, c.version, c.case_no,
       c.category_code, cat.name AS category_name, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.address,
       c.grid_code, com.name AS community, st.name AS street, c.received_at, c.closed_at, c.description,
       (SELECT coalesce(json_agg(json_build_array(a.action, a.at) ORDER BY a.seq), '[]')
        FROM case_activity a WHERE a.case_id = c.id) AS activities
FROM public_report pr
JOIN cases c ON c.id = pr.case_id
JOIN category cat ON cat.code = c.category_code
LEFT JOIN region com ON com.code = c.community_code
LEFT JOIN region st ON st.code = c.street_code
WHERE pr.tracking_code = :code
""")


async def report(conn: AsyncConnection, code: str) -> Any:
    """A citizen's report with its case, place and timeline actions (None for an unknown code)."""
    return (await conn.execute(_REPORT, {"code": code})).first()


_OWN = text("""
SELECT (SELECT json_build_object('phone', phone, 'email', email, 'name', name, 'consent_at', consent_at,
                                 'purge_after', purge_after)
        FROM case_contact WHERE case_id = :id) AS contact,
       (SELECT coalesce(json_agg(json_build_object('id', id, 'content_type', content_type, 'size_bytes', size_bytes,
                                                   'created_at', created_at) ORDER BY id), '[]')
        FROM attachment WHERE case_id = :id AND kind = 'report' AND uploader_id IS NULL) AS photos,
       (SELECT coalesce(json_agg(json_build_object('text', note, 'at', at) ORDER BY seq), '[]')
        FROM case_activity WHERE case_id = :id AND action = :comment) AS comments
""")


async def own(conn: AsyncConnection, case_id: int, comment_action: str) -> Any:
    """The citizen's own contact, photos and comments of a report (JSON columns)."""
    return (await conn.execute(_OWN, {"id": case_id, "comment": comment_action})).one()


async def own_photo(conn: AsyncConnection, case_id: int, attachment_id: int) -> Any:
    """A photo the citizen sent with (or after) the report, or None."""
    sql = """
    SELECT storage_key, content_type, sha256 FROM attachment
    WHERE id = :aid AND case_id = :id AND kind = 'report' AND uploader_id IS NULL
    """
    return (await conn.execute(text(sql), {"aid": attachment_id, "id": case_id})).first()


async def contact(conn: AsyncConnection, case_id: int) -> Any:
    sql = "SELECT phone, email, name, consent_at, purge_after FROM case_contact WHERE case_id = :id"
    return (await conn.execute(text(sql), {"id": case_id})).first()


async def lock_case(conn: AsyncConnection, case_id: int) -> str | None:
    """Lock the case row for a timeline append (as a transition does); its status."""
    status = await conn.scalar(text("SELECT status FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id})
    return str(status) if status is not None else None


async def append_citizen_row(
    conn: AsyncConnection, case_id: int, status: str, action: str, note: str | None, payload: dict[str, Any]
) -> int:
    """A timeline row of the citizen that changes nothing (a comment, photos); the case row is locked first."""
    sql = """
    INSERT INTO case_activity (case_id, seq, action, from_status, to_status, actor_id, actor_role, note, payload, at)
    VALUES (:id, (SELECT coalesce(max(seq), 0) + 1 FROM case_activity WHERE case_id = :id), :action, :status,
            :status, NULL, 'citizen', :note, CAST(:payload AS jsonb), now())
    RETURNING id
    """
    params = {"id": case_id, "action": action, "status": status, "note": note,
              "payload": msgspec.json.encode(payload).decode()}  # fmt: skip
    return int((await conn.execute(text(sql), params)).scalar_one())


async def rate(conn: AsyncConnection, case_id: int, score: int, comment: str | None) -> dt.datetime | None:
    """Store the rating if the case is closed and not rated yet (one statement: two raters, one wins)."""
    sql = """
    UPDATE public_report pr SET rating = :score, rating_comment = :comment, rated_at = now()
    FROM cases c
    WHERE pr.case_id = :id AND c.id = pr.case_id AND c.status = 'closed' AND pr.rating IS NULL
    RETURNING pr.rated_at
    """
    rated: dt.datetime | None = (
        await conn.execute(text(sql), {"id": case_id, "score": score, "comment": comment})
    ).scalar()
    return rated


async def count_reopen(conn: AsyncConnection, case_id: int) -> None:
    await conn.execute(
        text("UPDATE public_report SET reopen_count = reopen_count + 1 WHERE case_id = :id"), {"id": case_id}
    )


# Open cases of a class near a point, nearest first, through ix_cases_category_geog (category, geom::geography).
_NEARBY = text("""
SELECT c.case_no, c.status, c.category_code, cat.name AS category_name, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
       pr.tracking_code, ST_Distance(c.geom::geography, here.g) AS distance_m, c.received_at
FROM cases c
JOIN category cat ON cat.code = c.category_code
LEFT JOIN public_report pr ON pr.case_id = c.id
CROSS JOIN (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g) here
WHERE c.category_code = :category AND c.status <> ALL(:closed)
  AND ST_DWithin(c.geom::geography, here.g, :radius)
ORDER BY distance_m, c.id
LIMIT :limit
""")


async def nearby(
    conn: AsyncConnection, *, category: str, lon: float, lat: float, radius_m: float, closed: list[str], limit: int
) -> list[Any]:
    params = {"category": category, "lon": lon, "lat": lat, "radius": radius_m, "closed": closed, "limit": limit}
    return list((await conn.execute(_NEARBY, params)).all())
