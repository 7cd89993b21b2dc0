"""Demo routing: which classes dispatch themselves, and the routing rules of the demo county.

Manhole covers (C01xx) and subsurface events go out automatically (their component or pipeline names the
unit). Sanitation events go to the county seat's sanitation team in the county seat's street and to the
suburban team elsewhere, automatically; other event classes have a county-wide rule to the unit of their kind
(dispatcher confirms, except illegal street vending, which the enforcement brigade takes at once). Classes a
street office handles have no rule: the territory fallback sends them there.
"""

from __future__ import annotations

import json

import asyncpg

#: responsible_unit_kind of an event class → (unit, auto-dispatch)
KIND_UNITS = {
    "landscaping": ("U0102", False),
    "bureau": ("U0104", False),
    "traffic": ("U05", False),
    "telecom": ("U09", False),
    "municipal": ("U0103", False),
    "drainage": ("U0201", False),
    "water": ("U06", False),
    "gas": ("U07", False),
}
AUTO_CLASSES = ("E0501",)  # illegal street vending: the enforcement brigade is sent at once

RULES_SQL = """
INSERT INTO routing_rule (name, category_code, region_code, unit_code, priority, auto_dispatch, note)
SELECT k.name || ' · ' || r.name, k.code, r.code,
       CASE WHEN r.code = (SELECT min(code) FROM region WHERE level = 'street') THEN 'U010101' ELSE 'U010102' END,
       0, true, 'demo: sanitation by territory'
FROM category k CROSS JOIN region r
WHERE k.kind = 'event' AND k.responsible_unit_kind = 'sanitation' AND r.level = 'street';

INSERT INTO routing_rule (name, category_code, unit_code, priority, auto_dispatch, note)
SELECT k.name || ' → ' || u.name, k.code, m.unit, 0, m.auto OR k.code = ANY($2::text[]), 'demo: county-wide'
FROM category k
JOIN jsonb_to_recordset($1::jsonb) AS m(kind text, unit text, auto boolean) ON m.kind = k.responsible_unit_kind
JOIN unit u ON u.code = m.unit
WHERE k.kind = 'event' AND NOT k.subsurface;

INSERT INTO routing_rule (name, major_code, unit_code, priority, auto_dispatch, note)
VALUES ('公用设施 (C01) 无部件编码 → 市政设施维护中心', 'C01', 'U0103', -10, false,
        'demo: a public-facility report with no surveyed component');

UPDATE category SET auto_dispatch = (code LIKE 'C01%' OR subsurface);
"""


async def load_routing(conn: asyncpg.Connection) -> int:
    """Replace the routing rules with the demo rules (inside the caller's transaction); returns how many."""
    await conn.execute("DELETE FROM routing_rule")
    kinds = json.dumps([{"kind": k, "unit": u, "auto": a} for k, (u, a) in KIND_UNITS.items()])
    for statement in RULES_SQL.split(";\n"):
        if statement.strip():
            args = (kinds, list(AUTO_CLASSES)) if "$1" in statement else ()
            await conn.execute(statement, *args)
    return int(await conn.fetchval("SELECT count(*) FROM routing_rule"))
