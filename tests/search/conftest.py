"""The cases the list, task and sync tests read: inserted directly, once for the package, then removed.

They lie in March 2021 (received, updated, most deadlines), so that tests elsewhere in the session — which file
cases now — neither see them as duplicates nor change what these tests find when they filter on that month or
on the package's marker word.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import plain

SH = dt.timezone(dt.timedelta(hours=8))
MONTH_FROM = "2021-03-01"
MONTH_TO = "2021-03-31"


def t(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A moment of March 2021, Shanghai time."""
    return dt.datetime(2021, 3, day, hour, minute, tzinfo=SH)


FUTURE = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


@dataclass
class World:
    """The package's cases by name, and what the tests need to know about them."""

    marker: str
    ids: dict[str, int] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    grid_a: str = ""  # one of worker1's unit grids (城关镇)
    grid_b: str = ""  # a unit grid of 潘口乡, nobody's in these tests
    point_a: tuple[float, float] = (0.0, 0.0)
    point_b: tuple[float, float] = (0.0, 0.0)

    def id(self, *names: str) -> set[int]:
        return {self.ids[n] for n in names}

    @property
    def all(self) -> set[int]:
        return set(self.ids.values())

    def where(self, **equal: Any) -> set[int]:
        return {self.ids[n] for n, row in self.rows.items() if all(row.get(k) == v for k, v in equal.items())}


# name: status, category, urgency, grid (a/b/None), unit, received (day, hour), deadline, extra columns
CASES: dict[str, dict[str, Any]] = {
    "registered_late": dict(status="registered", cat="C0101", urgency="urgent", grid="a", received=t(2), deadline=t(5)),
    "dispatched": dict(status="dispatched", cat="E0101", grid="b", unit="U010101", received=t(3), deadline=FUTURE),
    "handling_other_unit": dict(status="handling", cat="E0102", grid="b", unit="U02", received=t(4), deadline=t(6)),
    "closed_mine": dict(status="closed", cat="C0102", grid="a", received=t(5), reporter="worker1", closed=t(8)),
    "elsewhere": dict(status="reported", cat="E0101", grid=None, district="420999", received=t(6), deadline=t(7)),
    "verifying": dict(status="verifying", cat="E0101", grid="a", source="citizen", received=t(7), deadline=FUTURE),
    "checking_assigned": dict(status="checking", cat="C0101", grid="b", unit="U0101", received=t(8), checker="worker1"),
    "checking_open": dict(status="checking", cat="C0101", grid="a", unit="U0101", received=t(9)),
    "checking_other": dict(status="checking", cat="C0102", grid="a", unit="U0101", received=t(10), checker="worker2"),
    "handled": dict(status="handled", cat="E0102", grid="a", unit="U0101", received=t(11), urgency="fairly_urgent"),
    "checked": dict(status="checked", cat="E0101", grid="b", unit="U0102", received=t(12)),
    "shelved": dict(status="shelved", cat="E0101", grid="b", received=t(13), deadline=t(14), paused=t(14)),
    "reported": dict(
        status="reported", cat="E0102", grid="b", received=t(14), deadline=FUTURE, address="解放路 100%_号"
    ),
    "handling_late": dict(status="handling", cat="C0103", grid="a", unit="U0103", received=t(15), deadline=t(16)),
}
# ties: three cases received at the very same moment (keyset pages must neither skip nor repeat them)
for i in range(3):
    CASES[f"tie{i}"] = dict(status="closed", cat="E0101", grid="b", received=t(20, 9), closed=t(21))
for i in range(12):
    CASES[f"old{i}"] = dict(status="closed", cat="C0101", grid="a" if i % 2 else "b", received=t(22 + i % 8, i))


@pytest.fixture(scope="package")
async def world(database_url: str) -> AsyncIterator[World]:
    pg = await asyncpg.connect(plain(database_url))
    w = World(marker="srch" + secrets.token_hex(4))
    try:
        w.users = {
            r["username"]: r["id"]
            for r in await pg.fetch("SELECT id, username FROM app_user WHERE username LIKE ANY($1)", ["worker%", "%1"])
        }
        a = await pg.fetchrow(
            "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat"
            " FROM grid g JOIN duty_grid_grid d ON d.grid_code = g.code JOIN duty_grid_worker dw USING (duty_grid_code)"
            " WHERE dw.user_id = $1 ORDER BY g.code LIMIT 1",
            w.users["worker1"],
        )
        b = await pg.fetchrow(
            "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat"
            " FROM grid g WHERE g.code LIKE '420323200%'"
            " AND NOT EXISTS (SELECT 1 FROM duty_grid_grid d JOIN duty_grid_worker dw USING (duty_grid_code)"
            "   WHERE d.grid_code = g.code AND dw.user_id = $1) ORDER BY g.code DESC LIMIT 1",
            w.users["worker1"],
        )
        w.grid_a, w.grid_b = a["code"], b["code"]
        w.point_a, w.point_b = (a["lon"], a["lat"]), (b["lon"], b["lat"])
        for n, (name, spec) in enumerate(CASES.items()):
            grid = {"a": w.grid_a, "b": w.grid_b, None: None}[spec["grid"]]
            lon, lat = {"a": w.point_a, "b": w.point_b, None: (110.9, 32.6)}[spec["grid"]]
            district = spec.get("district", "420323" if grid else None)
            row = {
                "name": name,
                "status": spec["status"],
                "category_code": spec["cat"],
                "kind": "component" if spec["cat"].startswith("C") else "event",
                "urgency": spec.get("urgency", "normal"),
                "grid_code": grid,
                "community_code": grid[:12] if grid else None,
                "street_code": grid[:9] if grid else None,
                "district_code": district,
                "unit_code": spec.get("unit"),
                "received_at": spec["received"],
                "deadline": spec.get("deadline"),
                "reporter_id": w.users[spec["reporter"]] if "reporter" in spec else None,
                "checker_id": w.users[spec["checker"]] if "checker" in spec else None,
                "updated_at": spec["received"] + dt.timedelta(hours=1),
            }
            w.ids[name] = await pg.fetchval(
                """
                INSERT INTO cases (case_no, source, category_code, urgency, description, geom, address, grid_code,
                    community_code, street_code, district_code, unit_code, reporter_id, checker_id, received_at,
                    status, deadline, closed_at, paused_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, ST_SetSRID(ST_MakePoint($6, $7), 4326), $8, $9, $10, $11, $12, $13, $14,
                    $15, $16, $17, $18, $19, $20, $21)
                RETURNING id
                """,
                f"T{w.marker[4:]}{n:04d}", spec.get("source", "worker"), row["category_code"], row["urgency"],
                f"搜索测试 {w.marker} {name.replace('_', ' ')}", lon, lat, spec.get("address"), grid,
                row["community_code"], row["street_code"], district, row["unit_code"], row["reporter_id"],
                row["checker_id"], row["received_at"], row["status"], row["deadline"], spec.get("closed"),
                spec.get("paused"), row["updated_at"],
            )  # fmt: skip
            w.rows[name] = row
        yield w
    finally:
        if w.ids:
            await pg.execute("DELETE FROM cases WHERE id = ANY($1::bigint[])", list(w.ids.values()))
        await pg.close()


@pytest.fixture(scope="package")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()
