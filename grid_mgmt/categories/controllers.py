"""HTTP endpoints of the class dictionary."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter

from grid_mgmt.categories.repository import CATEGORIES
from grid_mgmt.categories.schemas import CategoryRead
from grid_mgmt.lib.deps import DB, ItemList
from grid_mgmt.lib.layers import get_one
from grid_mgmt.lib.openapi import CODE, responses
from grid_mgmt.lib.schemas import ItemPage


class CategoryController(Controller):
    """Component and event classes: codes C<major><minor> and E<major><minor>."""

    path = "/api/v1/categories"
    tags = ["city"]

    @get("/", summary="List classes", responses=responses(400, 422))
    async def list_categories(
        self,
        item_list: ItemList,
        kind: Annotated[Literal["component", "event"] | None, Parameter(description="kind")] = None,
        major_code: Annotated[str | None, Parameter(description="major class, e.g. 01")] = None,
        public: Annotated[bool | None, Parameter(description="citizens may report it")] = None,
        subsurface: Annotated[bool | None, Parameter(description="routed by the pipeline beneath")] = None,
        q: Annotated[str | None, Parameter(description="part of the Chinese or English name")] = None,
    ) -> ItemPage[CategoryRead]:
        return await item_list.items(
            CATEGORIES, kind=kind, major_code=major_code, public=public, subsurface=subsurface, q=q
        )

    @get("/{code:str}", summary="One class", responses=responses(404))
    async def get_category(self, db: DB, code: Annotated[str, CODE]) -> CategoryRead:
        _, _, read = await get_one(db, CATEGORIES, code)
        return read
