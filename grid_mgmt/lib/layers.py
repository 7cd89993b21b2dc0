"""One reader for every city layer: filters, bbox, keyset pages, GeoJSON straight from PostGIS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from geo.validate import parse_bbox
from grid_mgmt.lib.errors import NotFound
from grid_mgmt.lib.pagination import check_limit, decode_cursor, encode_cursor
from grid_mgmt.lib.schemas import Feature, FeatureCollection, ItemPage
from grid_mgmt.lib.sql import text
from grid_mgmt.settings import Settings

P = TypeVar("P", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True)
class Filter:
    """A query parameter and the SQL condition it adds (bound as `:param`)."""

    param: str
    sql: str


@dataclass(frozen=True, slots=True)
class LayerSpec(Generic[P]):
    """How a layer is read: its table, key, geometry column, property struct and filters."""

    table: str
    properties: type[P]
    columns: Mapping[str, str]
    """property name → SQL expression (over the table aliased `t`)."""
    filters: Sequence[Filter] = ()
    geom: str | None = "t.geom"
    key: str = "t.code"
    joins: str = ""
    label: str = "record"
    extra_where: Sequence[str] = field(default_factory=tuple)


@dataclass(slots=True)
class Page(Generic[P]):
    """One page of a layer: (code, GeoJSON geometry text, properties) and the cursor of the next page."""

    rows: list[tuple[str, str | None, P]]
    next_cursor: str | None


def _select(spec: LayerSpec[P]) -> str:
    cols = ", ".join(f"{expr} AS {name}" for name, expr in spec.columns.items())
    geom = f"ST_AsGeoJSON({spec.geom}, 7)" if spec.geom else "NULL"
    return f"SELECT {spec.key} AS _key, {geom} AS _geojson, {cols} FROM {spec.table} t {spec.joins}"


def _to_props(spec: LayerSpec[P], mapping: Any) -> P:
    return msgspec.convert({k: mapping[k] for k in spec.columns}, spec.properties, from_attributes=False)


async def list_page(
    engine: AsyncEngine,
    spec: LayerSpec[P],
    *,
    filters: Mapping[str, Any],
    bbox: tuple[float, float, float, float] | None,
    after: str | None,
    limit: int,
) -> Page[P]:
    """Rows ordered by code after `after`; only filters whose value is not None apply."""
    where = list(spec.extra_where)
    params: dict[str, Any] = {"limit": limit + 1}
    for flt in spec.filters:
        value = filters.get(flt.param)
        if value is not None:
            where.append(flt.sql)
            params[flt.param] = value
    if bbox is not None and spec.geom:
        where.append(
            f"{spec.geom} && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"
            f" AND ST_Intersects({spec.geom}, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326))"
        )
        params.update(minx=bbox[0], miny=bbox[1], maxx=bbox[2], maxy=bbox[3])
    if after is not None:
        where.append(f"{spec.key} > :after")
        params["after"] = after
    sql = _select(spec)
    if where:
        sql += " WHERE " + " AND ".join(f"({w})" for w in where)
    sql += f" ORDER BY {spec.key} LIMIT :limit"
    async with engine.connect() as conn:
        records = (await conn.execute(text(sql), params)).mappings().all()
    more = len(records) > limit
    records = records[:limit]
    rows = [(r["_key"], r["_geojson"], _to_props(spec, r)) for r in records]
    return Page(rows=rows, next_cursor=encode_cursor(rows[-1][0]) if more and rows else None)


async def get_one(engine: AsyncEngine, spec: LayerSpec[P], code: str) -> tuple[str, str | None, P]:
    """One record by code, or NotFound naming the layer and the code."""
    sql = _select(spec) + f" WHERE {spec.key} = :code"
    async with engine.connect() as conn:
        record = (await conn.execute(text(sql), {"code": code})).mappings().first()
    if record is None:
        raise NotFound(f"no {spec.label} with code {code!r}")
    return record["_key"], record["_geojson"], _to_props(spec, record)


def raw_geometry(geojson: str | None) -> Any:
    """Embed PostGIS's GeoJSON text as-is in a msgspec response (no decode/encode round trip)."""
    return msgspec.Raw(geojson.encode()) if geojson is not None else None


async def read_feature(engine: AsyncEngine, spec: LayerSpec[P], code: str) -> Feature[P]:
    """One record as a GeoJSON Feature."""
    key, geojson, props = await get_one(engine, spec, code)
    return Feature(id=key, geometry=raw_geometry(geojson), properties=props)


@dataclass(slots=True)
class ListQuery:
    """The common list parameters of a request, already checked: page size, position, bbox."""

    engine: AsyncEngine
    limit: int
    after: str | None
    bbox: tuple[float, float, float, float] | None = None

    @classmethod
    def parse(
        cls, engine: AsyncEngine, settings: Settings, *, limit: int | None, cursor: str | None, bbox: str | None
    ) -> ListQuery:
        """422 for a page size over the limit, a cursor we did not issue, or a bad bbox."""
        return cls(
            engine=engine,
            limit=check_limit(limit, default=settings.default_page_size, maximum=settings.max_page_size),
            after=decode_cursor(cursor),
            bbox=parse_bbox(bbox, max_span_deg=settings.max_bbox_deg) if bbox else None,
        )

    async def _page(self, spec: LayerSpec[P], filters: Mapping[str, Any]) -> Page[P]:
        return await list_page(self.engine, spec, filters=filters, bbox=self.bbox, after=self.after, limit=self.limit)

    async def features(self, spec: LayerSpec[P], **filters: Any) -> FeatureCollection[P]:
        """A page of a layer as GeoJSON; filters whose value is None do not apply."""
        page = await self._page(spec, filters)
        features = [Feature(id=key, geometry=raw_geometry(g), properties=p) for key, g, p in page.rows]
        return FeatureCollection(features=features, next_cursor=page.next_cursor)

    async def items(self, spec: LayerSpec[P], **filters: Any) -> ItemPage[P]:
        """A page of a table without geometry."""
        page = await self._page(spec, filters)
        return ItemPage(items=[props for _, _, props in page.rows], next_cursor=page.next_cursor)
