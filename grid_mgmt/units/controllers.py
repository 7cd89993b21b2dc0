"""HTTP endpoints of the handling units."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from grid_mgmt.lib.deps import DB, GeoList
from grid_mgmt.lib.layers import read_feature
from grid_mgmt.lib.openapi import CODE, responses
from grid_mgmt.lib.schemas import Feature, FeatureCollection
from grid_mgmt.units.repository import UNITS
from grid_mgmt.units.schemas import UnitProperties


class UnitController(Controller):
    """Handling units in their 3-level tree; the geometry is the optional service area."""

    path = "/api/v1/units"
    tags = ["city"]

    @get("/", summary="List handling units", responses=responses(400, 422))
    async def list_units(
        self,
        geo_list: GeoList,
        kind: Annotated[str | None, Parameter(description="unit kind, e.g. water, street_office")] = None,
        level: Annotated[int | None, Parameter(description="1, 2 or 3", ge=1, le=3)] = None,
        parent_code: Annotated[str | None, Parameter(description="children of this unit")] = None,
        region_code: Annotated[str | None, Parameter(description="street a street office answers for")] = None,
        active: Annotated[bool | None, Parameter(description="only active or inactive units")] = None,
    ) -> FeatureCollection[UnitProperties]:
        return await geo_list.features(
            UNITS, kind=kind, level=level, parent_code=parent_code, region_code=region_code, active=active
        )

    @get("/{code:str}", summary="One handling unit", responses=responses(404))
    async def get_unit(self, db: DB, code: Annotated[str, CODE]) -> Feature[UnitProperties]:
        return await read_feature(db, UNITS, code)
