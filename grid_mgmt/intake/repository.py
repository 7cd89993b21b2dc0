"""SQL of intake: what a report of a component needs to know in one round trip, stored answers, photos."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.lib.sql import Source, connected, text

# What a report of a component or a component class needs from the database, in one round trip: the named
# component (and its point: a point stays itself, a line or polygon gives its point-on-surface) and the nearest
# component of the class within the snap radius (ST_DWithin on geom::geography: the ix_component_geog index).
# Reports of event classes need neither: the class comes from the process's dictionary cache.
_FACTS = text("""
WITH comp AS (
    SELECT c.code, c.category_code, c.status, ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat
    FROM component c
    CROSS JOIN LATERAL (SELECT CASE WHEN GeometryType(c.geom) = 'POINT' THEN c.geom
                                    ELSE ST_PointOnSurface(c.geom) END AS pt) p
    WHERE c.code = :component
), snap AS (
    SELECT s.code, ST_Distance(s.geom::geography, here.g) AS distance
    FROM component s,
         (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g) here
    WHERE :snap AND s.category_code = CAST(:category AS varchar) AND s.status <> 'removed'
      AND ST_DWithin(s.geom::geography, here.g, :radius)
    ORDER BY distance, s.code
    LIMIT 1
)
SELECT comp.code AS comp_code, comp.category_code AS comp_category, comp.status AS comp_status,
       comp.lon AS comp_lon, comp.lat AS comp_lat, snap.code AS snap_code, snap.distance AS snap_distance
FROM (SELECT 1) one LEFT JOIN comp ON TRUE LEFT JOIN snap ON TRUE
""")

SNAP_SQL = """
SELECT s.code, ST_Distance(s.geom::geography, here.g) AS distance
FROM component s, (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g) here
WHERE s.category_code = :category AND s.status <> 'removed' AND ST_DWithin(s.geom::geography, here.g, :radius)
ORDER BY distance, s.code
LIMIT 1
"""
"""The snapping query alone (the EXPLAIN test checks it uses ix_component_geog)."""


async def facts(
    source: Source,
    *,
    category: str | None,
    component: str | None,
    lon: float | None,
    lat: float | None,
    snap_radius_m: float,
) -> Any:
    """The named component and the snap candidate (a row whose parts are NULL when absent)."""
    params = {
        "category": category, "component": component, "lon": lon, "lat": lat, "radius": snap_radius_m,
        "snap": bool(category and not component and lon is not None and snap_radius_m > 0),
    }  # fmt: skip
    async with connected(source) as conn:
        return (await conn.execute(_FACTS, params)).one()


async def stored_response(conn: AsyncConnection, user_id: int, key: str) -> Any:
    sql = "SELECT request_hash, status_code, body FROM idempotency_key WHERE user_id = :uid AND key = :key"
    return (await conn.execute(text(sql), {"uid": user_id, "key": key})).first()


_ATTACHMENT_SELECT = """
SELECT a.id, a.case_id, a.kind, a.sha256, a.content_type, a.size_bytes, a.width, a.height, a.taken_at,
       ST_X(a.exif_geom) AS lon, ST_Y(a.exif_geom) AS lat, a.distance_m, a.flags, a.uploader_id, a.created_at,
       a.storage_key
FROM attachment a
"""


async def get_attachment(conn: AsyncConnection, attachment_id: int) -> Any:
    return (await conn.execute(text(_ATTACHMENT_SELECT + " WHERE a.id = :id"), {"id": attachment_id})).first()


async def find_attachment(conn: AsyncConnection, case_id: int, kind: str, sha256: str) -> Any:
    """The same photo already attached to the case as the same kind (an upload retried)."""
    where = " WHERE a.case_id = :case_id AND a.kind = :kind AND a.sha256 = :sha ORDER BY a.id LIMIT 1"
    sql = _ATTACHMENT_SELECT + where
    return (await conn.execute(text(sql), {"case_id": case_id, "kind": kind, "sha": sha256})).first()


async def insert_attachment(
    conn: AsyncConnection,
    *,
    case_id: int,
    kind: str,
    sha256: str,
    content_type: str,
    size_bytes: int,
    width: int | None,
    height: int | None,
    taken_at: dt.datetime | None,
    lon: float | None,
    lat: float | None,
    distance_m: float | None,
    flags: list[str],
    uploader_id: int | None,
    storage_key: str,
) -> Any:
    """The new row; None when the same photo of the same kind was attached meanwhile (by a concurrent upload)."""
    sql = """
    INSERT INTO attachment (case_id, kind, sha256, content_type, size_bytes, width, height, taken_at, exif_geom,
                            distance_m, flags, uploader_id, storage_key)
    VALUES (:case_id, :kind, :sha256, :content_type, :size_bytes, :width, :height, :taken_at,
            CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                 ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
            :distance_m, :flags, :uploader_id, :storage_key)
    ON CONFLICT (case_id, kind, sha256) DO NOTHING
    RETURNING id
    """
    params = {
        "case_id": case_id, "kind": kind, "sha256": sha256, "content_type": content_type, "size_bytes": size_bytes,
        "width": width, "height": height, "taken_at": taken_at, "lon": lon, "lat": lat, "distance_m": distance_m,
        "flags": flags, "uploader_id": uploader_id, "storage_key": storage_key,
    }  # fmt: skip
    new_id = (await conn.execute(text(sql), params)).scalar()
    return None if new_id is None else await get_attachment(conn, int(new_id))
