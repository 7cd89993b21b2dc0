"""Where each component class is placed, how many there are, who supervises, owns and maintains them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Placeholders resolved per component: the street office of its street, the sanitation team serving its
#: street, the community office of its community (the street office where there is none).
STREET, TEAM, COMMUNITY = "@street", "@team", "@community"

_RES, _COM, _PUB, _IND, _ROAD, _GREEN = range(6)  # indices into seeds.regions.LAND_USES


@dataclass(frozen=True)
class Placement:
    """How one component class is laid out.

    mode: "pipe" (on a pipeline of kind `where`, or any kind for "any"), "road" (beside a street, `offset` m
    from its centre line, either side), "corner" (at an intersection, `offset` m diagonally), "interior"
    (anywhere inside a grid, preferring `land_uses`), "line_road" (a railing along a street at `offset`),
    "line_water" (a railing along the river), "polygon" (a rectangle inside a grid, preferring `land_uses`).
    """

    category: str
    weight: float
    mode: str
    offset: float = 0.0
    where: str = ""
    accuracy: str = "B"
    supervisor: str | None = None
    owner: str | None = None
    maintainer: str | None = None
    land_uses: tuple[int, ...] = ()
    attributes: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def _p(
    category: str, weight: float, mode: str, units: tuple[str | None, str | None, str | None], **kw: Any
) -> Placement:
    return Placement(category, weight, mode, supervisor=units[0], owner=units[1], maintainer=units[2], **kw)


_COVER = {"material": ("球墨铸铁", "复合材料", "钢纤维混凝土"), "shape": ("圆形", "方形")}
_DRAIN = ("U02", "U0201", "U0201")
_LAMPS = ("U01", "U0103", "U0103")
_GREEN_UNITS = ("U01", "U0102", "U0102")
_SANITATION = ("U01", "U0101", TEAM)
_POLICE = ("U05", "U05", "U05")

PLACEMENTS: tuple[Placement, ...] = (
    _p("C0101", 0.050, "pipe", ("U02", "U06", "U06"), where="water", accuracy="A", attributes=_COVER),
    _p("C0102", 0.060, "pipe", _DRAIN, where="sewage", accuracy="A", attributes=_COVER),
    _p("C0103", 0.050, "pipe", _DRAIN, where="storm", accuracy="A", attributes=_COVER),
    _p("C0104", 0.060, "road", _DRAIN, offset=7.5, accuracy="A", attributes={"material": ("球墨铸铁", "复合材料")}),
    _p("C0105", 0.030, "pipe", ("U02", "U08", "U08"), where="power", accuracy="A", attributes=_COVER),
    _p("C0106", 0.020, "road", _LAMPS, offset=12.8, accuracy="A", attributes=_COVER),
    _p("C0107", 0.040, "pipe", ("U02", "U09", "U09"), where="telecom", accuracy="A", attributes=_COVER),
    _p("C0110", 0.010, "pipe", ("U02", "U10", "U10"), where="heat", accuracy="A", attributes=_COVER),
    _p("C0111", 0.030, "pipe", ("U02", "U07", "U07"), where="gas", accuracy="A", attributes=_COVER),
    _p("C0113", 0.015, "road", ("U06", "U06", "U06"), offset=10.5, attributes={"type": ("地上式", "地下式")}),
    _p("C0114", 0.005, "pipe", ("U01", None, "U0103"), where="any", accuracy="A", attributes=_COVER),
    _p("C0116", 0.010, "road", ("U08", "U08", "U08"), offset=15.5, attributes={"type": ("配电柜", "电缆分支箱")}),
    _p("C0117", 0.030, "road", _LAMPS, offset=12.5),
    _p(
        "C0118",
        0.080,
        "road",
        _LAMPS,
        offset=12.0,
        attributes={"lamp_type": ("LED", "高压钠灯"), "power_w": (60, 90, 120, 150), "pole_height_m": (8, 10, 12)},
    ),
    _p("C0121", 0.002, "road", ("U01", "U01", "U01"), offset=15.0),
    _p("C0123", 0.003, "road", ("U11", "U11", "U11"), offset=14.0),
    _p("C0126", 0.010, "interior", (STREET, COMMUNITY, COMMUNITY), land_uses=(_RES, _GREEN, _PUB)),
    _p("C0134", 0.010, "road", ("U08", "U08", "U08"), offset=16.0, attributes={"capacity_kva": (200, 400, 630)}),
    _p("C0136", 0.015, "corner", _POLICE, offset=11.0),
    _p(
        "C0201",
        0.005,
        "polygon",
        ("U01", STREET, STREET),
        land_uses=(_COM, _PUB, _ROAD),
        attributes={"spaces": (20, 40, 60, 100), "charging": ("收费", "免费")},
    ),
    _p("C0203", 0.008, "road", ("U03", "U03", "U03"), offset=13.5),
    _p("C0205", 0.001, "corner", ("U02", "U0103", "U0103"), offset=14.0),
    _p(
        "C0209",
        0.040,
        "road",
        _POLICE,
        offset=11.0,
        attributes={"type": ("禁令标志", "指示标志", "警告标志", "指路标志")},
    ),
    _p("C0210", 0.010, "corner", _POLICE, offset=10.5),
    _p("C0211", 0.010, "line_road", ("U05", "U05", "U0103"), offset=9.8),
    _p("C0213", 0.015, "corner", ("U04", "U0103", "U0103"), offset=13.0),
    _p("C0301", 0.004, "interior", _SANITATION, land_uses=(_PUB, _GREEN, _COM), attributes={"grade": ("一类", "二类")}),
    _p("C0304", 0.005, "interior", _SANITATION, land_uses=(_RES,)),
    _p(
        "C0305",
        0.080,
        "road",
        _SANITATION,
        offset=11.5,
        attributes={"capacity_l": (120, 240), "sorting": ("分类", "不分类")},
    ),
    _p("C0307", 0.050, "road", ("U01", None, STREET), offset=18.0, accuracy="C"),
    _p(
        "C0401",
        0.001,
        "interior",
        _GREEN_UNITS,
        accuracy="A",
        land_uses=(_GREEN, _PUB),
        attributes={"species": ("银杏", "黄连木", "皂荚", "朴树"), "age_years": (120, 200, 300)},
    ),
    _p(
        "C0402",
        0.140,
        "road",
        _GREEN_UNITS,
        offset=13.0,
        attributes={"species": ("香樟", "法国梧桐", "银杏", "桂花", "女贞", "栾树"), "dbh_cm": (12, 18, 25, 32)},
    ),
    _p("C0403", 0.040, "road", _GREEN_UNITS, offset=13.2),
    _p(
        "C0405",
        0.020,
        "polygon",
        _GREEN_UNITS,
        accuracy="C",
        land_uses=(_GREEN, _RES, _PUB),
        attributes={"green_type": ("街旁绿地", "社区公园", "防护绿地")},
    ),
    _p("C0406", 0.002, "interior", _GREEN_UNITS, land_uses=(_GREEN, _PUB, _COM)),
    _p("C0407", 0.020, "road", _GREEN_UNITS, offset=14.5),
    _p("C0501", 0.010, "interior", (STREET, COMMUNITY, COMMUNITY), land_uses=(_RES, _PUB)),
    _p("C0602", 0.002, "polygon", ("U02", None, None), accuracy="C", land_uses=(_RES, _COM, _IND)),
    _p("C0604", 0.004, "line_water", _LAMPS),
)
