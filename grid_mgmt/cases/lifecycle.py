"""The case lifecycle, in one place: statuses, actions and the (status, action) → rule table.

Pure data and one function; imports only the standard library. Nothing else in the code base names a
transition: `CaseService.apply` asks `decide()` and does what the rule says.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Where a case stands."""

    VERIFYING = "verifying"  # citizen report waiting for on-site verification (核实)
    REPORTED = "reported"  # waiting for acceptance and registration (受理, 立案)
    REGISTERED = "registered"  # filed, waiting for dispatch (派遣)
    DISPATCHED = "dispatched"  # sent to a unit, waiting for its acknowledgement
    HANDLING = "handling"  # the unit works on it (处置)
    HANDLED = "handled"  # the unit fed back with an "after" photo (反馈)
    CHECKING = "checking"  # a grid worker checks on site (核查)
    CHECKED = "checked"  # check passed, waiting for closure (结案)
    CLOSED = "closed"
    SHELVED = "shelved"  # cannot be solved now (挂账)
    REJECTED = "rejected"  # not accepted at intake (不予受理)
    DECLINED = "declined"  # not registered (不予立案)
    CANCELLED = "cancelled"  # 作废
    MERGED = "merged"  # a duplicate report linked to the open case it repeats (its reporter follows that one)


class Role(StrEnum):
    """Who acts."""

    WORKER = "worker"
    ACCEPTOR = "acceptor"
    LEADER = "leader"
    DISPATCHER = "dispatcher"
    UNIT_STAFF = "unit_staff"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SYSTEM = "system"  # workers and sweeps
    CITIZEN = "citizen"  # the holder of a public report's token (grid_mgmt/public): may only ask to reopen it


class Clock(StrEnum):
    """What the action does to the deadline clock of the current stage."""

    START = "start"  # a new stage begins: a new deadline from the class's limit
    KEEP = "keep"  # nothing changes
    PAUSE = "pause"  # postponement approved, shelved: stop counting
    RESUME = "resume"  # back from a pause: the deadline moves by the paused time
    EXTEND = "extend"  # an approved postponement adds time to the deadline
    STOP = "stop"  # no more deadline (closed, cancelled, rejected)


class Stage(StrEnum):
    """The SLA stages of the class dictionary's time limits."""

    VERIFY = "verify"
    REGISTER = "register"
    DISPATCH = "dispatch"
    HANDLE = "handle"
    CHECK = "check"


class Effect(StrEnum):
    """Follow-ups the service performs after the transition commits."""

    NOTIFY_UNIT = "notify_unit"
    NOTIFY_REPORTER = "notify_reporter"
    NOTIFY_CENTRE = "notify_centre"
    CHECK_TASK = "check_task"  # assign a grid worker of the case's duty grid to check on site
    COUNT_REWORK = "count_rework"
    SET_UNIT = "set_unit"  # the payload names the unit that takes the case
    CLEAR_UNIT = "clear_unit"
    LINK_DUPLICATE = "link_duplicate"  # duplicate_of := the payload's case (`into`)
    UNLINK_DUPLICATE = "unlink_duplicate"
    ROUTE = "route"  # find the responsible unit again (cases.route)


class Requirement(StrEnum):
    """What the action's payload must carry."""

    UNIT = "unit_code"
    PHOTO = "attachment_ids"
    REASON = "note"
    MINUTES = "minutes"
    TARGET = "into"


TERMINAL = frozenset({Status.CLOSED, Status.REJECTED, Status.DECLINED, Status.CANCELLED})
CENTRE = frozenset({Role.ACCEPTOR, Role.LEADER, Role.DISPATCHER})


@dataclass(frozen=True, slots=True)
class Rule:
    """What one action does from one status."""

    to: Status
    roles: frozenset[Role]
    stamp: str | None = None  # the per-stage timestamp column it sets
    unstamp: tuple[str, ...] = ()  # timestamp columns it clears (reopen)
    stage: Stage | None = None  # the stage the case is in afterwards (for its deadline)
    clock: Clock = Clock.KEEP
    effects: tuple[Effect, ...] = ()
    requires: tuple[Requirement, ...] = ()
    summary: str = ""


