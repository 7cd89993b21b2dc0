"""SQL of cases: the scoped read, creation, compare-and-set update, and the append-only timeline."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.cases.lifecycle import actions_for, actions_from
from grid_mgmt.cases.schemas import ActivityRead, CaseRead
from grid_mgmt.db.models.category import KIND_LETTERS
from grid_mgmt.lib.auth import CENTRE_ROLES, Principal
from grid_mgmt.lib.sql import Source, connected, driver_connection, text

CASE_COLUMNS = """
c.id, c.case_no, c.source, c.status, c.version, c.stage, c.category_code, c.urgency, c.description,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.input_crs, c.accuracy_m,
       c.address, c.grid_code, c.community_code, c.street_code, c.district_code, c.component_code, c.unit_code,
       c.reporter_id, c.captured_at, c.received_at, c.registered_at, c.dispatched_at, c.acknowledged_at,
       c.handled_at, c.checked_at, c.closed_at, c.cancelled_at, c.deadline, c.stage_started_at, c.paused_at,
       c.duplicate_of, c.rework_count, c.checker_id, c.flags, c.updated_at, c.warn_at, c.deadline_round
"""
"""The columns of a case as read (over `c` = cases): `CaseRead`'s fields in order, but for the class's name and
kind, which `to_case` takes from the process's class dictionary. A join with `category` cost the case list about
a quarter of its database CPU (planning the join, and a lookup per row)."""

CASE_FROM = "FROM cases c"
CASE_SELECT = f"SELECT {CASE_COLUMNS} {CASE_FROM}"


def scope_sql(principal: Principal, alias: str = "c") -> tuple[str, dict[str, Any]]:
    """The data scope of a principal as an SQL condition over `cases` (bound parameters prefixed `scope_`).

    Supervisors and admins see all; centre roles their district; unit staff the cases sent to their unit or
    its children; workers what they reported and what lies in their duty grids (or what they must check).
    """
    if principal.sees_all:
        return "TRUE", {}
    parts: list[str] = []
    params: dict[str, Any] = {}
    if principal.roles & CENTRE_ROLES:
        if principal.district_code:
            parts.append(f"{alias}.district_code = :scope_district")
            params["scope_district"] = principal.district_code
        else:
            parts.append("TRUE")
    if "unit_staff" in principal.roles and principal.unit_codes:
        parts.append(f"{alias}.unit_code = ANY(:scope_units)")
        params["scope_units"] = sorted(principal.unit_codes)
    if "worker" in principal.roles:
        parts.append(f"{alias}.reporter_id = :scope_uid OR {alias}.checker_id = :scope_uid")
        params["scope_uid"] = principal.user_id
        if principal.duty_grid_codes:
            parts.append(f"{alias}.grid_code = ANY(:scope_grids)")
            params["scope_grids"] = sorted(principal.duty_grid_codes)
    if not parts:
        return "FALSE", {}
    return "(" + " OR ".join(f"({p})" for p in parts) + ")", params


def to_case(row: Any, classes: dict[str, ClassFacts], roles: frozenset[str] | None = None) -> CaseRead:
    """A case row of `CASE_COLUMNS` as read (a SQLAlchemy row, or an asyncpg record), its class's name and kind from
    `classes` (see `to_cases`); `next_actions` are what `roles` may do next (all the status allows when None).

    The row's values go to `CaseRead` by position: its fields are these columns in this order, with the types
    the driver gives them (tests/cases/test_case_columns.py holds the two together). A page of 50 took 133 µs by
    `msgspec.convert(dict(row), CaseRead)` and takes 18 µs so."""
    status = row[_STATUS]
    code = row[_CATEGORY]
    facts = classes.get(code)
    name, kind = (facts.name, facts.kind) if facts is not None else (code, kind_of(code))
    actions = actions_from(status) if roles is None else actions_for(status, roles)
    return CaseRead(*row[:_NAME], name, kind, *row[_NAME:], actions)  # type: ignore[call-arg]  # kw_only of Schema


async def to_cases(source: Source, rows: Sequence[Any], roles: frozenset[str] | None = None) -> list[CaseRead]:
    """`to_case` of each row, the class names from the cached dictionary (read again at most once, when it does not
    know a class of these rows)."""
    classes = await class_dictionary(source, rows)
    return [to_case(r, classes, roles) for r in rows]


async def class_dictionary(source: Source, rows: Sequence[Any] = ()) -> dict[str, ClassFacts]:
    """The cached class dictionary, read again (at most once) when it does not know a class of these case rows."""
    classes = await _dictionary(source)
    missing = next((r[_CATEGORY] for r in rows if r[_CATEGORY] not in classes), None)
    if missing is not None:
        classes = await _dictionary(source, missing)
    return classes


def kind_of(category_code: str) -> str:
    """A class's kind by its code's letter (`KIND_LETTERS`)."""
    return "component" if category_code.startswith(KIND_LETTERS["component"]) else "event"


_STATUS = CaseRead.__struct_fields__.index("status")
_CATEGORY = CaseRead.__struct_fields__.index("category_code")
_NAME = CaseRead.__struct_fields__.index("category_name")
assert CaseRead.__struct_fields__[_NAME : _NAME + 2] == ("category_name", "kind") and _CATEGORY < _NAME


async def get_case(
    conn: AsyncConnection, case_id: int, principal: Principal | None, *, for_update: bool = False
) -> CaseRead | None:
    """A case if it exists and the principal may see it (None otherwise: the caller answers 404)."""
    where, params = scope_sql(principal) if principal is not None else ("TRUE", {})
    sql = CASE_SELECT + f" WHERE c.id = :id AND {where}" + (" FOR UPDATE OF c" if for_update else "")
    row = (await conn.execute(text(sql), {"id": case_id, **params})).first()
    if row is None:
        return None
    return (await to_cases(conn, [row], principal.roles if principal is not None else None))[0]


MUTABLE = {
    "status": "text", "stage": "text", "unit_code": "text", "registered_at": "timestamptz",
    "dispatched_at": "timestamptz", "acknowledged_at": "timestamptz", "handled_at": "timestamptz",
    "checked_at": "timestamptz", "closed_at": "timestamptz", "cancelled_at": "timestamptz",
    "deadline": "timestamptz", "warn_at": "timestamptz", "deadline_round": "int", "stage_started_at": "timestamptz",
    "paused_at": "timestamptz", "duplicate_of": "bigint", "rework_count": "int", "checker_id": "bigint",
}  # fmt: skip
"""The columns the lifecycle changes (and their types), written from the planned state of a case."""

_WRITE = text(f"""
UPDATE cases c SET {", ".join(f"{col} = v.{col}" for col in MUTABLE)},
    version = c.version + v.steps, updated_at = now(),
    routing = CASE WHEN v.routed THEN v.routing ELSE c.routing END,
    routed_at = CASE WHEN v.routed THEN now() WHEN v.reroute THEN NULL ELSE c.routed_at END
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
    id bigint, version int, steps int, routed boolean, reroute boolean, routing jsonb,
    {", ".join(f"{col} {kind}" for col, kind in MUTABLE.items())})
