"""The cases the Open311 tests read: inserted directly in January 2022 (so that the cases other tests file now never
fall in their date windows), with timeline, contact and a public report; plus api keys and clean rate limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import plain
from tests.public.conftest import (
    clean_limits,  # noqa: F401  (autouse: no rate-limit counters left over)
    random_place,
)

SH = dt.timezone(dt.timedelta(hours=8))
V2 = "/open311/v2"
WINDOW = {"start_date": "2022-01-01T00:00:00+08:00", "end_date": "2022-02-01T00:00:00+08:00"}
"""The month the world's cases lie in."""
XMLISH = '井盖<b>没了</b> & "危险" ]]> <![CDATA[x]]> \x01\x1f end'
"""A description that breaks naive XML: markup, an ampersand, a CDATA end, control characters."""
PERSONAL = ("13912345678", "li.lei@example.cn", "李雷", "张三丰")
"""Personal data in the world (the contact, typed notes naming people): never in any Open311 answer."""


def t(day: int, hour: int = 10) -> dt.datetime:
    """A moment of January 2022, Shanghai time."""
    return dt.datetime(2022, 1, day, hour, tzinfo=SH)


@dataclass
class World:
    marker: str
    ids: dict[str, int] = field(default_factory=dict)
    case_no: dict[str, str] = field(default_factory=dict)
    point_a: tuple[float, float] = (0.0, 0.0)
    point_b: tuple[float, float] = (0.0, 0.0)
    tracking_code: str = ""
    merged_tracking_code: str = ""
    agency: str = ""
    """The name of unit U010101, which `handling` and `closed` are with."""
    e0102: tuple[str, str] = ("", "")
    """Name and major class name of E0102."""

    def nos(self, *names: str) -> list[str]:
        return [self.case_no[n] for n in names]


# name: status, class, grid (a: 城关镇, b: 潘口乡), received, extra columns
CASES: dict[str, dict[str, Any]] = {
    "handling": dict(status="handling", cat="E0102", grid="a", received=t(20), unit="U010101", deadline=t(25),
                     stage="handle", urgency="urgent"),
    "closed": dict(status="closed", cat="E0101", grid="a", received=t(18), unit="U010101", closed=t(19)),
    "rejected": dict(status="rejected", cat="E0103", grid="b", received=t(17)),
    "merged": dict(status="merged", cat="E0102", grid="a", received=t(16), source="citizen"),
    "hidden": dict(status="registered", cat="C0116", grid="a", received=t(15)),
    "xmlish": dict(status="verifying", cat="E0104", grid="a", received=t(14), source="citizen", deadline=t(14, 12),
                   stage="verify", description=XMLISH, address="A&B <路口> ]]>"),
    "far": dict(status="reported", cat="E0105", grid="b", received=t(13), deadline=t(13, 12), stage="register"),
    "shelved": dict(status="shelved", cat="E0102", grid="b", received=t(12), deadline=t(30), paused=t(13)),
    "old": dict(status="reported", cat="E0101", grid="b", received=dt.datetime(2021, 9, 1, 10, tzinfo=SH)),
}  # fmt: skip
VISIBLE = ["handling", "closed", "rejected", "xmlish", "far", "shelved"]
"""The world's service requests of January 2022, newest first (merged and non-public classes are not shown)."""


async def _grid_point(pg: asyncpg.Connection, like: str) -> tuple[float, float]:
    row = await pg.fetchrow(
        "SELECT ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat FROM grid"
        " WHERE code LIKE $1 ORDER BY code LIMIT 1",
        like,
    )
    return float(row["lon"]), float(row["lat"])


async def _insert_case(pg: asyncpg.Connection, w: World, n: int, name: str, spec: dict[str, Any]) -> int:
    lon, lat = w.point_a if spec["grid"] == "a" else w.point_b
    located = await pg.fetchrow(
        "SELECT code, community_code FROM grid WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326))"
        " ORDER BY code LIMIT 1",
        lon, lat,
    )  # fmt: skip
    received = spec["received"]
    return int(
        await pg.fetchval(
            """
            INSERT INTO cases (case_no, source, category_code, urgency, description, geom, address, grid_code,
                community_code, street_code, district_code, unit_code, received_at, status, stage, deadline,
                closed_at, paused_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, ST_SetSRID(ST_MakePoint($6, $7), 4326), $8, $9, $10, $11, '420323', $12,
                $13, $14, $15, $16, $17, $18, $19)
            RETURNING id
            """,
            f"T{w.marker}{n:02d}",
            spec.get("source", "worker"),
            spec["cat"],
            spec.get("urgency", "normal"),
            spec.get("description", f"open311 test {w.marker} {name}"),
            lon,
            lat,
            spec.get("address"),
            located["code"],
            located["community_code"],
            located["code"][:9],
            spec.get("unit"),
            received,
            spec["status"],
            spec.get("stage"),
            spec.get("deadline"),
            spec.get("closed"),
            spec.get("paused"),
            received + dt.timedelta(hours=2),
        )
    )