def _r(to: Status, roles: set[Role], **kw: object) -> Rule:
    return Rule(to=to, roles=frozenset(roles), **kw)  # type: ignore[arg-type]


S, R = Status, Role
_OPEN_WORK = (S.REGISTERED, S.DISPATCHED, S.HANDLING)
_CANCELLABLE = (
    S.VERIFYING,
    S.REPORTED,
    S.REGISTERED,
    S.DISPATCHED,
    S.HANDLING,
    S.HANDLED,
    S.CHECKING,
    S.CHECKED,
    S.SHELVED,
)

TABLE: dict[tuple[Status, str], Rule] = {
    # verification of citizen reports (核实)
    (S.VERIFYING, "verify_pass"): _r(
        S.REPORTED,
        {R.WORKER},
        stage=Stage.REGISTER,
        clock=Clock.START,
        requires=(Requirement.PHOTO,),
        effects=(Effect.ROUTE,),
        summary="on-site verification confirms it",
    ),
    (S.VERIFYING, "verify_fail"): _r(
        S.REJECTED,
        {R.WORKER},
        clock=Clock.STOP,
        requires=(Requirement.REASON,),
        effects=(Effect.NOTIFY_REPORTER,),
        summary="nothing found on site",
    ),
    # intake and registration (受理, 立案)
    (S.REPORTED, "register"): _r(
        S.REGISTERED,
        {R.ACCEPTOR, R.LEADER, R.SYSTEM},
        stamp="registered_at",
        stage=Stage.DISPATCH,
        clock=Clock.START,
        effects=(Effect.NOTIFY_CENTRE,),
        summary="accept and file the case (立案)",
    ),
    (S.REPORTED, "reject"): _r(
        S.REJECTED,
        {R.ACCEPTOR, R.LEADER},
        clock=Clock.STOP,
        requires=(Requirement.REASON,),
        effects=(Effect.NOTIFY_REPORTER,),
        summary="not accepted (不予受理)",
    ),
    (S.REPORTED, "decline"): _r(
        S.DECLINED,
        {R.LEADER},
        clock=Clock.STOP,
        requires=(Requirement.REASON,),
        effects=(Effect.NOTIFY_REPORTER,),
        summary="not registered (不予立案)",
    ),
    (S.REPORTED, "self_handle"): _r(
        S.CHECKED,
        {R.WORKER},
        stamp="handled_at",
        stage=Stage.CHECK,
        clock=Clock.START,
        requires=(Requirement.PHOTO,),
        summary="the worker fixed it on the spot (自行处置), waiting for closure",
    ),
    # dispatch (派遣), two-level dispatch, acknowledgement, send back (回退)
    (S.REGISTERED, "dispatch"): _r(
        S.DISPATCHED,
        {R.DISPATCHER, R.LEADER, R.SYSTEM},
        stamp="dispatched_at",
        stage=Stage.HANDLE,
        clock=Clock.START,
        requires=(Requirement.UNIT,),
        effects=(Effect.SET_UNIT, Effect.NOTIFY_UNIT),
        summary="send to the responsible unit",
    ),
    (S.DISPATCHED, "forward"): _r(
        S.DISPATCHED,
        {R.UNIT_STAFF},
        requires=(Requirement.UNIT,),
        effects=(Effect.SET_UNIT, Effect.NOTIFY_UNIT),
        summary="second-level dispatch to a child unit",
    ),
    (S.DISPATCHED, "acknowledge"): _r(
        S.HANDLING, {R.UNIT_STAFF}, stamp="acknowledged_at", summary="the unit takes the case"
    ),
    (S.DISPATCHED, "send_back"): _r(
        S.REGISTERED,
        {R.UNIT_STAFF},
        stage=Stage.DISPATCH,
        clock=Clock.START,
        requires=(Requirement.REASON,),
        effects=(Effect.CLEAR_UNIT, Effect.NOTIFY_CENTRE),
        summary="not ours: back to the dispatcher (回退)",
    ),
    (S.HANDLING, "send_back"): _r(
        S.REGISTERED,
        {R.UNIT_STAFF},
        stage=Stage.DISPATCH,
        clock=Clock.START,
        requires=(Requirement.REASON,),
        effects=(Effect.CLEAR_UNIT, Effect.NOTIFY_CENTRE),
        summary="not ours: back to the dispatcher (回退)",
    ),
    # handling and feedback (处置, 反馈); postponement (延期)
    (S.HANDLING, "feed_back"): _r(
        S.HANDLED,
        {R.UNIT_STAFF},
        stamp="handled_at",
        clock=Clock.STOP,
        requires=(Requirement.PHOTO,),
        effects=(Effect.NOTIFY_CENTRE,),
        summary="the unit reports the result with an after photo",
    ),
    (S.HANDLING, "request_postpone"): _r(
        S.HANDLING,
        {R.UNIT_STAFF},
        clock=Clock.PAUSE,
        requires=(Requirement.REASON, Requirement.MINUTES),
        effects=(Effect.NOTIFY_CENTRE,),
        summary="ask for more time",
    ),
    (S.HANDLING, "approve_postpone"): _r(
        S.HANDLING,
        {R.DISPATCHER, R.LEADER},
        clock=Clock.EXTEND,
        effects=(Effect.NOTIFY_UNIT,),
        summary="grant the requested time (the clock resumes with the time added)",
    ),
    (S.HANDLING, "deny_postpone"): _r(
        S.HANDLING,
        {R.DISPATCHER, R.LEADER},
        clock=Clock.RESUME,
        requires=(Requirement.REASON,),
        effects=(Effect.NOTIFY_UNIT,),
        summary="refuse the requested time",
    ),
    # check and closure (核查, 结案); rework (返工)
    (S.HANDLED, "request_check"): _r(
        S.CHECKING,
        {R.DISPATCHER, R.LEADER, R.SYSTEM},
        stage=Stage.CHECK,
        clock=Clock.START,
        effects=(Effect.CHECK_TASK,),
        summary="a grid worker checks on site",
    ),
    (S.CHECKING, "check_pass"): _r(
        S.CHECKED,
        {R.WORKER},
        stamp="checked_at",
        clock=Clock.STOP,
        requires=(Requirement.PHOTO,),
        effects=(Effect.NOTIFY_CENTRE,),
        summary="fixed: ready to close",
    ),
    (S.CHECKING, "check_fail"): _r(
        S.DISPATCHED,
        {R.WORKER},
        stage=Stage.HANDLE,
        clock=Clock.START,
        requires=(Requirement.PHOTO, Requirement.REASON),
        effects=(Effect.COUNT_REWORK, Effect.NOTIFY_UNIT),
        summary="not fixed: back to the same unit (返工)",
    ),
    (S.CHECKED, "close"): _r(
        S.CLOSED,
        {R.LEADER},
        stamp="closed_at",
        clock=Clock.STOP,
        effects=(Effect.NOTIFY_REPORTER,),
        summary="close the case (结案)",
    ),
    (S.CLOSED, "reopen"): _r(
        S.REGISTERED,
        {R.LEADER, R.SUPERVISOR, R.CITIZEN},  # the citizen within GRID_PUBLIC_REOPEN_DAYS (public/followup.py)
        stage=Stage.DISPATCH,
        clock=Clock.START,
        unstamp=("closed_at", "checked_at", "handled_at", "acknowledged_at", "dispatched_at"),
        requires=(Requirement.REASON,),
        effects=(Effect.CLEAR_UNIT, Effect.NOTIFY_CENTRE),
        summary="it was not really fixed: reopen",
    ),
    # shelving (挂账) pauses the clock; unshelve resumes it
    **{
        (s, "shelve"): _r(
            S.SHELVED,
            {R.LEADER},
            clock=Clock.PAUSE,
            requires=(Requirement.REASON,),
            summary="cannot be solved now (挂账)",
        )
        for s in _OPEN_WORK
    },
    (S.SHELVED, "unshelve"): _r(
        S.REGISTERED,
        {R.LEADER},
        stage=Stage.DISPATCH,
        clock=Clock.START,
        effects=(Effect.CLEAR_UNIT,),
        summary="take a shelved case up again",
    ),
    # urging (督办) keeps everything and notifies the unit
    **{
        (s, "urge"): _r(
            s, {R.SUPERVISOR, R.LEADER, R.DISPATCHER}, effects=(Effect.NOTIFY_UNIT,), summary="urge the unit (督办)"
        )
        for s in (S.DISPATCHED, S.HANDLING)
    },
    # duplicates: linked to the open case they repeat; a wrong link is split off again
    **{
        (s, "merge"): _r(
            S.MERGED,
            {R.ACCEPTOR, R.LEADER, R.DISPATCHER, R.SYSTEM},
            clock=Clock.STOP,
            requires=(Requirement.TARGET,),
            effects=(Effect.LINK_DUPLICATE, Effect.NOTIFY_REPORTER),
            summary="a duplicate: link it to the open case it repeats",
        )
        for s in (S.REPORTED, S.REGISTERED)
    },
    (S.MERGED, "split"): _r(
        S.REPORTED,
        {R.ACCEPTOR, R.LEADER, R.DISPATCHER},
        stage=Stage.REGISTER,
        clock=Clock.START,
        requires=(Requirement.REASON,),
        effects=(Effect.UNLINK_DUPLICATE, Effect.ROUTE),
        summary="not a duplicate after all: a case of its own again",
    ),
    # cancel (作废) from any open status
    **{
        (s, "cancel"): _r(
            S.CANCELLED,
            {R.LEADER, R.ADMIN},
            stamp="cancelled_at",
            clock=Clock.STOP,
            requires=(Requirement.REASON,),
            summary="void the case (作废)",
        )
        for s in _CANCELLABLE
    },
}

