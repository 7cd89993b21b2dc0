"""HTTP endpoints of the component layer."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter

from grid_mgmt.components.repository import COMPONENTS
from grid_mgmt.components.schemas import ComponentProperties
from grid_mgmt.lib.deps import DB, GeoList
from grid_mgmt.lib.layers import read_feature
from grid_mgmt.lib.openapi import CODE, responses
from grid_mgmt.lib.schemas import Feature, FeatureCollection

Status = Literal["intact", "damaged", "missing", "abandoned", "removed"]


class ComponentController(Controller):
    """Components (管理部件) with their class, grid and supervising/owner/maintainer units."""

    path = "/api/v1/components"
    tags = ["city"]

    @get("/", summary="List components", responses=responses(400, 422))
    async def list_components(
        self,
        geo_list: GeoList,
        category_code: Annotated[str | None, Parameter(description="class, e.g. C0101")] = None,
        major_code: Annotated[str | None, Parameter(description="major class, e.g. 01")] = None,
        status: Annotated[Status | None, Parameter(description="condition")] = None,
        grid_code: Annotated[str | None, Parameter(description="15-digit unit grid code")] = None,
        community_code: Annotated[str | None, Parameter(description="12-digit community code")] = None,
        unit_code: Annotated[str | None, Parameter(description="supervising, owner or maintainer unit")] = None,
    ) -> FeatureCollection[ComponentProperties]:
        return await geo_list.features(
            COMPONENTS,
            category_code=category_code,
            major_code=major_code,
            status=status,
            grid_code=grid_code,
            community_code=community_code,
            unit_code=unit_code,
        )

    @get("/{code:str}", summary="One component", responses=responses(404))
    async def get_component(self, db: DB, code: Annotated[str, CODE]) -> Feature[ComponentProperties]:
        return await read_feature(db, COMPONENTS, code)