async def _timeline(pg: asyncpg.Connection, w: World) -> None:
    """`handling` went through dispatch and acknowledgement, with typed notes holding personal data."""
    staff = await pg.fetchrow("SELECT id, unit_code FROM app_user WHERE username = 'unit-U010101'")
    dispatcher = await pg.fetchval("SELECT id FROM app_user WHERE username = 'dispatcher1'")
    rows = [
        ("report", None, "reported", None, "citizen", None, None, {}, t(20)),
        ("register", "reported", "registered", dispatcher, "dispatcher", None, "李雷 says 13912345678", {}, t(20, 11)),
        ("dispatch", "registered", "dispatched", dispatcher, "dispatcher", None, "call li.lei@example.cn",
         {"unit_code": "U010101"}, t(20, 12)),
        ("urge", "dispatched", "dispatched", dispatcher, "dispatcher", None, "urgent!", {}, t(20, 13)),
        ("acknowledge", "dispatched", "handling", staff["id"], "unit_staff", staff["unit_code"], "张三丰 on it", {},
         t(20, 14)),
        ("overdue", "handling", "handling", None, "system", "U010101", None, {"minutes_late": 5}, t(25, 11)),
    ]  # fmt: skip
    for seq, (action, before, after, actor, role, unit, note, payload, at) in enumerate(rows, start=1):
        await pg.execute(
            "INSERT INTO case_activity (case_id, seq, action, from_status, to_status, actor_id, actor_role, unit_code,"
            " note, payload, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)",
            w.ids["handling"], seq, action, before, after, actor, role, unit, note, json.dumps(payload), at,
        )  # fmt: skip


async def _public_reports(pg: asyncpg.Connection, w: World) -> None:
    """`xmlish` and `merged` came from citizens: tracking codes, a contact."""
    w.tracking_code = "T" + secrets.token_hex(8).upper()[:9]
    w.merged_tracking_code = "M" + secrets.token_hex(8).upper()[:9]
    for name, code in (("xmlish", w.tracking_code), ("merged", w.merged_tracking_code)):
        await pg.execute(
            "INSERT INTO public_report (case_id, tracking_code, token_sha256, channel) VALUES ($1, $2, $3, 'web')",
            w.ids[name], code, hashlib.sha256(code.encode()).hexdigest(),
        )  # fmt: skip
    await pg.execute(
        "INSERT INTO case_contact (case_id, phone, email, name, consent_at, purge_after)"
        " VALUES ($1, $2, $3, $4, now(), now() + interval '1 day')",
        w.ids["xmlish"], *PERSONAL[:3],
    )  # fmt: skip
    await pg.execute("UPDATE cases SET duplicate_of = $1 WHERE id = $2", w.ids["handling"], w.ids["merged"])


@pytest.fixture(scope="package")
async def world(database_url: str) -> AsyncIterator[World]:
    pg = await asyncpg.connect(plain(database_url))
    w = World(marker=secrets.token_hex(3).upper())
    try:
        w.point_a = await _grid_point(pg, "420323100%")
        w.point_b = await _grid_point(pg, "420323200%")
        w.agency = await pg.fetchval("SELECT name FROM unit WHERE code = 'U010101'")
        w.e0102 = tuple(await pg.fetchrow("SELECT name, major_name FROM category WHERE code = 'E0102'"))
        for n, (name, spec) in enumerate(CASES.items()):
            w.ids[name] = await _insert_case(pg, w, n, name, spec)
            w.case_no[name] = f"T{w.marker}{n:02d}"
        await _timeline(pg, w)
        await _public_reports(pg, w)
        yield w
    finally:
        if w.ids:
            ids = list(w.ids.values())
            await pg.execute("UPDATE cases SET duplicate_of = NULL WHERE id = ANY($1::bigint[])", ids)
            await pg.execute("DELETE FROM case_activity WHERE case_id = ANY($1::bigint[])", ids)
            await pg.execute("DELETE FROM cases WHERE id = ANY($1::bigint[])", ids)
        await pg.close()


@pytest.fixture
async def place(pg: asyncpg.Connection) -> tuple[float, float]:
    """A random point inside a random unit grid."""
    return await random_place(pg)


@pytest.fixture
def make_key(client: AsyncTestClient[Litestar], auth_headers: Callable[..., Any]) -> Callable[..., Any]:
    """`key = await make_key("name")`: a new api key through the admin API; returns the created record (with `key`)."""

    async def make(name: str = "test client") -> dict[str, Any]:
        r = await client.post("/api/v1/open311/keys", json={"name": name}, headers=await auth_headers("admin"))
        assert r.status_code == 201, r.text
        made: dict[str, Any] = r.json()
        return made

    return make


def parse_xml(body: bytes) -> ET.Element:
    """The XML answer, parsed (a malformed document fails the test); it must declare UTF-8."""
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), body[:80]
    return ET.fromstring(body)


def errors_of(r: Any) -> list[dict[str, Any]]:
    """An Open311 error answer (JSON): a list of {code, description} whose code is the HTTP status."""
    body = r.json()
    assert isinstance(body, list) and body and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == r.status_code
    return list(body)


def no_personal_data(text: str) -> None:
    for value in PERSONAL:
        assert value not in text, f"{value!r} leaked"
    for name in ("reporter_id", "actor_id", "username", "contact", "phone", "email", "dispatcher1", "unit-U010101"):
        assert name not in text, f"{name!r} in an Open311 answer"
