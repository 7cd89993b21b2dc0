"""msgspec base structs shared by every feature: GeoJSON features with typed properties, pages."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import msgspec

from geo.geojson import Geometry

P = TypeVar("P")


class Schema(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of our request and response structs."""


class Feature(Schema, Generic[P], kw_only=True):
    """A GeoJSON Feature (RFC 7946); `id` is the record code, `properties` the record's fields."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Geometry | None
    properties: P


class FeatureCollection(Schema, Generic[P], kw_only=True):
    """A page of features; pass `next_cursor` back as `cursor` for the next page (null on the last)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature[P]]
    next_cursor: str | None = None


class ItemPage(Schema, Generic[P], kw_only=True):
    """A page of plain records; pass `next_cursor` back as `cursor` for the next page (null on the last)."""

    items: list[P]
    next_cursor: str | None = None


class ErrorRead(Schema, kw_only=True):
    """Every error: what is wrong in `detail`, details such as the offending field in `extra`."""

    status_code: int
    detail: str
    extra: dict[str, Any] | None = None
