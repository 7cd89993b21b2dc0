"""Response structs of the class dictionary."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from grid_mgmt.lib.schemas import Schema

Stage = Literal["verify", "register", "dispatch", "handle", "check"]
Urgency = Literal["urgent", "fairly_urgent", "normal"]
LimitUnit = Literal["work_min", "work_day", "min"]


class TimeLimit(Schema):
    """A time limit: working minutes, working days, or natural minutes."""

    value: int
    unit: LimitUnit


class CategoryRead(Schema):
    """A minor class (小类) of component or event with its criteria, time limits and routing hints."""

    code: str
    kind: Literal["component", "event"]
    major_code: str
    major_name: str
    minor_code: str
    name: str
    name_en: str
    standard_ref: str | None
    register_criteria: str | None
    closure_criteria: str | None
    geometry_type: str | None
    responsible_unit_kind: str | None
    time_limits: dict[Stage, dict[Urgency, TimeLimit]]
    duplicate_radius_m: int
    duplicate_window_min: int
    public: bool
    subsurface: bool
    pipeline_kinds: list[str]
    open311_attributes: list[dict[str, Any]]
    active: bool
    updated_at: dt.datetime
