"""SQL of routing: the ranked candidates of a case, duplicates, the routing record, and routing rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.cases.lifecycle import TERMINAL, Status
from grid_mgmt.cases.repository import CASE_COLUMNS, CASE_FROM, to_cases
from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.lib.sql import text

_CLOSED = ", ".join(repr(str(s)) for s in sorted({*TERMINAL, Status.MERGED}))

_CANDIDATES = text("""
SELECT b.id AS case_id, x.* FROM unnest(CAST(:ids AS bigint[])) AS b(id) CROSS JOIN LATERAL (
WITH c AS (
    SELECT id, category_code, geom, component_code, street_code, community_code, district_code
    FROM cases WHERE id = b.id
), k AS (
    SELECT cat.code, cat.major_code, cat.subsurface, cat.pipeline_kinds, cat.auto_dispatch
    FROM category cat JOIN c ON cat.code = c.category_code
), ranked AS (
    SELECT 1 AS grp, 1 AS ord, 'component' AS source,
           coalesce(m.maintainer_unit_code, m.owner_unit_code) AS unit_code,
           jsonb_build_object('component_code', m.code, 'as',
               CASE WHEN m.maintainer_unit_code IS NOT NULL THEN 'maintainer' ELSE 'owner' END) AS reason,
           NULL::float8 AS distance_m, NULL::boolean AS rule_auto
    FROM c JOIN component m ON m.code = c.component_code
    UNION ALL
    SELECT * FROM (
        SELECT 2, 1, 'pipeline', coalesce(p.maintainer_unit_code, p.owner_unit_code),
               jsonb_build_object('pipeline_code', p.code, 'pipeline_kind', p.kind, 'as',
                   CASE WHEN p.maintainer_unit_code IS NOT NULL THEN 'maintainer' ELSE 'owner' END),
               round(ST_Distance(p.geom::geography, c.geom::geography)::numeric, 1)::float8, NULL::boolean
        FROM c, k, pipeline p
        WHERE k.subsurface AND p.kind = ANY(k.pipeline_kinds)
          -- the geometry index narrows to a box a little larger than the radius (long pipes have big boxes,
          -- which makes a geography KNN scan slow); the geodesic test and order are exact
          AND p.geom && ST_Expand(c.geom, :radius * 1.02 / (111320 * cos(radians(ST_Y(c.geom)))),
                                  :radius * 1.02 / 110540.0)
          AND ST_DWithin(p.geom::geography, c.geom::geography, :radius)
          AND coalesce(p.maintainer_unit_code, p.owner_unit_code) IS NOT NULL
        ORDER BY ST_Distance(p.geom::geography, c.geom::geography)
        LIMIT 1
    ) pipe
    UNION ALL
    SELECT * FROM (
        SELECT 3, (row_number() OVER (
                   ORDER BY (r.category_code IS NOT NULL) DESC, (r.major_code IS NOT NULL) DESC,
                   coalesce(g.area_m2, ST_Area(r.area::geography), 'infinity'::float8), r.priority DESC, r.id))::int,
               'rule', r.unit_code,
               jsonb_build_object('rule_id', r.id, 'rule', r.name,
                   'class', coalesce(r.category_code, r.major_code, '*'),
                   'area', coalesce(r.region_code, CASE WHEN r.area IS NULL THEN 'city' ELSE 'polygon' END)),
               NULL::float8, r.auto_dispatch
        FROM c, k, routing_rule r LEFT JOIN region g ON g.code = r.region_code
        WHERE r.active
          AND (r.category_code = k.code OR r.major_code = left(k.code, 3)
               OR (r.category_code IS NULL AND r.major_code IS NULL))
          AND (r.region_code IN (c.district_code, c.street_code, c.community_code)
               OR (r.region_code IS NULL AND (r.area IS NULL OR ST_Covers(r.area, c.geom))))
    ) rules
    UNION ALL
    SELECT 4, 1, 'territory', u.code, jsonb_build_object('street_code', c.street_code), NULL, NULL
    FROM c JOIN unit u ON u.kind = 'street_office' AND u.region_code = c.street_code
)
SELECT ranked.grp, ranked.ord, ranked.source, ranked.unit_code, u.name AS unit_name, ranked.reason,
       ranked.distance_m, coalesce(ranked.rule_auto, k.auto_dispatch) AS auto_dispatch
FROM ranked JOIN unit u ON u.code = ranked.unit_code AND u.active, k
) x
ORDER BY b.id, x.grp, x.ord
""")


async def candidates(conn: AsyncConnection, case_ids: list[int], radius_m: float) -> dict[int, list[Any]]:
    """Every unit that could handle each case, most specific first, each with its reason (one statement)."""
    found: dict[int, list[Any]] = {case_id: [] for case_id in case_ids}
    for row in await conn.execute(_CANDIDATES, {"ids": case_ids, "radius": radius_m}):
        found[int(row.case_id)].append(row)
    return found


_LOCK_WAITING = text(f"""
SELECT {CASE_COLUMNS} {CASE_FROM}
WHERE c.id = ANY(CAST(:ids AS bigint[])) AND c.status = 'reported' AND c.routed_at IS NULL
ORDER BY c.id <> :first, c.id
LIMIT :limit
FOR UPDATE OF c SKIP LOCKED
""")


async def lock_unrouted(conn: AsyncConnection, first: int, others: list[int], limit: int) -> list[CaseRead]:
    """Of the case `first` and then `others`, the first `limit` still waiting for routing that nobody else holds,
    locked (never waits: a case another router holds is its to route); `first` comes first when taken."""
    params = {"ids": [first, *others], "first": first, "limit": limit}
    return await to_cases(conn, list(await conn.execute(_LOCK_WAITING, params)))


_STATE = text("SELECT status, routed_at FROM cases WHERE id = :id")


async def routing_state(conn: AsyncConnection, case_id: int) -> Any:
    """(status, routed_at) of a case, or None when there is none."""
    return (await conn.execute(_STATE, {"id": case_id})).one_or_none()


_DUPLICATE = text(f"""
SELECT b.id AS case_id, x.* FROM unnest(CAST(:ids AS bigint[])) AS b(id) CROSS JOIN LATERAL (
SELECT d.id, d.case_no, round(ST_Distance(d.geom::geography, c.geom::geography)::numeric, 1)::float8 AS distance_m,
       k.duplicate_radius_m, k.duplicate_window_min
FROM cases c
JOIN category k ON k.code = c.category_code
JOIN cases d ON d.category_code = c.category_code
    AND (d.received_at, d.id) < (c.received_at, c.id)
    AND d.received_at >= c.received_at - make_interval(mins => k.duplicate_window_min)
    AND d.duplicate_of IS NULL
    AND d.status NOT IN ({_CLOSED}, 'verifying')
    AND ST_DWithin(d.geom::geography, c.geom::geography, k.duplicate_radius_m)
WHERE c.id = b.id AND k.duplicate_radius_m > 0 AND k.duplicate_window_min > 0
    AND NOT EXISTS (SELECT 1 FROM case_activity s WHERE s.case_id = c.id AND s.action = 'split')
ORDER BY d.received_at, d.id
LIMIT 1
) x
""")


async def find_duplicates(conn: AsyncConnection, case_ids: list[int]) -> dict[int, Any]:
    """For each case that repeats one: the earliest open case of the same class within the class's radius and
    time window (one statement). A case a dispatcher split off as not a duplicate is never merged again."""
    return {int(r.case_id): r for r in await conn.execute(_DUPLICATE, {"ids": case_ids})}


async def routing_of(conn: AsyncConnection, case_id: int) -> Any:
    return (
        await conn.execute(text("SELECT routing, routed_at FROM cases WHERE id = :id"), {"id": case_id})
    ).one_or_none()


_UNROUTED = text("""
SELECT id FROM cases
WHERE routed_at IS NULL AND status = 'reported' AND received_at < now() - make_interval(secs => :age)
ORDER BY received_at LIMIT :limit
""")


async def unrouted(conn: AsyncConnection, older_than_s: float, limit: int) -> list[int]:
    """Reported cases nobody routed (their job was lost with Redis or a worker): for the recovery sweep."""
    rows = await conn.execute(_UNROUTED, {"age": older_than_s, "limit": limit})
    return [int(r.id) for r in rows]


# --- routing rules ------------------------------------------------------------------------------------------

RULE_COLUMNS = """r.id, r.name, r.category_code, r.major_code, r.region_code,
    CASE WHEN r.area IS NULL THEN NULL ELSE ST_AsGeoJSON(r.area, 7) END AS area, r.unit_code, r.priority,
    r.auto_dispatch, r.active, r.note, r.created_at, r.updated_at"""


async def list_rules(
    conn: AsyncConnection, *, category_code: str | None, unit_code: str | None, active: bool | None,
    after_id: int, limit: int,
) -> list[Any]:  # fmt: skip
    where = ["r.id > :after"]
    params: dict[str, Any] = {"after": after_id, "limit": limit}
    if category_code is not None:
        where.append("(r.category_code = :cat OR r.major_code = left(:cat, 3))")
        params["cat"] = category_code
    if unit_code is not None:
        where.append("r.unit_code = :unit")
        params["unit"] = unit_code
    if active is not None:
        where.append("r.active = :active")
        params["active"] = active
    sql = f"SELECT {RULE_COLUMNS} FROM routing_rule r WHERE {' AND '.join(where)} ORDER BY r.id LIMIT :limit"
    return list((await conn.execute(text(sql), params)).all())


async def get_rule(conn: AsyncConnection, rule_id: int) -> Any:
    sql = text(f"SELECT {RULE_COLUMNS} FROM routing_rule r WHERE r.id = :id")
    return (await conn.execute(sql, {"id": rule_id})).one_or_none()


async def references(conn: AsyncConnection, values: dict[str, Any]) -> dict[str, bool]:
    """Whether the class, region and unit a rule names exist (unit: and is active)."""
    row = (
        await conn.execute(
            text("""SELECT
                (CAST(:cat AS text) IS NULL OR EXISTS (SELECT 1 FROM category WHERE code = :cat)) AS category_ok,
                (CAST(:region AS text) IS NULL OR EXISTS (SELECT 1 FROM region WHERE code = :region)) AS region_ok,
                EXISTS (SELECT 1 FROM unit WHERE code = :unit AND active) AS unit_ok,
                (CAST(:major AS text) IS NULL
                 OR EXISTS (SELECT 1 FROM category WHERE left(code, 3) = :major)) AS major_ok"""),
            {
                "cat": values.get("category_code"),
                "region": values.get("region_code"),
                "unit": values.get("unit_code"),
                "major": values.get("major_code"),
            },
        )
    ).one()
    return dict(row._mapping)


def _area_sql(values: dict[str, Any]) -> str:
    return "ST_Multi(ST_SetSRID(ST_GeomFromWKB(:area), 4326))" if values.get("area") is not None else "NULL"


async def insert_rule(conn: AsyncConnection, values: dict[str, Any]) -> int:
    sql = text(f"""
        INSERT INTO routing_rule (name, category_code, major_code, region_code, area, unit_code, priority,
            auto_dispatch, active, note)
        VALUES (:name, :category_code, :major_code, :region_code, {_area_sql(values)}, :unit_code, :priority,
            :auto_dispatch, :active, :note)
        RETURNING id""")
    return int((await conn.execute(sql, values)).scalar_one())


async def update_rule(conn: AsyncConnection, rule_id: int, values: dict[str, Any]) -> bool:
    sets = [f"{name} = :{name}" for name in values if name != "area"]
    if "area" in values:
        sets.append(f"area = {_area_sql(values)}")
    sql = text(f"UPDATE routing_rule SET {', '.join(sets)}, updated_at = now() WHERE id = :id")
    return bool((await conn.execute(sql, {**values, "id": rule_id})).rowcount)


async def delete_rule(conn: AsyncConnection, rule_id: int) -> bool:
    result = await conn.execute(text("DELETE FROM routing_rule WHERE id = :id"), {"id": rule_id})
    return bool(result.rowcount)
