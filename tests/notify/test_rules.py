"""Pure rules of notifications: who sees which event, the topic filter, the backoff, the signature."""

from __future__ import annotations

import pytest

from grid_mgmt.lib.auth import Principal
from grid_mgmt.notify.service import MAX_BACKOFF_S, backoff, in_scope, parse_topics
from grid_mgmt.notify.signing import sign, verify

EVENT = {
    "topic": "case.dispatched",
    "district_code": "420323",
    "unit_code": "U0101",
    "grid_code": "420323100001001",
    "reporter_id": 7,
    "checker_id": 8,
}


def who(*roles: str, **kw: object) -> Principal:
    return Principal(user_id=kw.pop("user_id", 1), username="u", roles=frozenset(roles), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["admin", "supervisor"])
def test_all_seeing_roles_see_everything(role: str) -> None:
    assert in_scope(who(role), EVENT)
    assert in_scope(who(role), {"topic": "system.note"})


@pytest.mark.parametrize("role", ["acceptor", "leader", "dispatcher"])
def test_centre_roles_see_their_district(role: str) -> None:
    assert in_scope(who(role, district_code="420323"), EVENT)
    assert not in_scope(who(role, district_code="420324"), EVENT)
    assert not in_scope(who(role, district_code="420323"), {**EVENT, "district_code": None})
    assert in_scope(who(role), {**EVENT, "district_code": "999999"})  # no district: the whole city


def test_unit_staff_see_their_units() -> None:
    staff = who("unit_staff", unit_code="U01", unit_codes=frozenset({"U01", "U0101"}))
    assert in_scope(staff, EVENT)
    assert not in_scope(staff, {**EVENT, "unit_code": "U02"})
    assert not in_scope(staff, {**EVENT, "unit_code": None})
    assert not in_scope(who("unit_staff"), EVENT)


def test_workers_see_their_grids_and_their_cases() -> None:
    assert in_scope(who("worker", duty_grid_codes=frozenset({"420323100001001"})), EVENT)
    assert not in_scope(who("worker", duty_grid_codes=frozenset({"420323100001002"})), EVENT)
    assert in_scope(who("worker", user_id=7), EVENT)  # reported it
    assert in_scope(who("worker", user_id=8), EVENT)  # checks it
    assert not in_scope(who("worker", user_id=9), EVENT)
    assert not in_scope(who("worker", user_id=9), {"topic": "x", "grid_code": None})


def test_no_role_sees_nothing_and_roles_add_up() -> None:
    assert not in_scope(who(), EVENT)
    both = who("dispatcher", "worker", district_code="420324", user_id=7)
    assert in_scope(both, EVENT)  # not their district, but they reported it


def test_topics_filter() -> None:
    assert parse_topics(None) is None
    assert parse_topics(" , ") is None
    assert parse_topics("case.dispatched, case.overdue,") == frozenset({"case.dispatched", "case.overdue"})


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    for attempts, base in [(1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0)]:
        assert base <= backoff(10.0, attempts) <= base * 1.1
    assert MAX_BACKOFF_S <= backoff(10.0, 40) <= MAX_BACKOFF_S * 1.1


def test_signature_round_trip() -> None:
    body = b'{"id":1,"topic":"case.dispatched"}'
    header = sign("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("s3cret", body, header)
    assert not verify("other", body, header)
    assert not verify("s3cret", body + b" ", header)
    assert not verify("s3cret", body, None)
    assert not verify("s3cret", body, header.removeprefix("sha256="))
