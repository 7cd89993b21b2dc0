"""create_app(): the one wiring file; it collects each feature's routes and the shared resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from redis.asyncio import Redis

from grid_mgmt.accounts.controllers import AdminUserController, AuthController
from grid_mgmt.accounts.deps import account_resources
from grid_mgmt.accounts.middleware import AuthMiddleware
from grid_mgmt.cases.controllers import CaseController, action_router
from grid_mgmt.cases.encoded import EncodedCases
from grid_mgmt.cases.search import CASE_LIST_ROUTES
from grid_mgmt.categories.controllers import CategoryController
from grid_mgmt.components.controllers import ComponentController
from grid_mgmt.db.engine import make_engine
from grid_mgmt.db.listpool import ListPools
from grid_mgmt.intake.controllers import AttachmentController, IntakeController
from grid_mgmt.lib.deps import provide_db, provide_geo_list, provide_item_list, provide_settings
from grid_mgmt.lib.errors import EXCEPTION_HANDLERS
from grid_mgmt.lib.jobs import job_queue
from grid_mgmt.media.controllers import ThumbnailController
from grid_mgmt.notify.controllers import ROUTES as NOTIFY_ROUTES
from grid_mgmt.open311.controllers import ROUTES as OPEN311_ROUTES
from grid_mgmt.patrols.controllers import PatrolController
from grid_mgmt.pipelines.controllers import PipelineController
from grid_mgmt.public.controllers import ROUTES as PUBLIC_ROUTES
from grid_mgmt.regions.controllers import GridController, RegionController
from grid_mgmt.regions.locator import GridLocator
from grid_mgmt.routing.controllers import ROUTES as ROUTING_ROUTES
from grid_mgmt.settings import Settings, get_settings
from grid_mgmt.sla.controllers import CalendarController
from grid_mgmt.system.controllers import SystemController
from grid_mgmt.system.docs import docs_assets_router, openapi_config
from grid_mgmt.tasks.controllers import TaskController
from grid_mgmt.units.controllers import UnitController

ROUTES = [
    SystemController,
    AuthController,
    AdminUserController,
    CaseController,
    TaskController,
    IntakeController,
    AttachmentController,
    ThumbnailController,
    RegionController,
    GridController,
    ComponentController,
    PipelineController,
    UnitController,
    CategoryController,
    PatrolController,
    *ROUTING_ROUTES,
    CalendarController,
    *NOTIFY_ROUTES,
    *OPEN311_ROUTES,
    *PUBLIC_ROUTES,
]


def create_app(settings: Settings | None = None) -> Litestar:
    """The API; `settings` defaults to the environment (tests pass their own)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        engine = make_engine(settings)
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        arq = job_queue(settings.redis_url)
        locator = GridLocator(engine, settings.asyncpg_dsn) if settings.locate_cache else None
        list_pools = ListPools.of(settings)
        app.state.update(
            engine=engine, list_pools=list_pools, redis=redis, arq=arq, locator=locator, settings=settings,
            case_cache=EncodedCases(settings.case_cache_rows),
        )  # fmt: skip
        if locator is not None:
            await locator.start()
        try:
            yield
        finally:
            if locator is not None:
                await locator.stop()
            await redis.aclose()
            await arq.aclose()
            await engine.dispose()
            await list_pools.close()

    return Litestar(
        # the case list: plain handlers, after IntakeController which shares the path /api/v1/cases
        route_handlers=[*ROUTES, action_router(), *CASE_LIST_ROUTES, docs_assets_router()],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "geo_list": Provide(provide_geo_list),
            "item_list": Provide(provide_item_list),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        middleware=[AuthMiddleware()],
        lifespan=[resources, account_resources],
        debug=settings.debug,
    )
