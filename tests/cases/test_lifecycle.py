"""The lifecycle table, walked whole: every pair decides or raises, every status is reachable, terminals are final."""

from __future__ import annotations

import itertools

import pytest

from grid_mgmt.cases import lifecycle as lc

ALL_ROLES = frozenset(r.value for r in lc.Role)


@pytest.mark.parametrize(("status", "action"), list(itertools.product(lc.Status, sorted(lc.ACTIONS))))
def test_every_pair_maps_to_a_rule_or_raises(status: lc.Status, action: str) -> None:
    if (status, action) in lc.TABLE:
        rule, role = lc.decide(status, action, ALL_ROLES)
        assert rule is lc.TABLE[(status, action)] and role in rule.roles
    else:
        with pytest.raises(lc.IllegalTransition) as info:
            lc.decide(status, action, ALL_ROLES)
        assert f"cannot {action} a case that is {status}" in str(info.value)


@pytest.mark.parametrize(("key", "rule"), list(lc.TABLE.items()), ids=lambda v: str(v))
def test_every_other_role_is_refused(key: tuple[lc.Status, str], rule: lc.Rule) -> None:
    status, action = key
    for role in lc.Role:
        if role in rule.roles:
            assert lc.decide(status, action, {role.value})[1] == role
        else:
            with pytest.raises(lc.RoleNotAllowed):
                lc.decide(status, action, {role.value})


def test_every_status_is_reachable_from_intake() -> None:
    seen = {lc.Status.REPORTED, lc.Status.VERIFYING}
    frontier = list(seen)
    while frontier:
        status = frontier.pop()
        for (src, _), rule in lc.TABLE.items():
            if src == status and rule.to not in seen:
                seen.add(rule.to)
                frontier.append(rule.to)
    assert seen == set(lc.Status)


def test_terminal_states_only_reopen() -> None:
    for status in lc.TERMINAL:
        exits = {action for (src, action) in lc.TABLE if src == status}
        assert exits <= {"reopen"}, (status, exits)
    assert lc.TABLE[(lc.Status.CLOSED, "reopen")].to == lc.Status.REGISTERED
    assert lc.actions_from("cancelled") == []


def test_main_path_of_the_contract() -> None:
    path = [
        ("register", "acceptor"),
        ("dispatch", "dispatcher"),
        ("acknowledge", "unit_staff"),
        ("feed_back", "unit_staff"),
        ("request_check", "dispatcher"),
        ("check_pass", "worker"),
        ("close", "leader"),
    ]
    status = "reported"
    visited = [status]
    for action, role in path:
        rule, _ = lc.decide(status, action, {role})
        status = rule.to.value
        visited.append(status)
    assert visited == ["reported", "registered", "dispatched", "handling", "handled", "checking", "checked", "closed"]


def test_unknown_action() -> None:
    with pytest.raises(lc.UnknownAction):
        lc.decide("reported", "teleport", ALL_ROLES)


def test_lifecycle_imports_only_the_standard_library() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(lc.__file__).read_text())
    imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    import sys

    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_the_database_knows_the_same_statuses() -> None:
    from grid_mgmt.db.models.case import STATUSES

    assert set(STATUSES) == {s.value for s in lc.Status}
