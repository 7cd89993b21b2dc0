"""OpenAPI config whose Swagger UI loads its scripts from this server, so the docs work offline."""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from swagger_ui_bundle import swagger_ui_path

from grid_mgmt import __version__

ASSETS = "/docs-assets"

DESCRIPTION = """
Backend of a city's grid-based urban management (数字化城市管理 / 网格化管理).

* City layers are GeoJSON FeatureCollections: the record's fields (with `code`) are in `properties`.
* Lists page by keyset: `limit` (default 100, at most 1000) and `cursor` (the previous page's `next_cursor`).
* `bbox=minlon,minlat,maxlon,maxlat` (WGS84) filters by geometry.
* Errors are `{"status_code", "detail", "extra"}`: 400 malformed parameter, 404 no such record,
  422 well-formed but unacceptable (NaN, out of range, swapped lon/lat, min > max …), 503 a dependency down.
"""


def openapi_config() -> OpenAPIConfig:
    """Docs at /docs (Swagger UI, offline) and the schema at /docs/openapi.json."""
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
    )
    return OpenAPIConfig(
        title="grid-mgmt",
        version=__version__,
        description=DESCRIPTION,
        path="/docs",
        render_plugins=[swagger],
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(
                    type="http", scheme="bearer", bearer_format="JWT", description="POST /api/v1/auth/login"
                )
            }
        ),
        security=[{"BearerToken": []}],
    )


def docs_assets_router() -> ControllerRouterHandler:
    """The Swagger UI files shipped in the swagger-ui-bundle package."""
    return create_static_files_router(
        path=ASSETS, directories=[swagger_ui_path], include_in_schema=False, name="docs-assets"
    )
