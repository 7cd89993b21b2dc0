"""The official working calendar of the People's Republic of China, 2025–2027 (STUB: being filled in)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OfficialDay:
    day: dt.date
    kind: str  # "holiday" | "workday"
    name: str
    source: str


OFFICIAL_DAYS: tuple[OfficialDay, ...] = ()