WHERE c.id = v.id AND c.version = v.version
RETURNING c.id, c.updated_at
""")


@dataclass(frozen=True, slots=True)
class Write:
    """A case's planned state after `steps` transitions from `version`; `routing` (a routing record) marks it
    routed, `reroute` waiting for routing again (a split-off duplicate)."""

    planned: CaseRead
    version: int
    steps: int
    routing: dict[str, Any] | None = None
    reroute: bool = False


async def write_cases(conn: AsyncConnection, writes: list[Write]) -> dict[int, dt.datetime]:
    """Compare-and-set many cases in one statement (`UPDATE … WHERE id AND version`): id → new `updated_at` of
    each written case; a case someone else moved first is missing."""
    rows = []
    for w in writes:
        row = {col: getattr(w.planned, col) for col in MUTABLE}
        row.update(
            id=w.planned.id,
            version=w.version,
            steps=w.steps,
            routed=w.routing is not None,
            routing=w.routing,
            reroute=w.reroute,
        )
        rows.append(row)
    result = await conn.execute(_WRITE, {"rows": msgspec.json.encode(rows).decode()})
    return {int(r.id): r.updated_at for r in result}


_APPEND = text("""
INSERT INTO case_activity (case_id, seq, action, from_status, to_status, actor_id, actor_role, unit_code, note,
                           payload, at, deadline, minutes_used, on_time)
