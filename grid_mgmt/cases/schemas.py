"""Request and response structs of cases: the case, its timeline, and one payload struct per action shape."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from grid_mgmt.lib.schemas import Schema

Note = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Ids = Annotated[list[int], msgspec.Meta(min_length=1, max_length=20)]


class CaseRead(Schema, kw_only=False):
    """A case as the phone and the consoles see it; `next_actions` are what the status allows next.

    The fields before `next_actions` are `cases.repository.CASE_COLUMNS`, in order: a row becomes a case by position
    (no name lookups or checks per field; a list page builds 50 of these)."""

    id: int
    case_no: str
    source: str
    status: str
    version: int
    stage: str | None
    category_code: str
    category_name: str
    kind: str
    urgency: str
    description: str
    lon: float
    lat: float
    input_crs: str
    accuracy_m: float | None
    address: str | None
    grid_code: str | None
    community_code: str | None
    street_code: str | None
    district_code: str | None
    component_code: str | None
    unit_code: str | None
    reporter_id: int | None
    captured_at: dt.datetime | None
    received_at: dt.datetime
    registered_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    handled_at: dt.datetime | None
    checked_at: dt.datetime | None
    closed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    deadline: dt.datetime | None
    stage_started_at: dt.datetime | None
    paused_at: dt.datetime | None
    duplicate_of: int | None
    rework_count: int
    checker_id: int | None
    flags: list[str]
    updated_at: dt.datetime
    warn_at: dt.datetime | None = None
    """When the current stage's deadline warning falls (a share of its limit, GRID_DEADLINE_WARN_SHARE)."""
    deadline_round: int = 0
    """Bumped whenever the deadline is re-planned (deadline jobs carry it; an older round's job does nothing)."""
    next_actions: list[str] = []


class ActivityRead(Schema, kw_only=True):
    """One timeline row: who did what, from → to, against which deadline, and how long it took."""

    seq: int
    action: str
    from_status: str | None
    to_status: str
    actor_id: int | None
    actor_username: str | None
    actor_role: str | None
    unit_code: str | None
    note: str | None
    payload: dict[str, Any]
    at: dt.datetime
    deadline: dt.datetime | None
    minutes_used: int | None
    on_time: bool | None


class TimelineRead(Schema, kw_only=True):
    """The whole timeline of a case, oldest first."""

    case_id: int
    case_no: str
    activities: list[ActivityRead]


class ActionPayload(Schema, kw_only=True, forbid_unknown_fields=True):
    """Every action body may carry the `version` the client saw (compare-and-set) and a `note`."""

    version: int | None = None
    note: Note | None = None


class ReasonPayload(ActionPayload, kw_only=True, forbid_unknown_fields=True):
    """An action that must say why."""

    note: Note


class DispatchPayload(ActionPayload, kw_only=True, forbid_unknown_fields=True):
    """Send the case to a handling unit."""

    unit_code: Annotated[str, msgspec.Meta(min_length=2, max_length=32)]


class PhotoPayload(ActionPayload, kw_only=True, forbid_unknown_fields=True):
    """An action proven by photos uploaded before (`POST /cases/{id}/attachments`)."""

    attachment_ids: Ids


class PhotoReasonPayload(PhotoPayload, kw_only=True, forbid_unknown_fields=True):
    """A failed check: photos and why."""

    note: Note


class PostponePayload(ActionPayload, kw_only=True, forbid_unknown_fields=True):
    """Ask for more time, in minutes of the stage's unit (at most 30 days)."""

    minutes: Annotated[int, msgspec.Meta(ge=1, le=43200)]
    note: Note


class CheckRequestPayload(ActionPayload, kw_only=True, forbid_unknown_fields=True):
    """Who checks on site; by default a worker of the case's duty grid."""

    checker_username: str | None = None


class MergePayload(ActionPayload, kw_only=True, forbid_unknown_fields=True):
    """Link this duplicate report to the open case it repeats (its reporter then follows that case)."""

    into: Annotated[int, msgspec.Meta(ge=1)]


PAYLOADS: dict[str, type[ActionPayload]] = {
    "verify_pass": PhotoPayload,
    "verify_fail": ReasonPayload,
    "register": ActionPayload,
    "reject": ReasonPayload,
    "decline": ReasonPayload,
    "self_handle": PhotoPayload,
    "dispatch": DispatchPayload,
    "forward": DispatchPayload,
    "acknowledge": ActionPayload,
    "send_back": ReasonPayload,
    "feed_back": PhotoPayload,
    "request_postpone": PostponePayload,
    "approve_postpone": ActionPayload,
    "deny_postpone": ReasonPayload,
    "request_check": CheckRequestPayload,
    "check_pass": PhotoPayload,
    "check_fail": PhotoReasonPayload,
    "close": ActionPayload,
    "reopen": ReasonPayload,
    "shelve": ReasonPayload,
    "unshelve": ActionPayload,
    "urge": ActionPayload,
    "cancel": ReasonPayload,
    "merge": MergePayload,
    "split": ReasonPayload,
}
"""The body struct of each action (one route per action in OpenAPI)."""
