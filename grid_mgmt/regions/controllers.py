"""HTTP endpoints of administrative areas and unit grids, including point location."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from grid_mgmt.lib.deps import DB, GeoList
from grid_mgmt.lib.layers import read_feature
from grid_mgmt.lib.openapi import CODE, responses
from grid_mgmt.lib.schemas import Feature, FeatureCollection
from grid_mgmt.regions import service
from grid_mgmt.regions.repository import GRIDS, REGIONS
from grid_mgmt.regions.schemas import GridProperties, LocateRead, RegionProperties


class RegionController(Controller):
    """District, streets/towns and communities (GB/T 2260 codes extended to 9 and 12 digits)."""

    path = "/api/v1/regions"
    tags = ["city"]

    @get("/", summary="List administrative areas", responses=responses(400, 422))
    async def list_regions(
        self,
        geo_list: GeoList,
        level: Annotated[Literal["district", "street", "community"] | None, Parameter(description="level")] = None,
        parent_code: Annotated[str | None, Parameter(description="children of this area")] = None,
        name: Annotated[str | None, Parameter(description="part of the name")] = None,
    ) -> FeatureCollection[RegionProperties]:
        return await geo_list.features(REGIONS, level=level, parent_code=parent_code, name=name)

    @get("/{code:str}", summary="One administrative area", responses=responses(404))
    async def get_region(self, db: DB, code: Annotated[str, CODE]) -> Feature[RegionProperties]:
        return await read_feature(db, REGIONS, code)


class GridController(Controller):
    """Unit grids (单元网格, about 10,000 m², 15-digit codes) and locating a point."""

    path = "/api/v1/grids"
    tags = ["city"]

    @get("/", summary="List unit grids", responses=responses(400, 422))
    async def list_grids(
        self,
        geo_list: GeoList,
        community_code: Annotated[str | None, Parameter(description="12-digit community code")] = None,
        street_code: Annotated[str | None, Parameter(description="9-digit street code")] = None,
        district_code: Annotated[str | None, Parameter(description="6-digit district code")] = None,
        duty_grid_code: Annotated[str | None, Parameter(description="duty grid")] = None,
        land_use: Annotated[str | None, Parameter(description="land use")] = None,
        management_grade: Annotated[str | None, Parameter(description="management grade")] = None,
    ) -> FeatureCollection[GridProperties]:
        return await geo_list.features(
            GRIDS,
            community_code=community_code,
            street_code=street_code,
            district_code=district_code,
            duty_grid_code=duty_grid_code,
            land_use=land_use,
            management_grade=management_grade,
        )

    @get(
        "/locate",
        summary="Which unit grid, community, street, district and duty grid a point is in",
        description="A point on an edge or vertex shared by grids gets the grid with the smallest code.",
        responses=responses(400, 404, 422),
        media_type=MediaType.JSON,
    )
    async def locate(
        self,
        state: State,
        lon: Annotated[float, Parameter(description="longitude in the given crs")],
        lat: Annotated[float, Parameter(description="latitude in the given crs")],
        crs: Annotated[
            Literal["wgs84", "gcj02", "bd09"], Parameter(description="coordinate system of lon/lat")
        ] = "wgs84",
    ) -> Response[LocateRead]:
        body = await service.locate(state.engine, state.get("locator"), lon, lat, crs)
        return Response(content=body, media_type=MediaType.JSON)  # type: ignore[arg-type]  # pre-encoded

    @get("/{code:str}", summary="One unit grid", responses=responses(404))
    async def get_grid(self, db: DB, code: Annotated[str, CODE]) -> Feature[GridProperties]:
        return await read_feature(db, GRIDS, code)
