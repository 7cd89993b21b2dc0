"""Response structs of the task inbox and the delta sync."""

from __future__ import annotations

import datetime as dt

from grid_mgmt.cases.schemas import CaseRead
from grid_mgmt.lib.schemas import Schema


class TaskQueue(Schema, kw_only=True):
    """A named queue of cases waiting for the caller; `items` are the first ones, earliest deadline (so overdue)
    first, each with the `next_actions` the caller's roles allow. `count` and `overdue` stop at the cap
    (`capped` true: there are more)."""

    name: str
    title: str
    count: int
    overdue: int
    capped: bool
    items: list[CaseRead]


class TaskRef(Schema, kw_only=True):
    """A queue in a sync answer: just the ids of its first cases (their contents come in `cases`)."""

    name: str
    count: int
    capped: bool
    case_ids: list[int]


class DictionaryVersion(Schema, kw_only=True):
    """A dictionary the phone caches (category, region, grid, unit, duty grids) and its change counter: when it
    differs from the one the phone stored, download that dictionary again."""

    name: str
    version: int
    changed_at: dt.datetime


class SyncRead(Schema, kw_only=True):
    """What changed for the caller since the cursor. Apply `cases` by id, keeping the higher `version` (a case
    can come more than once); replace the task list with `tasks`; call again with `cursor` at once while
    `has_more`, later (next poll) otherwise."""

    cases: list[CaseRead]
    tasks: list[TaskRef]
    dictionaries: list[DictionaryVersion]
    categories_updated_at: dt.datetime | None
    cursor: str
    has_more: bool
    server_time: dt.datetime
