"""grid_mgmt.intake.rules: the checks that need no database."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from grid_mgmt.intake import rules
from grid_mgmt.intake.schemas import CaseIn
from grid_mgmt.lib.errors import DomainError, InvalidInput

NOW = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)


def test_captured_at_window_and_naive_times() -> None:
    assert rules.captured_at(None, NOW, 30) is None
    assert rules.captured_at(NOW + dt.timedelta(minutes=4), NOW, 30) == NOW + dt.timedelta(minutes=4)
    with pytest.raises(InvalidInput, match="in the future"):
        rules.captured_at(NOW + dt.timedelta(minutes=6), NOW, 30)
    with pytest.raises(InvalidInput, match="30 days"):
        rules.captured_at(NOW - dt.timedelta(days=31), NOW, 30)
    naive = dt.datetime(2026, 11, 21, 15, 30)  # a phone without an offset: city time
    assert rules.captured_at(naive, NOW, 30) == dt.datetime(2026, 11, 21, 7, 30, tzinfo=dt.UTC)


def test_description_accuracy_and_address() -> None:
    assert rules.description("  井盖缺失 \n") == "井盖缺失"
    with pytest.raises(InvalidInput, match="empty"):
        rules.description(" \t\n ")
    assert rules.description("字" * 4000) == "字" * 4000
    with pytest.raises(InvalidInput, match="4,001 characters"):
        rules.description("字" * 4001)
    assert rules.accuracy(500, 500) == 500.0
    with pytest.raises(InvalidInput, match="5000 m is too coarse"):
        rules.accuracy(5000, 500)
    with pytest.raises(InvalidInput):
        rules.accuracy(float("nan"), 500)
    assert rules.address("   ") is None
    with pytest.raises(InvalidInput):
        rules.address("路" * 201)


def test_keys_and_hashes() -> None:
    assert rules.idempotency_key(None, None) is None
    assert rules.idempotency_key(" k1 ", None) == "k1"
    assert rules.idempotency_key("k1", "k1") == "k1"
    with pytest.raises(InvalidInput, match="differ"):
        rules.idempotency_key("k1", "k2")
    with pytest.raises(InvalidInput, match="empty"):
        rules.idempotency_key(None, "")
    a = msgspec.convert(
        {"category_code": "E0102", "description": "x", "lon": 1.0, "lat": 2.0, "client_id": "a"}, CaseIn
    )
    b = msgspec.structs.replace(a, client_id="b")
    c = msgspec.structs.replace(a, description="y")
    assert rules.request_hash("r", a) == rules.request_hash("r", b) != rules.request_hash("r", c)


def test_sources_by_role() -> None:
    assert rules.source(frozenset({"worker"}), None) == "worker"
    assert rules.source(frozenset({"leader"}), None) == "leader"
    assert rules.source(frozenset({"acceptor"}), None) == "hotline"
    assert rules.source(frozenset({"dispatcher"}), "video") == "video"
    with pytest.raises(DomainError) as refused:
        rules.source(frozenset({"worker"}), "hotline")
    assert refused.value.status_code == 403
    with pytest.raises(DomainError):
        rules.source(frozenset({"unit_staff"}), None)
