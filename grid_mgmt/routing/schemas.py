"""Routing candidates and decisions, routing rules (create / patch / read)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from geo.geojson import MultiPolygon, Polygon
from grid_mgmt.lib.schemas import Schema

Code = Annotated[str, msgspec.Meta(min_length=2, max_length=32)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Priority = Annotated[int, msgspec.Meta(ge=-1000, le=1000)]


class CandidateRead(Schema):
    """A unit that could handle the case, and why: `source` is component, pipeline, rule or territory."""

    rank: int
    source: str
    unit_code: str
    unit_name: str
    reason: dict[str, Any]
    distance_m: float | None = None
    auto_dispatch: bool = False


class RoutingRead(Schema):
    """The stored decision of the routing job (null until it ran) and the candidates as they stand now."""

    case_id: int
    routed_at: dt.datetime | None
    decision: dict[str, Any] | None
    candidates: list[CandidateRead]


class RuleCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A routing rule: class (a minor `category_code` or a `major_code`, or neither = every class) × area
    (a `region_code`, a drawn `area` polygon in WGS84, or neither = the whole city) → `unit_code`."""

    name: Name
    unit_code: Code
    category_code: str | None = None
    major_code: Annotated[str, msgspec.Meta(pattern=r"^[CE][0-9]{2}$")] | None = None
    region_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")] | None = None
    area: Polygon | MultiPolygon | None = None
    priority: Priority = 0
    auto_dispatch: bool = False
    active: bool = True
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class RulePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Change a rule: fields left out stay; `null` clears an optional field."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    unit_code: Code | msgspec.UnsetType = msgspec.UNSET
    category_code: str | msgspec.UnsetType | None = msgspec.UNSET
    major_code: Annotated[str, msgspec.Meta(pattern=r"^[CE][0-9]{2}$")] | msgspec.UnsetType | None = msgspec.UNSET
    region_code: (
        Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")] | msgspec.UnsetType | None
    ) = msgspec.UNSET
    area: Polygon | MultiPolygon | msgspec.UnsetType | None = msgspec.UNSET
    priority: Priority | msgspec.UnsetType = msgspec.UNSET
    auto_dispatch: bool | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    note: Annotated[str, msgspec.Meta(max_length=1000)] | msgspec.UnsetType | None = msgspec.UNSET


class RuleRead(Schema):
    id: int
    name: str
    category_code: str | None
    major_code: str | None
    region_code: str | None
    area: MultiPolygon | None
    unit_code: str
    priority: int
    auto_dispatch: bool
    active: bool
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class RulePage(Schema):
    items: list[RuleRead]
    next_cursor: str | None = None
