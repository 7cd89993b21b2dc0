"""HTTP endpoints of the component layer."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter

from grid_mgmt.components.repository import COMPONENTS
from grid_mgmt.components.schemas import ComponentProperties
from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.layers import read_collection, read_feature
from grid_mgmt.lib.openapi import BBOX, CODE, CURSOR, LIMIT, responses
from grid_mgmt.lib.schemas import Feature, FeatureCollection

Status = Literal["intact", "damaged", "missing", "abandoned", "removed"]


class ComponentController(Controller):
    """Components (管理部件) with their class, grid and supervising/owner/maintainer units."""

    path = "/api/v1/components"
    tags = ["city"]

    @get("/", summary="List components", responses=responses(400, 422))
    async def list_components(
        self,
        db: DB,
        settings: AppSettings,
        limit: LIMIT = None,
        cursor: CURSOR = None,
        bbox: BBOX = None,
        category_code: Annotated[str | None, Parameter(description="class, e.g. C0101")] = None,
        major_code: Annotated[str | None, Parameter(description="major class, e.g. 01")] = None,
        status: Annotated[Status | None, Parameter(description="condition")] = None,
        grid_code: Annotated[str | None, Parameter(description="15-digit unit grid code")] = None,
        community_code: Annotated[str | None, Parameter(description="12-digit community code")] = None,
        unit_code: Annotated[str | None, Parameter(description="supervising, owner or maintainer unit")] = None,
    ) -> FeatureCollection[ComponentProperties]:
        filters = {
            "category_code": category_code,
            "major_code": major_code,
            "status": status,
            "grid_code": grid_code,
            "community_code": community_code,
            "unit_code": unit_code,
        }
        return await read_collection(
            db, COMPONENTS, filters=filters, bbox=bbox, cursor=cursor, limit=limit, settings=settings
        )

    @get("/{code:str}", summary="One component", responses=responses(404))
    async def get_component(self, db: DB, code: Annotated[str, CODE]) -> Feature[ComponentProperties]:
        return await read_feature(db, COMPONENTS, code)
