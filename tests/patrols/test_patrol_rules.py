"""The pure fix rules: duplicates, implied speed with accuracy slack, recovery after a glitch, the area box."""

from __future__ import annotations

import datetime as dt

import pytest

from grid_mgmt.patrols.rules import MAX_SPEED_MPS, Area, Fix, drop_implausible, implied_speed, without_duplicates
from tests.patrols.conftest import east

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
HOME = (110.22, 32.23)


def fix(i: int, seconds: float, metres: float, accuracy: float | None = None) -> Fix:
    return Fix(i, T0 + dt.timedelta(seconds=seconds), *east(*HOME, metres), accuracy_m=accuracy)


def test_duplicates_first_sent_wins_and_stored_win_over_all() -> None:
    same = T0 + dt.timedelta(seconds=5)
    fixes = [fix(0, 10, 0), Fix(1, same, *HOME), Fix(2, same, *east(*HOME, 3)), fix(3, 1, 0)]
    out, dropped = without_duplicates(fixes, [T0 + dt.timedelta(seconds=1)])
    assert [f.index for f in out] == [1, 0] and dropped == 2


def test_implied_speed_allows_for_accuracy_and_at_least_one_second() -> None:
    assert implied_speed(fix(0, 0, 0), fix(1, 10, 100)) == pytest.approx(10, rel=1e-2)
    assert implied_speed(fix(0, 0, 0, 20), fix(1, 10, 100, 30)) == pytest.approx(5, rel=2e-2)
    assert implied_speed(fix(0, 0, 0), fix(1, 0.01, 40)) == pytest.approx(40, rel=1e-2)  # not 4000 m/s
    assert implied_speed(fix(0, 0, 0, 10), fix(1, 1, 15, 10)) == 0


def test_a_glitch_blocks_only_until_walking_from_it_is_possible() -> None:
    stored = [fix(-1, 0, 0)]
    new = [fix(0, 10, 2000), fix(1, 20, 30), fix(2, 30, 60), fix(3, 100, 2000), fix(4, 200, 120)]
    kept, skipped = drop_implausible(new, stored)
    assert [f.index for f in kept] == [1, 2, 3, 4]
    assert [(s.index, s.reason) for s in skipped] == [(0, "implausible_speed")]
    assert "m/s" in skipped[0].detail and str(int(MAX_SPEED_MPS)) in skipped[0].detail


def test_a_late_fix_must_also_reach_the_stored_fix_after_it() -> None:
    stored = [fix(-1, 0, 0), fix(-1, 60, 60)]
    kept, skipped = drop_implausible([fix(0, 59, 1500)], stored)  # reachable from t=0, not to t=60
    assert kept == [] and "getting from here to the fix" in skipped[0].detail
    kept, _ = drop_implausible([fix(0, 30, 30)], stored)
    assert len(kept) == 1


def test_area_box_grows_by_the_buffer_and_spots_swapped_axes() -> None:
    area = Area.around((110.2, 32.2, 110.26, 32.24), 2000)
    assert area.contains(*east(110.26, 32.22, 1900)) and not area.contains(*east(110.26, 32.22, 2100))
    assert "swapped" not in area.outside(0.0, 0.0, "wgs84")
    assert "did you mean (110.23, 32.22)" in area.swap_hint(32.22, 110.23, "wgs84")
    assert area.swap_hint(110.23, 32.22, "wgs84") == ""