SELECT v.case_id, coalesce((SELECT max(a.seq) FROM case_activity a WHERE a.case_id = v.case_id), 0) + v.n,
       v.action, v.from_status, v.to_status, v.actor_id, v.actor_role, v.unit_code, v.note, v.payload, v.at,
       v.deadline, v.minutes_used, v.on_time
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
    i int, case_id bigint, n int, action text, from_status text, to_status text, actor_id bigint, actor_role text,
    unit_code text, note text, payload jsonb, at timestamptz, deadline timestamptz, minutes_used int, on_time boolean)
ORDER BY v.i
RETURNING id, case_id, seq
""")


async def append_activities(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Append timeline rows (the keys of `append_activity`) in one statement, the rows of a case in their order
    (seq = the case's last + its place; the cases are locked by the caller's update); their ids, in order."""
    values: list[dict[str, Any]] = []
    place: dict[int, int] = {}
    for i, row in enumerate(rows):
        place[row["case_id"]] = place.get(row["case_id"], 0) + 1
        values.append({**row, "i": i, "n": place[row["case_id"]]})
    result = (await conn.execute(_APPEND, {"rows": msgspec.json.encode(values).decode()})).all()
    by_case: dict[int, list[tuple[int, int]]] = {}
    for r in result:
        by_case.setdefault(int(r.case_id), []).append((int(r.seq), int(r.id)))
    for seqs in by_case.values():
        seqs.sort()
    return [by_case[v["case_id"]][v["n"] - 1][1] for v in values]


async def append_activity(conn: AsyncConnection, **row: Any) -> int:
    """Append the next timeline row of a case (case_id, action, from_status, to_status, actor_id, actor_role,
    unit_code, note, payload, at, deadline, minutes_used, on_time)."""
    return (await append_activities(conn, [row]))[0]


async def timeline(conn: AsyncConnection, case_id: int) -> list[ActivityRead]:
    sql = """
    SELECT a.seq, a.action, a.from_status, a.to_status, a.actor_id, u.username AS actor_username, a.actor_role,
           a.unit_code, a.note, a.payload, a.at, a.deadline, a.minutes_used, a.on_time
    FROM case_activity a LEFT JOIN app_user u ON u.id = a.actor_id
    WHERE a.case_id = :id ORDER BY a.seq
    """
    rows = (await conn.execute(text(sql), {"id": case_id})).all()
    return [msgspec.convert(dict(r._mapping), ActivityRead) for r in rows]


