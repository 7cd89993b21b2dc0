"""Response structs of the components endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from grid_mgmt.lib.schemas import Schema


class ComponentProperties(Schema):
    """A surveyed component (16-digit code = county + major + minor + serial) and who is responsible."""

    code: str
    category_code: str
    category_name: str
    major_code: str
    name: str
    grid_code: str | None
    supervisor_unit_code: str | None
    owner_unit_code: str | None
    maintainer_unit_code: str | None
    status: Literal["intact", "damaged", "missing", "abandoned", "removed"]
    survey_date: dt.date | None
    change_date: dt.date | None
    source: str | None
    accuracy_class: str | None
    note: str | None
    attributes: dict[str, Any]
