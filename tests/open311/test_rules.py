"""The pure parts of Open311: XML output, format suffixes, the date window, answers to a service's questions."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from grid_mgmt.open311 import formats, rules
from grid_mgmt.open311.rules import BadParameter
from grid_mgmt.open311.service import full_name

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a < b & c > d", "a < b & c > d"),
        ("]]> <![CDATA[ x ]]>", "]]> <![CDATA[ x ]]>"),
        ("bell\x07 nul\x00 esc\x1b del\x7f", "bell nul esc del\x7f"),
        ("line\r\nnext\ttab", "line\r\nnext\ttab"),
        ("\ud800 lone surrogate \ufffe", " lone surrogate "),
        ("emoji 🚧 中文", "emoji 🚧 中文"),
    ],
)
def test_xml_text_round_trips(text: str, parsed: str) -> None:
    doc = formats.to_xml("errors", "error", [{"code": 400, "description": text, "none": None, "ok": True}])
    root = ET.fromstring(doc)
    assert root.findtext("error/description") == parsed
    assert root.findtext("error/none") == "" and root.findtext("error/ok") == "true"


def test_nested_lists_take_the_spec_names() -> None:
    doc = formats.to_xml("service_definition", None, {"attributes": [{"values": [{"key": "a", "name": "A"}]}]})
    assert ET.fromstring(doc).findtext("attributes/attribute/values/value/key") == "a"


@pytest.mark.parametrize("name", ["services", "services.", ".json", "services.JSON", "services.csv", "a.b.yaml"])
def test_unknown_suffixes(name: str) -> None:
    with pytest.raises(formats.UnknownResource):
        formats.split(name)


def test_suffixes() -> None:
    assert formats.split("E0102.json") == ("E0102", "json")
    assert formats.split("2026.01.xml") == ("2026.01", "xml")


def test_the_window() -> None:
    start, end = rules.window(None, None, NOW, 90)
    assert start == NOW - dt.timedelta(days=90) and end is None
    day = dt.datetime(2026, 1, 1, tzinfo=SH)
    assert rules.window(day, None, NOW, 90) == (day, day + dt.timedelta(days=90))
    assert rules.window(None, day, NOW, 90) == (day - dt.timedelta(days=90), day)
    assert rules.window(day, day + dt.timedelta(days=90), NOW, 90)[1] == day + dt.timedelta(days=90)
    with pytest.raises(BadParameter, match="91 days apart"):
        rules.window(day, day + dt.timedelta(days=91), NOW, 90)


def test_moments() -> None:
    assert rules.moment("2026-03-01", "start_date", SH) == dt.datetime(2026, 3, 1, tzinfo=SH)
    assert rules.moment("2026-03-01", "end_date", SH, end=True) == dt.datetime(2026, 3, 2, tzinfo=SH)
    assert rules.moment("2026-03-01T08:00:00Z", "x", SH) == dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    assert rules.moment("2026-03-01 08:00", "x", SH) == dt.datetime(2026, 3, 1, 8, tzinfo=SH)
    assert rules.moment("  ", "x", SH) is None
    for bad in ("03/01/2026", "2026-02-30", "2026-03-01T24:61", "now"):
        with pytest.raises(BadParameter, match="ISO 8601"):
            rules.moment(bad, "start_date", SH)


QUESTIONS = [
    {"code": "size", "datatype": "number", "required": True, "description": "size"},
    {"code": "kind", "datatype": "multivaluelist", "required": False, "description": "kind",
     "values": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"}]},
    {"code": "when", "datatype": "datetime", "required": False, "description": "when"},
]  # fmt: skip


def test_answers() -> None:
    fields = {"attribute[size]": "2.5", "attribute[kind][]": ["a", "b"], "attribute[when]": "2026-01-01T08:00+08:00"}
    answers = rules.check_answers("E0401", QUESTIONS, rules.attribute_answers(fields))
    assert answers == {"size": "2.5", "kind": "a,b", "when": "2026-01-01T08:00+08:00"}
    nested = rules.attribute_answers({"attribute": {"size": 3, "kind": ["b"]}})
    assert rules.check_answers("E0401", QUESTIONS, nested) == {"size": "3", "kind": "b"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "attribute[size]"),
        ({"attribute[size]": " "}, "attribute[size]"),
        ({"attribute[size]": "inf"}, "attribute[size]"),
        ({"attribute[size]": ["1", "2"]}, "attribute[size]"),
        ({"attribute[size]": "1", "attribute[kind]": "c"}, "attribute[kind]"),
        ({"attribute[size]": "1", "attribute[when]": "soon"}, "attribute[when]"),
        ({"attribute[size]": "1", "attribute[colour]": "red"}, "attribute[colour]"),
    ],
)
def test_wrong_answers(fields: dict[str, object], field: str) -> None:
    with pytest.raises(BadParameter) as caught:
        rules.check_answers("E0401", QUESTIONS, rules.attribute_answers(fields))
    assert caught.value.extra["field"] == field


def test_statuses_and_names() -> None:
    assert rules.statuses("open") == rules.OPEN and rules.statuses("CLOSED") == rules.CLOSED
    assert rules.statuses("closed,open") == () and rules.statuses("") == ()
    assert "merged" not in rules.OPEN + rules.CLOSED and "verifying" in rules.OPEN
    assert full_name("梅梅", "韩") == "韩梅梅" and full_name("Mei", "Han") == "Mei Han"
    assert full_name(None, "Han") == "Han" and full_name(None, None) is None