ACTIONS: frozenset[str] = frozenset(action for _, action in TABLE)
STATUSES: frozenset[Status] = frozenset(Status)


class IllegalTransition(Exception):
    """The action does not apply in this status (HTTP 409)."""


class RoleNotAllowed(Exception):
    """The action applies, but none of the actor's roles may take it (HTTP 403)."""


class UnknownAction(Exception):
    """No such action at all (HTTP 404)."""


def decide(status: str, action: str, roles: frozenset[str] | set[str]) -> tuple[Rule, Role]:
    """The rule for `action` in `status` and the role the actor takes it in; raises when it may not happen."""
    if action not in ACTIONS:
        raise UnknownAction(f"unknown action {action!r}; actions are {', '.join(sorted(ACTIONS))}")
    rule = TABLE.get((Status(status), action))
    if rule is None:
        allowed = sorted(a for (s, a) in TABLE if s == status)
        raise IllegalTransition(
            f"cannot {action} a case that is {status}; possible now: {', '.join(allowed) or 'nothing (final)'}"
        )
    for role in Role:  # deterministic: the first matching role in declaration order
        if role in roles and role in rule.roles:
            return rule, role
    raise RoleNotAllowed(f"{action} needs one of the roles {', '.join(sorted(rule.roles))}")


def actions_from(status: str) -> list[str]:
    """What can happen next (for task inboxes and the API)."""
    return sorted(a for (s, a) in TABLE if s == status)


def actions_for(status: str, roles: frozenset[str] | set[str]) -> list[str]:
    """What an actor with `roles` may do next with a case in `status` (the table's roles; who within a role may
    act — the case's own unit, its checker — is the service's check). A new list each call (callers keep it)."""
    return list(_actions_for(status, frozenset(roles)))


@functools.lru_cache(maxsize=1024)
def _actions_for(status: str, roles: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(a for (s, a), rule in TABLE.items() if s == status and any(r in rule.roles for r in roles)))
