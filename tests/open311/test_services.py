"""Open311 discovery, services and service definitions in both formats; unknown services, routes and formats."""

from __future__ import annotations

import re

import asyncpg
from litestar.testing import AsyncTestClient

from tests.open311.conftest import V2, errors_of, parse_xml

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


async def test_discovery_in_json_and_xml(client: AsyncTestClient) -> None:
    r = await client.get(f"{V2}/discovery.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert ISO.fullmatch(doc["changeset"]) and doc["contact"] and doc["key_service"]
    (endpoint,) = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and endpoint["formats"] == ["text/xml", "application/json"]
    r = await client.get(f"{V2}/discovery.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    root = parse_xml(r.content)
    assert root.tag == "discovery" and root.findtext("changeset") == doc["changeset"]
    assert [f.text for f in root.iterfind("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]


async def test_services_are_the_public_active_classes(client: AsyncTestClient, pg: asyncpg.Connection) -> None:
    public = [r["code"] for r in await pg.fetch("SELECT code FROM category WHERE public AND active ORDER BY code")]
    r = await client.get(f"{V2}/services.json")
    assert r.status_code == 200
    services = r.json()
    assert [s["service_code"] for s in services] == public and "C0116" not in public
    e0102 = next(s for s in services if s["service_code"] == "E0102")
    assert e0102["metadata"] is True and e0102["type"] == "realtime" and e0102["service_name"]
    assert set(e0102) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert next(s for s in services if s["service_code"] == "E0101")["metadata"] is False
    root = parse_xml((await client.get(f"{V2}/services.xml")).content)
    assert root.tag == "services" and [s.findtext("service_code") for s in root] == public
    assert root.find("service[service_code='E0102']/metadata").text == "true"  # type: ignore[union-attr]


async def test_a_service_definition_lists_the_class_questions(client: AsyncTestClient) -> None:
    r = await client.get(f"{V2}/services/E0401.json")
    assert r.status_code == 200
    definition = r.json()
    assert definition["service_code"] == "E0401"
    diameter, blocked = definition["attributes"]
    assert diameter == {
        "variable": True, "code": "diameter_m", "datatype": "number", "required": True,
        "datatype_description": None, "order": 1, "description": "塌陷直径（米）", "values": [],
    }  # fmt: skip
    assert blocked["order"] == 2 and blocked["datatype"] == "singlevaluelist"
    assert blocked["values"] == [{"key": "yes", "name": "是"}, {"key": "no", "name": "否"}]
    root = parse_xml((await client.get(f"{V2}/services/E0401.xml")).content)
    assert root.tag == "service_definition" and root.findtext("service_code") == "E0401"
    keys = [v.findtext("key") for v in root.iterfind("attributes/attribute[code='traffic_blocked']/values/value")]
    assert keys == ["yes", "no"]
    empty = (await client.get(f"{V2}/services/E0101.json")).json()
    assert empty == {"service_code": "E0101", "attributes": []}


async def test_unknown_and_non_public_services_are_404(client: AsyncTestClient) -> None:
    for code in ("E9999", "C0116", "e0102", "E01-02"):  # unknown; a class citizens may not report; malformed
        r = await client.get(f"{V2}/services/{code}.json")
        assert r.status_code == 404, code
        assert "no service" in errors_of(r)[0]["description"]
    r = await client.get(f"{V2}/services/C0116.xml")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/xml")
    root = parse_xml(r.content)
    assert root.tag == "errors" and root.findtext("error/code") == "404"
    assert "C0116" in (root.findtext("error/description") or "")


async def test_unknown_formats_and_routes_are_404_in_the_open311_format(client: AsyncTestClient) -> None:
    for path in ("services.csv", "discovery.yaml", "services/E0102.csv", "services/E0102", "requests.html",
                 "tokens/ABCDEFGHJK", "requests/123.txt"):  # fmt: skip
        r = await client.get(f"{V2}/{path}", headers={"Accept": "application/json"})
        assert r.status_code == 404, path
        errors_of(r)
    for path in ("nothing/here", "services", "", "services/E0102.json/x"):
        r = await client.get(f"{V2}/{path}")
        assert r.status_code == 404, path
        assert parse_xml(r.content).tag == "errors"  # XML: the spec's default
    r = await client.post(f"{V2}/services.json", data={"api_key": "x"})
    assert r.status_code == 404 and errors_of(r)[0]["code"] == 404


async def test_the_openapi_schema_documents_open311(client: AsyncTestClient) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/open311/v2/discovery.xml", "/open311/v2/services.json", "/open311/v2/services/{name}",
                 "/open311/v2/requests.json", "/open311/v2/requests/{name}", "/open311/v2/tokens/{name}",
                 "/api/v1/open311/keys", "/api/v1/open311/keys/{key_id}/revoke"):  # fmt: skip
        assert path in paths, path
    post = paths["/open311/v2/requests.json"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/x-www-form-urlencoded", "multipart/form-data", "application/json",
    }  # fmt: skip
    assert {"400", "403", "429"} <= set(post["responses"])
    listed = {p["name"] for p in paths["/open311/v2/requests.json"]["get"]["parameters"]}
    assert {"start_date", "end_date", "status", "service_code", "page_size", "bbox", "radius", "extensions"} <= listed
    assert not any("{rest}" in p for p in paths)
