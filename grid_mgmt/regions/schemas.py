"""Response structs of the regions and grids endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from grid_mgmt.lib.schemas import Schema


class RegionProperties(Schema):
    """An administrative area: district (6 digits), street/town (9) or community (12)."""

    code: str
    name: str
    level: Literal["district", "street", "community"]
    parent_code: str | None
    area_m2: float


class GridProperties(Schema):
    """A unit grid of about 10,000 m² and the areas it belongs to."""

    code: str
    name: str
    community_code: str
    street_code: str
    district_code: str
    area_m2: float
    valid_from: dt.date
    valid_to: dt.date | None
    land_use: str | None
    management_grade: str | None
    responsible_body: str | None
    duty_grid_code: str | None


class NamedCode(Schema):
    """A code and its name."""

    code: str
    name: str


class DutyWorker(Schema):
    """A grid worker assigned to a duty grid."""

    username: str
    display_name: str
    phone: str | None


class DutyGridRead(Schema):
    """A duty grid (责任网格) and the workers who patrol it."""

    code: str
    name: str
    workers: list[DutyWorker]


class LocateRead(Schema):
    """Where a point falls: its unit grid, the community, street and district above it, and who patrols it."""

    lon: float
    lat: float
    grid: NamedCode
    community: NamedCode
    street: NamedCode | None
    district: NamedCode | None
    duty_grid: DutyGridRead | None


class Place(msgspec.Struct, frozen=True):
    """Where a reported point falls, as a case records it: the point (WGS84) and the codes of its unit grid,
    community, street and district (no names, no duty workers: what `locate` adds for people)."""

    lon: float
    lat: float
    grid_code: str
    community_code: str
    street_code: str | None
    district_code: str | None

    @classmethod
    def of(cls, read: LocateRead) -> Place:
        return cls(
            read.lon, read.lat, read.grid.code, read.community.code, read.street.code if read.street else None,
            read.district.code if read.district else None,
        )  # fmt: skip
