"""Planning a case's stage deadline at a transition (DESIGN §6): start, pause, resume, extend, stop.

Pure over the calendar and the class's limits: `CaseService` asks `plan()` for the columns to set, and buffers
one `sla.check` job per new deadline round (deferred to the warning, then to the deadline itself).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from grid_mgmt.sla.worktime import Calendar, add_working_minutes, deadline_for, resume_deadline, warn_at


@dataclass(frozen=True, slots=True)
class Limit:
    """One stage × urgency limit of the class dictionary."""

    value: int
    unit: str  # work_min | work_day | min


def limit_of(limits: dict[str, Any], stage: str | None, urgency: str) -> Limit | None:
    if stage is None:
        return None
    raw = limits.get(stage, {}).get(urgency)
    if not raw:
        return None
    return Limit(int(raw["value"]), str(raw["unit"]))


@dataclass(frozen=True, slots=True)
class Clocked:
    """Where the current stage's clock stands (the case row's columns)."""

    deadline: dt.datetime | None
    warn_at: dt.datetime | None
    paused_at: dt.datetime | None
    deadline_round: int


def start(now: dt.datetime, limit: Limit | None, cal: Calendar, share: float, clock: Clocked) -> dict[str, Any]:
    """A new stage begins: a deadline from the limit (none when the class sets none), a new round."""
    if limit is None:
        return {"deadline": None, "warn_at": None, "paused_at": None, "deadline_round": clock.deadline_round + 1}
    deadline = deadline_for(now, limit.value, limit.unit, cal)
    return {
        "deadline": deadline, "warn_at": warn_at(now, deadline, share, limit.unit, cal), "paused_at": None,
        "deadline_round": clock.deadline_round + 1,
    }  # fmt: skip


def pause(now: dt.datetime, clock: Clocked) -> dict[str, Any]:
    """Postponement asked or shelved: the clock stops; pending deadline jobs of this round become no-ops."""
    return {"paused_at": now, "deadline_round": clock.deadline_round + 1}


def resume(
    now: dt.datetime, limit: Limit | None, cal: Calendar, clock: Clocked, extra_minutes: int = 0
) -> dict[str, Any]:
    """The clock runs again: the time left when it stopped is granted again (plus `extra_minutes` of the stage's
    unit when a postponement is approved)."""
    sets: dict[str, Any] = {"paused_at": None, "deadline_round": clock.deadline_round + 1}
    if clock.deadline is None or clock.paused_at is None:
        if clock.deadline is not None and extra_minutes:
            sets["deadline"] = _extend(clock.deadline, extra_minutes, limit, cal)
        return sets
    unit = limit.unit if limit is not None else "min"
    deadline = resume_deadline(clock.deadline, clock.paused_at, now, unit, cal)
    warn = resume_deadline(clock.warn_at, clock.paused_at, now, unit, cal) if clock.warn_at is not None else None
    if extra_minutes:
        deadline = _extend(deadline, extra_minutes, limit, cal)
    sets.update(deadline=deadline, warn_at=warn)
    return sets


def stop(clock: Clocked) -> dict[str, Any]:
    return {"deadline": None, "warn_at": None, "paused_at": None, "deadline_round": clock.deadline_round + 1}


def _extend(deadline: dt.datetime, minutes: int, limit: Limit | None, cal: Calendar) -> dt.datetime:
    if limit is not None and limit.unit != "min":
        return add_working_minutes(deadline, minutes, cal)
    return deadline + dt.timedelta(minutes=minutes)


def first_check(sets: dict[str, Any]) -> dt.datetime | None:
    """When the deadline job of a newly planned round should first look: the warning, else the deadline."""
    if sets.get("paused_at") is not None:
        return None
    return sets.get("warn_at") or sets.get("deadline")
