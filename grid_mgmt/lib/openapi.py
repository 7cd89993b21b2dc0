"""Shared OpenAPI pieces: the common list parameters and documented error responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from grid_mgmt.lib.errors import ERROR_RESPONSES
from grid_mgmt.lib.schemas import ErrorRead


def responses(*codes: int, descriptions: Mapping[int, str] | None = None) -> dict[int, ResponseSpec]:
    """ResponseSpecs for the error statuses a route can answer with (a feature may word some more precisely)."""
    words = {**ERROR_RESPONSES, **(descriptions or {})}
    return {code: ResponseSpec(data_container=ErrorRead, description=words.get(code, "error")) for code in codes}


LIMIT = Annotated[int | None, Parameter(description="page size (default 100, at most GRID_MAX_PAGE_SIZE=1000)")]
CURSOR = Annotated[str | None, Parameter(description="`next_cursor` of the previous page")]
BBOX = Annotated[
    str | None,
    Parameter(description="minlon,minlat,maxlon,maxlat in WGS84; at most GRID_MAX_BBOX_DEG (2°) each way"),
]
CODE = Parameter(description="the record's code")
