"""SQL of the regions feature: layer specs for lists, and the grid-location queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.lib.layers import Filter, LayerSpec
from grid_mgmt.lib.sql import text
from grid_mgmt.regions.schemas import (
    DutyGridRead,
    DutyWorker,
    GridProperties,
    LocateRead,
    NamedCode,
    RegionProperties,
)

REGIONS = LayerSpec(
    table="region",
    label="region",
    properties=RegionProperties,
    columns={
        "code": "t.code",
        "name": "t.name",
        "level": "t.level",
        "parent_code": "t.parent_code",
        "area_m2": "t.area_m2",
    },
    filters=(
        Filter("level", "t.level = :level"),
        Filter("parent_code", "t.parent_code = :parent_code"),
        Filter("name", "t.name ILIKE '%' || :name || '%'"),
    ),
)

GRIDS = LayerSpec(
    table="grid",
    label="unit grid",
    properties=GridProperties,
    joins="LEFT JOIN duty_grid_grid dgg ON dgg.grid_code = t.code",
    columns={
        "code": "t.code",
        "name": "t.name",
        "community_code": "t.community_code",
        "street_code": "left(t.code, 9)",
        "district_code": "left(t.code, 6)",
        "area_m2": "t.area_m2",
        "valid_from": "t.valid_from",
        "valid_to": "t.valid_to",
        "land_use": "t.land_use",
        "management_grade": "t.management_grade",
        "responsible_body": "t.responsible_body",
        "duty_grid_code": "dgg.duty_grid_code",
    },
    filters=(
        Filter("community_code", "t.community_code = :community_code"),
        Filter("street_code", "t.code LIKE :street_code || '%'"),
        Filter("district_code", "t.code LIKE :district_code || '%'"),
        Filter("land_use", "t.land_use = :land_use"),
        Filter("management_grade", "t.management_grade = :management_grade"),
        Filter("duty_grid_code", "dgg.duty_grid_code = :duty_grid_code"),
    ),
)

# The grid facts /grids/locate answers with; `{where}` picks the grids.
_LOCATE_SQL = """
SELECT g.code, g.name, c.code AS c_code, c.name AS c_name, s.code AS s_code, s.name AS s_name,
       d.code AS d_code, d.name AS d_name, dg.code AS dg_code, dg.name AS dg_name{extra}
FROM grid g
JOIN region c ON c.code = g.community_code
LEFT JOIN region s ON s.code = c.parent_code
LEFT JOIN region d ON d.code = s.parent_code
LEFT JOIN duty_grid_grid dgg ON dgg.grid_code = g.code
LEFT JOIN duty_grid dg ON dg.code = dgg.duty_grid_code
WHERE (g.valid_to IS NULL OR g.valid_to >= CURRENT_DATE) {where}
"""

_WORKERS_SQL = """
SELECT w.duty_grid_code, u.username, u.display_name, u.phone
FROM duty_grid_worker w JOIN app_user u ON u.id = w.user_id
WHERE u.active {where}
ORDER BY w.duty_grid_code, u.username
"""


def _named(code: str | None, name: str | None) -> NamedCode | None:
    return NamedCode(code=code, name=name or "") if code else None


def locate_read(row: Any, lon: float, lat: float, workers: Sequence[DutyWorker]) -> LocateRead:
    """Assemble the answer for one grid row."""
    duty = DutyGridRead(code=row.dg_code, name=row.dg_name, workers=list(workers)) if row.dg_code else None
    return LocateRead(
        lon=lon,
        lat=lat,
        grid=NamedCode(code=row.code, name=row.name),
        community=NamedCode(code=row.c_code, name=row.c_name),
        street=_named(row.s_code, row.s_name),
        district=_named(row.d_code, row.d_name),
        duty_grid=duty,
    )


async def locate_in_db(conn: AsyncConnection, lon: float, lat: float) -> LocateRead | None:
    """The grid covering the point; on a shared edge or vertex the smallest code wins (deterministic)."""
    sql = _LOCATE_SQL.format(
        extra="",
        where="AND g.geom && ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
        " AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY g.code LIMIT 1",
    )
    row = (await conn.execute(text(sql), {"lon": lon, "lat": lat})).first()
    if row is None:
        return None
    workers = await duty_workers(conn, row.dg_code) if row.dg_code else {}
    return locate_read(row, lon, lat, workers.get(row.dg_code, []))


async def all_grids_for_index(conn: AsyncConnection) -> list[Any]:
    """Every valid grid with its WKB and the facts locate answers with (for the in-process index)."""
    sql = _LOCATE_SQL.format(extra=", ST_AsBinary(g.geom) AS wkb", where="ORDER BY g.code")
    return list((await conn.execute(text(sql))).all())


async def duty_workers(conn: AsyncConnection, duty_grid_code: str | None = None) -> dict[str, list[DutyWorker]]:
    """Active workers per duty grid (all duty grids when no code is given)."""
    where = "AND w.duty_grid_code = :code" if duty_grid_code else ""
    rows = (await conn.execute(text(_WORKERS_SQL.format(where=where)), {"code": duty_grid_code})).all()
    out: dict[str, list[DutyWorker]] = {}
    for r in rows:
        out.setdefault(r.duty_grid_code, []).append(
            DutyWorker(username=r.username, display_name=r.display_name, phone=r.phone)
        )
    return out


TRACKED_LAYERS = ("region", "grid", "duty_grid", "duty_grid_grid", "duty_grid_worker", "app_user")


async def layers_version(conn: AsyncConnection) -> int:
    """A number that changes whenever any table the locate answer depends on changes."""
    value = await conn.scalar(
        text("SELECT coalesce(sum(version), 0) FROM layer_version WHERE layer = ANY(:layers)"),
        {"layers": list(TRACKED_LAYERS)},
    )
    return int(value or 0)
