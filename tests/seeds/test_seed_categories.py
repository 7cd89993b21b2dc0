"""The class dictionary in seeds/data/categories.json: coverage of the standard, limits, routing hints."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from seeds.categories import LIMIT_UNITS, STAGES, URGENCIES, limit_minutes, load_categories, validate_categories

COMPONENT_MINORS = [
    "0101",
    "0102",
    "0103",
    "0104",
    "0105",
    "0106",
    "0107",
    "0110",
    "0111",
    "0113",
    "0114",
    "0116",
    "0117",
    "0118",
    "0121",
    "0123",
    "0126",
    "0134",
    "0136",
    "0201",
    "0203",
    "0205",
    "0209",
    "0210",
    "0211",
    "0213",
    "0301",
    "0304",
    "0305",
    "0307",
    "0401",
    "0402",
    "0403",
    "0405",
    "0406",
    "0407",
    "0501",
    "0602",
    "0604",
]
EVENTS = {
    "E0101": "私搭乱建",
    "E0102": "暴露垃圾",
    "E0104": "道路不洁",
    "E0201": "非法小广告",
    "E0301": "施工扰民",
    "E0401": "路面塌陷",
    "E0402": "自来水管破裂",
    "E0403": "燃气管道破裂",
    "E0404": "下水道堵塞",
    "E0505": "露天烧烤",
}


@pytest.fixture(scope="module")
def classes() -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in load_categories()}


def _limit(cat: dict[str, Any], stage: str, urgency: str) -> tuple[int, str]:
    limit = cat["time_limits"][stage][urgency]
    return limit["value"], limit["unit"]


def test_dictionary_is_consistent(classes: dict[str, dict[str, Any]]) -> None:
    assert validate_categories(list(classes.values())) == []
    for cat in classes.values():
        assert set(cat["time_limits"]) == set(STAGES)
        for stage in STAGES:
            assert set(cat["time_limits"][stage]) == set(URGENCIES)
            for urgency in URGENCIES:
                value, unit = _limit(cat, stage, urgency)
                assert value > 0 and unit in LIMIT_UNITS
        assert cat["standard_ref"] == "GB/T 30428.2"
        assert cat["register_criteria"] and cat["closure_criteria"] and cat["major_name"] and cat["name_en"]


def test_covers_the_standard_classes(classes: dict[str, dict[str, Any]]) -> None:
    components = {c["minor_code"] for c in classes.values() if c["kind"] == "component"}
    assert set(COMPONENT_MINORS) <= components
    assert {m[:2] for m in components} == {"01", "02", "03", "04", "05", "06"}
    events = {c["minor_code"][:2] for c in classes.values() if c["kind"] == "event"}
    assert events == {"01", "02", "03", "04", "05"}
    for code, name in EVENTS.items():
        assert classes[code]["name"] == name
    assert classes["C0101"]["name"] == "上水井盖" and classes["C0118"]["name"] == "路灯"


def test_geometry_types(classes: dict[str, dict[str, Any]]) -> None:
    assert classes["C0211"]["geometry_type"] == "line" and classes["C0604"]["geometry_type"] == "line"
    assert classes["C0405"]["geometry_type"] == "polygon" and classes["C0201"]["geometry_type"] == "polygon"
    assert classes["C0101"]["geometry_type"] == "point"
    assert all(c["geometry_type"] is None for c in classes.values() if c["kind"] == "event")


def test_time_limits_follow_the_domain_examples(classes: dict[str, dict[str, Any]]) -> None:
    assert _limit(classes["C0102"], "handle", "urgent") == (120, "min")
    assert _limit(classes["E0102"], "handle", "normal") == (240, "work_min")
    assert _limit(classes["C0118"], "handle", "normal") == (1, "work_day")
    assert _limit(classes["E0101"], "handle", "normal") == (20, "work_day")
    assert _limit(classes["E0505"], "handle", "normal") == (120, "work_min")
    for cat in classes.values():
        for stage in ("register", "dispatch"):
            assert _limit(cat, stage, "urgent") == (10, "min")
            assert _limit(cat, stage, "normal") == (30, "work_min")
        for stage in ("verify", "check"):
            assert 30 <= _limit(cat, stage, "normal")[0] <= 60
        handle = cat["time_limits"]["handle"]
        assert (
            limit_minutes(handle["urgent"]) <= limit_minutes(handle["fairly_urgent"]) <= limit_minutes(handle["normal"])
        )


def test_subsurface_routing_hints(classes: dict[str, dict[str, Any]]) -> None:
    assert classes["E0402"]["pipeline_kinds"] == ["water"]
    assert classes["E0403"]["pipeline_kinds"] == ["gas"]
    assert set(classes["E0401"]["pipeline_kinds"]) == {"water", "sewage", "storm", "gas", "heat"}
    assert classes["C0102"]["pipeline_kinds"] == ["sewage"]
    assert "sewage" in classes["E0404"]["pipeline_kinds"]
    for cat in classes.values():
        assert cat["subsurface"] == bool(cat["pipeline_kinds"])
    assert not classes["E0102"]["subsurface"]


def test_public_and_open311(classes: dict[str, dict[str, Any]]) -> None:
    assert classes["E0102"]["public"] and classes["C0118"]["public"] and classes["C0102"]["public"]
    assert not classes["C0134"]["public"]
    with_attrs = [c for c in classes.values() if c["open311_attributes"]]
    assert len(with_attrs) >= 4
    for cat in with_attrs:
        for attr in cat["open311_attributes"]:
            assert {"code", "datatype", "required", "description"} <= set(attr)


def test_validation_catches_mistakes(classes: dict[str, dict[str, Any]]) -> None:
    broken = copy.deepcopy(classes["C0101"])
    del broken["time_limits"]["handle"]["normal"]
    broken["pipeline_kinds"] = ["lava"]
    broken["code"] = "E0101"
    problems = validate_categories([broken, copy.deepcopy(classes["E0101"])])
    text = "\n".join(problems)
    assert "handle" in text and "pipeline_kinds" in text and "duplicate" in text and "match kind" in text