async def last_payload(conn: AsyncConnection, case_id: int, action: str) -> dict[str, Any] | None:
    """The payload of the newest timeline row of `action` (e.g. the pending postponement request)."""
    sql = "SELECT payload FROM case_activity WHERE case_id = :id AND action = :action ORDER BY seq DESC LIMIT 1"
    value = (await conn.execute(text(sql), {"id": case_id, "action": action})).scalar()
    return dict(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class ClassFacts:
    """What filing a case (a worker's or a citizen's) needs of its class."""

    code: str
    kind: str
    name: str
    active: bool
    public: bool
    duplicate_radius_m: int
    time_limits: dict[str, Any]

    @property
    def citizens_may_report(self) -> bool:
        """A public class still in use: the public form and Open311 take it."""
        return self.public and self.active


CLASSES_CACHE_S = 30.0
"""How long a process reuses the class dictionary (it changes by import, rarely)."""
MISS_RELOAD_S = 1.0
"""A code the cached dictionary does not know reloads it, at most this often (a new class is seen at once)."""
_CLASSES: list[Any] = [0.0, {}]  # [expires (monotonic), code → ClassFacts]
_CLASSES_SQL = "SELECT code, kind, name, active, public, duplicate_radius_m, time_limits FROM category"


async def class_facts(source: Source, category_code: str) -> ClassFacts | None:
    """A class of the dictionary (None when unknown). The whole dictionary is read at once and kept per process for
    CLASSES_CACHE_S, so a report of a known class costs no query; with an engine as `source` a connection is taken
    only to read it."""
    found: ClassFacts | None = (await _dictionary(source, category_code)).get(category_code)
    return found


async def public_codes(source: Source) -> list[str]:
    """The codes of the classes citizens may report or could (public, active or not), from the cached dictionary."""
    return sorted(code for code, facts in (await _dictionary(source)).items() if facts.public)


async def _dictionary(source: Source, wanted: str | None = None) -> dict[str, ClassFacts]:
    """The cached class dictionary, read again when it is older than CLASSES_CACHE_S or does not know `wanted`
    (then at most every MISS_RELOAD_S)."""
    now = time.monotonic()
    facts: dict[str, ClassFacts] = _CLASSES[1]
    missing = wanted is not None and wanted not in facts
    if _CLASSES[0] <= now or (missing and _CLASSES[0] - CLASSES_CACHE_S + MISS_RELOAD_S <= now):
        async with connected(source) as conn:
            rows = (await conn.execute(text(_CLASSES_SQL))).all()
        facts = {
            r.code: ClassFacts(r.code, r.kind, r.name, bool(r.active), bool(r.public), int(r.duplicate_radius_m),
                               dict(r.time_limits or {}))
            for r in rows
        }  # fmt: skip
        _CLASSES[:] = [time.monotonic() + CLASSES_CACHE_S, facts]
    return facts


def forget_classes() -> None:
    """Drop the cached dictionary (after an import or an edit in this process)."""
    _CLASSES[0] = 0.0


async def time_limits(conn: AsyncConnection, category_code: str) -> dict[str, Any]:
    """The class's limits per stage × urgency (from the cached dictionary)."""
    found = await class_facts(conn, category_code)
    return found.time_limits if found is not None else {}


class IdBlocks:
    """Case ids and case-number serials taken from their sequences a block at a time, so that a new case is
    known in full before it is written (the report's answer and its idempotency record go in the insert)."""

    def __init__(self, size: int = 32):
        self.size = size
        self._free: list[tuple[int, int]] = []
        self._lock = asyncio.Lock()

    async def take(self, source: Source) -> tuple[int, int]:
        """(id, serial); a new block is read through `source` (a sequence is never rolled back anyway)."""
        if not self._free:
            async with self._lock:
                if not self._free:
                    async with connected(source) as conn:
                        rows = await (await driver_connection(conn)).fetch(_TAKE_IDS, self.size)
                    self._free = [(int(r[0]), int(r[1])) for r in reversed(rows)]
        return self._free.pop()


_TAKE_IDS = """
SELECT nextval(pg_get_serial_sequence('cases', 'id')), nextval('case_no_seq') FROM generate_series(1, $1)
ORDER BY 1
"""
CASE_IDS = IdBlocks(128)
"""The process's blocks of case ids."""

_NEW_CASE_FIELDS = (
    "id", "case_no", "source", "category_code", "urgency", "description", "lon", "lat", "input_crs", "accuracy_m",
    "address", "grid_code", "community_code", "street_code", "district_code", "component_code", "reporter_id",
    "captured_at", "received_at", "status", "stage", "deadline", "warn_at", "deadline_round", "stage_started_at",
    "flags", "actor_role", "payload",
)  # fmt: skip
"""The values of a planned case (`cases.filing.plan_case`) the insert reads."""
KEY_FIELDS = ("key_user", "key", "request_hash", "body")
"""The idempotency record a planned case may carry (`body` as text: the JSON answer)."""

# Planned cases (ids taken beforehand), each with its first timeline row and — when it carries a key — the stored
# answer of its idempotency key, in ONE statement. Keys are inserted in key order (two batches holding the same keys
# wait for each other instead of deadlocking); a case whose key was used before is not written. A batch must not
# hold one key twice (the writer keeps the second back).
_INSERT_CASES = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS r(
        id bigint, case_no text, source text, category_code text, urgency text, description text, lon float8,
        lat float8, input_crs text, accuracy_m float8, address text, grid_code text, community_code text,
        street_code text, district_code text, component_code text, reporter_id int, captured_at timestamptz,
        received_at timestamptz, status text, stage text, deadline timestamptz, warn_at timestamptz,
        deadline_round int, stage_started_at timestamptz, flags text[], actor_role text, payload jsonb,
        key_user int, key text, request_hash text, body text)
), k AS (
    INSERT INTO idempotency_key (user_id, key, request_hash, status_code, body)
    SELECT key_user, key, request_hash, 201, convert_to(body, 'UTF8') FROM r WHERE key IS NOT NULL
    ORDER BY key_user, key
    ON CONFLICT (user_id, key) DO NOTHING
    RETURNING user_id, key
), ok AS (
    SELECT r.* FROM r WHERE r.key IS NULL OR EXISTS (SELECT FROM k WHERE k.user_id = r.key_user AND k.key = r.key)
), c AS (
    INSERT INTO cases (id, case_no, source, category_code, urgency, description, geom, input_crs, accuracy_m,
        address, grid_code, community_code, street_code, district_code, component_code, reporter_id, captured_at,
        received_at, status, stage, deadline, warn_at, deadline_round, stage_started_at, flags, updated_at)
    SELECT id, case_no, source, category_code, urgency, description, ST_SetSRID(ST_MakePoint(lon, lat), 4326),
        input_crs, accuracy_m, address, grid_code, community_code, street_code, district_code, component_code,
        reporter_id, captured_at, received_at, status, stage, deadline, warn_at, deadline_round, stage_started_at,
        flags, received_at
    FROM ok ORDER BY id
    RETURNING id
), a AS (
    INSERT INTO case_activity (case_id, seq, action, from_status, to_status, actor_id, actor_role, payload, at)
    SELECT ok.id, 1, 'report', NULL, ok.status, ok.reporter_id, ok.actor_role, ok.payload, ok.received_at
    FROM c JOIN ok ON ok.id = c.id ORDER BY ok.id
)
SELECT id FROM c
"""


async def insert_cases(raw: Any, rows: list[dict[str, Any]]) -> set[int]:
    """Write planned cases — with their idempotency records when they carry a `key` — on the asyncpg connection
    `raw` in one statement; the ids written (a case whose key was used before is missing)."""
    fields = _NEW_CASE_FIELDS + KEY_FIELDS
    values = [{name: row.get(name) for name in fields} for row in rows]
    found = await raw.fetch(_INSERT_CASES, msgspec.json.encode(values).decode())
    return {int(r[0]) for r in found}


async def unit_parent_chain(conn: AsyncConnection, unit_code: str) -> tuple[bool, list[str]]:
    """(the unit exists and is active, its ancestors' codes nearest first)."""
    sql = """
    WITH RECURSIVE up AS (
        SELECT code, parent_code, active, 0 AS depth FROM unit WHERE code = :code
        UNION ALL SELECT u.code, u.parent_code, u.active, up.depth + 1 FROM unit u JOIN up ON u.code = up.parent_code
    ) SELECT code, active, depth FROM up ORDER BY depth
    """
    rows = (await conn.execute(text(sql), {"code": unit_code})).all()
    if not rows:
        return False, []
    return bool(rows[0].active), [r.code for r in rows[1:]]


async def attachments_of(conn: AsyncConnection, case_id: int, ids: list[int]) -> dict[int, str]:
    """id → kind of those attachments that belong to the case."""
    sql = "SELECT id, kind FROM attachment WHERE case_id = :case_id AND id = ANY(:ids)"
    rows = (await conn.execute(text(sql), {"case_id": case_id, "ids": ids})).all()
    return {int(r.id): str(r.kind) for r in rows}


async def link_attachments(conn: AsyncConnection, ids: list[int], activity_id: int) -> None:
    await conn.execute(
        text("UPDATE attachment SET activity_id = :a WHERE id = ANY(:ids)"), {"a": activity_id, "ids": ids}
    )


async def grid_checker(conn: AsyncConnection, grid_code: str | None, username: str | None) -> int | None:
    """The worker who checks: the named one (must be an active worker), else the first worker of the grid."""
    if username:
        sql = "SELECT id FROM app_user WHERE username = :u AND active AND 'worker' = ANY(roles)"
        found = await conn.scalar(text(sql), {"u": username})
        return int(found) if found is not None else None
    if grid_code is None:
        return None
    sql = """
    SELECT u.id FROM duty_grid_grid g JOIN duty_grid_worker w ON w.duty_grid_code = g.duty_grid_code
    JOIN app_user u ON u.id = w.user_id WHERE g.grid_code = :grid AND u.active ORDER BY u.username LIMIT 1
    """
    found = await conn.scalar(text(sql), {"grid": grid_code})
    return int(found) if found is not None else None
