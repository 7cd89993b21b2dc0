"""HTTP endpoints of the pipeline layer."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.layers import read_collection, read_feature
from grid_mgmt.lib.openapi import BBOX, CODE, CURSOR, LIMIT, responses
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
        db: DB,
        settings: AppSettings,
        limit: LIMIT = None,
        cursor: CURSOR = None,
        bbox: BBOX = None,
        kind: Annotated[PipelineKind | None, Parameter(description="pipeline kind")] = None,
        unit_code: Annotated[str | None, Parameter(description="owner or maintainer unit")] = None,
        material: Annotated[str | None, Parameter(description="material")] = None,
    ) -> FeatureCollection[PipelineProperties]:
        filters = {"kind": kind, "unit_code": unit_code, "material": material}
        return await read_collection(
            db, PIPELINES, filters=filters, bbox=bbox, cursor=cursor, limit=limit, settings=settings
        )

    @get("/{code:str}", summary="One pipeline segment", responses=responses(404))
    async def get_pipeline(self, db: DB, code: Annotated[str, CODE]) -> Feature[PipelineProperties]:
        return await read_feature(db, PIPELINES, code)
