"""Structs of the outbox listing and of the events on the live stream."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from grid_mgmt.lib.schemas import Schema

OutboxState = Literal["pending", "delivered", "failed"]
OutboxKind = Literal["event", "webhook"]


class OutboxRead(Schema, kw_only=True):
    """One notification: an `event` for the live stream or a `webhook` to a unit's endpoint, and how it went.

    `pending` rows wait for `next_attempt_at`; `failed` rows were given up after `attempts` tries (the last error
    says why) and can be retried by an admin.
    """

    id: int
    topic: str
    kind: OutboxKind
    state: OutboxState
    case_id: int | None
    unit_code: str | None
    target_url: str | None
    attempts: int
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    failed_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    payload: dict[str, Any]
