"""Handling units: fixed bureaus and companies from data, plus a street office per street and community offices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grid_mgmt.imports.service import LayerData
from seeds.params import load_json
from seeds.regions import Admin

#: Sanitation teams: the first serves the county seat, the second every other street.
SANITATION_TEAMS = ("U010101", "U010102")


@dataclass(frozen=True)
class Units:
    """The unit layer plus lookups the component and user generators need."""

    layer: LayerData
    codes: list[str]
    street_office: list[str]  # per street index
    community_office: dict[int, str]  # community index -> unit code (communities of the county seat)


def street_office_code(street_code: str) -> str:
    """S + the 3-digit street serial, e.g. S100 for 城关镇 (420323100)."""
    return "S" + street_code[6:]


def community_office_code(community_code: str) -> str:
    """C + street serial + community serial, e.g. C100001."""
    return "C" + community_code[6:]


def build_units(admin: Admin) -> Units:
    """Level-1 bureaus and companies, their departments and teams; street offices (level 1) with the
    offices of the county seat's communities under them (level 2). Parents come before children."""
    data = load_json("units.json")
    fixed: list[dict[str, Any]] = data["units"]
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    for u in sorted(fixed, key=lambda u: len(u["code"])):  # U01 before U0101 before U010101
        level = (len(u["code"]) - 1) // 2
        rows.append({**u, "level": level, "region_code": None})
        geoms.append(None)
    street_office = []
    for s, street in enumerate(admin.streets):
        suffix = "人民政府" if street.name.endswith(("镇", "乡")) else "办事处"
        code = street_office_code(street.code)
        street_office.append(code)
        rows.append(
            {
                "code": code,
                "name": street.name + suffix,
                "kind": "street_office",
                "parent_code": None,
                "level": 1,
                "region_code": street.code,
            }
        )
        geoms.append(admin.street_geoms[s])
    community_office: dict[int, str] = {}
    for j, community in enumerate(admin.communities):
        if community.street != 0:
            continue
        code = community_office_code(community.code)
        community_office[j] = code
        body = "村民委员会" if community.village else "居民委员会"
        rows.append(
            {
                "code": code,
                "name": admin.streets[0].name + community.name + body,
                "kind": "community_office",
                "parent_code": street_office[0],
                "level": 2,
                "region_code": community.code,
            }
        )
        geoms.append(admin.community_geoms[j])
    columns = {
        name: [r[name] for r in rows] for name in ("code", "name", "kind", "level", "parent_code", "region_code")
    }
    geometries = np.empty(len(geoms), dtype=object)
    geometries[:] = geoms
    return Units(
        layer=LayerData(geometries=geometries, columns=dict(columns)),
        codes=columns["code"],
        street_office=street_office,
        community_office=community_office,
    )
