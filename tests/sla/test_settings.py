"""The calendar settings: defaults, and a clear error at startup for a bad schedule, time zone or share."""

from __future__ import annotations

import datetime as dt

import pytest

from grid_mgmt.settings import Settings, parse_schedule


def test_defaults() -> None:
    settings = Settings()
    assert settings.work_timezone == "Asia/Shanghai" and settings.calendar_cache_s == 60
    assert settings.deadline_warn_share == 0.8
    assert parse_schedule(settings.work_schedule) == (
        (dt.time(8), dt.time(12)),
        (dt.time(14), dt.time(18)),
    )


def test_a_schedule_of_one_period_with_spaces() -> None:
    assert parse_schedule(" 09:00 - 17:30 ") == ((dt.time(9), dt.time(17, 30)),)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WORK_SCHEDULE", "08:00-12:00;14:00-18:00", "is not HH:MM-HH:MM"),
        ("WORK_SCHEDULE", "", "is not HH:MM-HH:MM"),
        ("WORK_SCHEDULE", "12:00-08:00", "must end after it begins"),
        ("WORK_SCHEDULE", "08:00-12:00,11:00-18:00", "overlaps"),
        ("WORK_SCHEDULE", "08:00+08:00-12:00", "is not HH:MM-HH:MM"),
        ("WORK_TIMEZONE", "Mars/Olympus", "not an IANA time zone"),
        ("DEADLINE_WARN_SHARE", "1", "strictly between 0 and 1"),
        ("DEADLINE_WARN_SHARE", "0", "strictly between 0 and 1"),
    ],
)
def test_bad_values_fail_at_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"GRID_{name}", value)
    with pytest.raises(ValueError, match=message) as caught:
        Settings()
    assert str(caught.value).startswith(f"GRID_{name}=")
