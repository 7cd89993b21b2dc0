"""HTTP endpoints of the pipeline layer."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from grid_mgmt.lib.deps import DB, GeoList
from grid_mgmt.lib.layers import read_feature
from grid_mgmt.lib.openapi import CODE, responses
from grid_mgmt.lib.schemas import Feature, FeatureCollection
from grid_mgmt.pipelines.repository import PIPELINES
from grid_mgmt.pipelines.schemas import PipelineKind, PipelineProperties


class PipelineController(Controller):
    """Underground pipelines: water, storm, sewage, gas, heat, power, telecom, industrial."""

    path = "/api/v1/pipelines"
    tags = ["city"]

    @get("/", summary="List pipeline segments", responses=responses(400, 422))
    async def list_pipelines(
        self,
        geo_list: GeoList,
        kind: Annotated[PipelineKind | None, Parameter(description="pipeline kind")] = None,
        unit_code: Annotated[str | None, Parameter(description="owner or maintainer unit")] = None,
        material: Annotated[str | None, Parameter(description="material")] = None,
    ) -> FeatureCollection[PipelineProperties]:
        return await geo_list.features(PIPELINES, kind=kind, unit_code=unit_code, material=material)

    @get("/{code:str}", summary="One pipeline segment", responses=responses(404))
    async def get_pipeline(self, db: DB, code: Annotated[str, CODE]) -> Feature[PipelineProperties]:
        return await read_feature(db, PIPELINES, code)
