"""Synthetic city layers for importer tests and the speed measurement: a lattice of 100 m grids near Zhushan."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
import shapely.geometry

from grid_mgmt.imports.service import LayerData

LON0, LAT0 = 110.23, 32.22
DISTRICT = "420323"
DEG_LAT = 100.0 / 110_574.0  # 100 m of latitude
DEG_LON = 100.0 / (111_320.0 * math.cos(math.radians(LAT0)))  # 100 m of longitude


@dataclass
class Lattice:
    """`side` × `side` communities of `cells` × `cells` grids of 100 m; one street per community column."""

    side: int = 2
    cells: int = 4

    @property
    def width(self) -> int:
        return self.side * self.cells

    def street(self, sx: int) -> str:
        return f"{DISTRICT}{sx + 1:03d}"

    def community(self, sx: int, sy: int) -> str:
        return f"{self.street(sx)}{sy + 1:03d}"

    def box(self, x0: int, y0: int, x1: int, y1: int) -> shapely.Polygon:
        """Cells [x0, x1) × [y0, y1) counted from the north-west corner (y grows southwards)."""
        return shapely.box(LON0 + x0 * DEG_LON, LAT0 - y1 * DEG_LAT, LON0 + x1 * DEG_LON, LAT0 - y0 * DEG_LAT)

    def regions(self) -> LayerData:
        codes, names, geoms = [DISTRICT], ["竹山县"], [self.box(0, 0, self.width, self.width)]
        c = self.cells
        for sx in range(self.side):
            codes.append(self.street(sx))
            names.append(f"街道{sx + 1}")
            geoms.append(self.box(sx * c, 0, (sx + 1) * c, self.width))
            for sy in range(self.side):
                codes.append(self.community(sx, sy))
                names.append(f"社区{sx + 1}-{sy + 1}")
                geoms.append(self.box(sx * c, sy * c, (sx + 1) * c, (sy + 1) * c))
        return LayerData(np.array(geoms, dtype=object), {"code": codes, "name": names})

    def grids(self) -> LayerData:
        """All grids, serials numbered west→east, north→south inside each community."""
        c = self.cells
        xs, ys = np.meshgrid(np.arange(self.width), np.arange(self.width), indexing="xy")
        xs, ys = xs.ravel(), ys.ravel()
        sx, sy = xs // c, ys // c
        serial = (ys % c) * c + (xs % c) + 1
        codes = [f"{DISTRICT}{a + 1:03d}{b + 1:03d}{s:03d}" for a, b, s in zip(sx, sy, serial, strict=True)]
        geoms = shapely.box(
            LON0 + xs * DEG_LON, LAT0 - (ys + 1) * DEG_LAT, LON0 + (xs + 1) * DEG_LON, LAT0 - ys * DEG_LAT
        )
        return LayerData(geoms, {"code": codes, "name": [f"网格{code[-6:]}" for code in codes]})

    def components(
        self, n: int, seed: int = 1, classes: tuple[str, ...] = ("0101", "0118"), first: int = 1
    ) -> LayerData:
        """`n` random points inside the lattice; codes 420323 + class + 6-digit serial from `first`, classes round robin."""
        rng = np.random.default_rng(seed)
        lon = LON0 + rng.uniform(0.01, self.width - 0.01, n) * DEG_LON
        lat = LAT0 - rng.uniform(0.01, self.width - 0.01, n) * DEG_LAT
        k = len(classes)
        codes = [f"{DISTRICT}{classes[i % k]}{i // k + first:06d}" for i in range(n)]
        return LayerData(shapely.points(lon, lat), {"code": codes})


#: The test city: district 420323, streets 001-002 with communities 001-002 each, 4 × 4 grids per community.
LATTICE = Lattice(side=2, cells=4)

#: Minimal dictionary rows the importer checks references against (regions come from `Lattice.regions`).
BASE_SQL = """
INSERT INTO category (code, kind, major_code, major_name, minor_code, name, name_en) VALUES
  ('C0101', 'component', '01', '公用设施', '0101', '上水井盖', 'water-supply manhole cover'),
  ('C0118', 'component', '01', '公用设施', '0118', '路灯', 'street lamp'),
  ('E0104', 'event', '01', '市容环境', '0104', '道路不洁', 'dirty road');
INSERT INTO unit (code, name, kind, level, parent_code) VALUES
  ('CGJ', '城市管理局', 'bureau', 1, NULL),
  ('SW01', '竹山县水务公司', 'water', 2, 'CGJ'),
  ('LD01', '路灯管理所', 'municipal', 2, 'CGJ');
"""


def feature_collection(geoms: list[shapely.Geometry | None], props: list[dict[str, object]]) -> dict[str, object]:
    """A GeoJSON FeatureCollection (RFC 7946, lon/lat)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": p,
                "geometry": None if g is None else shapely.geometry.mapping(g),
            }
            for g, p in zip(geoms, props, strict=True)
        ],
    }
