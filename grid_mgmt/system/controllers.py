"""GET /health."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from grid_mgmt.system import service
from grid_mgmt.system.schemas import HealthRead


class SystemController(Controller):
    """Liveness and readiness of the service and its dependencies."""

    path = "/health"
    tags = ["system"]

    @get(
        "/",
        summary="PostGIS version, Redis reachable, migration at head",
        responses={503: ResponseSpec(data_container=HealthRead, description="a dependency is down (see `down`)")},
        cache=False,
    )
    async def health(self, state: State) -> Response[HealthRead]:
        report = await service.health(state.engine, state.redis, state.get("locator"), state.get("case_cache"))
        return Response(report, status_code=503 if report.down else 200)
