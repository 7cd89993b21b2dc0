"""/health and the offline docs."""

from __future__ import annotations

import os
import re
from dataclasses import replace

from litestar.testing import AsyncTestClient

from grid_mgmt.app import create_app
from grid_mgmt.db.migrate import head_revision
from grid_mgmt.settings import Settings


async def test_health_reports_postgis_redis_and_migration(client: AsyncTestClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["postgis"]["detail"].startswith("PostGIS 3")
    assert body["redis"]["ok"] and body["migration"]["ok"]
    assert head_revision() in body["migration"]["detail"]
    cache = body["case_cache"]
    assert cache["pid"] == os.getpid() and cache["capacity"] == Settings().case_cache_rows
    assert cache["entries"] <= cache["capacity"] and min(cache.values()) >= 0


async def test_health_is_503_naming_what_is_down(settings) -> None:
    broken = replace(settings, redis_url="redis://127.0.0.1:1/0", locate_cache=False)
    async with AsyncTestClient(app=create_app(broken)) as c:
        r = await c.get("/health")
    assert r.status_code == 503
    assert r.json()["down"] == ["redis"]
    broken = replace(settings, database_url=settings.database_url.rsplit("/", 1)[0] + "/no_such_db", locate_cache=False)
    async with AsyncTestClient(app=create_app(broken)) as c:
        r = await c.get("/health")
    assert r.status_code == 503
    assert r.json()["down"] == ["postgis", "migration"]
    assert "database unreachable" in r.json()["postgis"]["detail"]


async def test_docs_work_offline(client: AsyncTestClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    external = [u for u in re.findall(r'(?:src|href)="([^"]+)"', page.text) if u.startswith("http")]
    assert external == [], external
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page.text):
        assert (await client.get(asset)).status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text


async def test_openapi_documents_every_route_and_its_errors(client: AsyncTestClient) -> None:
    spec = (await client.get("/docs/openapi.json")).json()
    paths = spec["paths"]
    for layer in ("regions", "grids", "components", "pipelines", "units", "categories"):
        assert "404" in paths[f"/api/v1/{layer}/{{code}}"]["get"]["responses"]
        assert "422" in paths[f"/api/v1/{layer}"]["get"]["responses"]
    locate = paths["/api/v1/grids/locate"]["get"]["responses"]
    assert {"200", "400", "404", "422"} <= set(locate)
    assert "503" in paths["/health"]["get"]["responses"]
