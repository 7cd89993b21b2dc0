"""The class dictionary (component and event classes) read from seeds/data/categories.json and checked."""

from __future__ import annotations

import copy
import re
from typing import Any, get_args

from grid_mgmt.categories.repository import WRITABLE
from grid_mgmt.categories.schemas import LimitUnit, Stage, Urgency
from grid_mgmt.db.models.component import PIPELINE_KINDS
from grid_mgmt.db.models.unit import UNIT_KINDS
from seeds.params import load_json

STAGES: tuple[str, ...] = get_args(Stage)
URGENCIES: tuple[str, ...] = get_args(Urgency)
LIMIT_UNITS: tuple[str, ...] = get_args(LimitUnit)
GEOMETRY_TYPES = ("point", "line", "polygon")
OPEN311_DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")

#: Columns of the category table the seed writes (the rest keep their defaults).
COLUMNS = WRITABLE

_CODE = re.compile(r"[CE][0-9]{4,5}")


def load_categories() -> list[dict[str, Any]]:
    """Every class, validated; a fresh copy the caller may change."""
    categories: list[dict[str, Any]] = copy.deepcopy(load_json("categories.json"))
    problems = validate_categories(categories)
    if problems:
        raise ValueError("seeds/data/categories.json is inconsistent:\n  " + "\n  ".join(problems))
    return categories


def validate_categories(categories: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the class dictionary (empty when it matches the category table's rules)."""
    problems: list[str] = []
    seen: set[str] = set()
    for cat in categories:
        code = str(cat.get("code"))
        where = f"{code}:"
        if set(cat) != set(COLUMNS):
            problems.append(f"{where} fields {sorted(set(cat) ^ set(COLUMNS))} missing or unexpected")
            continue
        if code in seen:
            problems.append(f"{where} duplicate code")
        seen.add(code)
        kind, minor = cat["kind"], cat["minor_code"]
        if not _CODE.fullmatch(code) or code[1:] != minor or code[0] != {"component": "C", "event": "E"}.get(kind):
            problems.append(f"{where} code must be C/E + minor code and match kind {kind!r}")
        if minor[:2] != cat["major_code"]:
            problems.append(f"{where} minor code {minor} is not in major class {cat['major_code']}")
        if (kind == "component") != (cat["geometry_type"] in GEOMETRY_TYPES) or (
            kind == "event" and cat["geometry_type"] is not None
        ):
            problems.append(f"{where} geometry_type {cat['geometry_type']!r} does not suit a {kind}")
        if cat["responsible_unit_kind"] not in UNIT_KINDS:
            problems.append(f"{where} responsible_unit_kind {cat['responsible_unit_kind']!r} is not a unit kind")
        pipes = cat["pipeline_kinds"]
        if any(p not in PIPELINE_KINDS for p in pipes) or bool(pipes) != cat["subsurface"]:
            problems.append(f"{where} pipeline_kinds {pipes} must be pipeline kinds, present exactly when subsurface")
        if cat["duplicate_radius_m"] < 0 or cat["duplicate_window_min"] < 0:
            problems.append(f"{where} duplicate radius and window must not be negative")
        problems += [f"{where} {p}" for p in _check_limits(cat["time_limits"])]
        for attr in cat["open311_attributes"]:
            if (
                not {"code", "datatype", "required", "description"} <= set(attr)
                or attr["datatype"] not in OPEN311_DATATYPES
            ):
                problems.append(f"{where} open311 attribute {attr.get('code')!r} is malformed")
            elif attr["datatype"].endswith("valuelist") and not attr.get("values"):
                problems.append(f"{where} open311 attribute {attr['code']!r} lists no values")
    return problems


def _check_limits(limits: Any) -> list[str]:
    if not isinstance(limits, dict) or set(limits) != set(STAGES):
        return [f"time_limits must have exactly the stages {', '.join(STAGES)}"]
    out = []
    for stage in STAGES:
        per = limits[stage]
        if not isinstance(per, dict) or set(per) != set(URGENCIES):
            out.append(f"time_limits.{stage} must have exactly the urgencies {', '.join(URGENCIES)}")
            continue
        for urgency in URGENCIES:
            limit = per[urgency]
            ok = isinstance(limit, dict) and set(limit) == {"value", "unit"}
            if not ok or limit["unit"] not in LIMIT_UNITS or not isinstance(limit["value"], int) or limit["value"] <= 0:
                out.append(
                    f"time_limits.{stage}.{urgency} {limit!r} must be {{value: positive int, unit: {LIMIT_UNITS}}}"
                )
    return out


def limit_minutes(limit: dict[str, Any], workday_minutes: int = 480) -> int:
    """A rough length of a limit in minutes (a working day counted as `workday_minutes`), for comparisons."""
    value = int(limit["value"])
    return value * workday_minutes if limit["unit"] == "work_day" else value
