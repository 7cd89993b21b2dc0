"""Fixtures for geo tests: sample points and writers for small GIS/CSV files in tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pyproj
import pytest
import shapely

DRIVERS = {"geojson": "GeoJSON", "shp": "ESRI Shapefile", "gpkg": "GPKG", "gdb": "OpenFileGDB", "fgb": "FlatGeobuf"}


@dataclass(frozen=True)
class Sample:
    """Points around Shiyan, Hubei (110.23E 32.22N) in WGS84, with Chinese names."""

    lon: np.ndarray[Any, Any]
    lat: np.ndarray[Any, Any]
    names: list[str | None]

    @property
    def points(self) -> np.ndarray[Any, Any]:
        return np.asarray(shapely.points(self.lon, self.lat), dtype=object)


@pytest.fixture
def sample() -> Sample:
    return Sample(
        lon=np.array([110.23, 110.2512345, 110.19, 110.3]),
        lat=np.array([32.22, 32.2298765, 32.18, 32.25]),
        names=["十堰", "茅箭区", "张湾区", None],
    )


def _project(geoms: Any, epsg: int) -> np.ndarray[Any, Any]:
    t = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)

    def apply(xy: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        x, y = t.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), apply), dtype=object)


@pytest.fixture
def project() -> Callable[[Any, int], np.ndarray[Any, Any]]:
    """``project(wgs84_geoms, epsg)`` → geometries in that EPSG (lon/lat axis order)."""
    return _project


@pytest.fixture
def write_layer(tmp_path: Path) -> Callable[..., Path]:
    """``write_layer("a.gpkg", geoms, crs="EPSG:4547", fields={...})`` writes with pyogrio into tmp_path."""

    def write(
        name: str,
        geoms: Any,
        *,
        crs: str | None,
        fields: dict[str, np.ndarray[Any, Any]] | None = None,
        geometry_type: str = "Unknown",
        layer_options: dict[str, str] | None = None,
    ) -> Path:
        path = tmp_path / name
        data = fields if fields is not None else {"n": np.arange(len(geoms), dtype=np.int64)}
        pyogrio.raw.write(
            str(path),
            shapely.to_wkb(np.asarray(geoms, dtype=object)),
            list(data.values()),
            list(data.keys()),
            driver=DRIVERS[path.suffix.lstrip(".")],
            geometry_type=geometry_type,
            crs=crs,
            layer_options=layer_options,
        )
        return path

    return write


@pytest.fixture
def write_geojson(tmp_path: Path) -> Callable[..., Path]:
    """``write_geojson("a.geojson", features, **foreign_members)`` writes a FeatureCollection by hand."""

    def write(name: str, features: list[dict[str, Any]], **extra: Any) -> Path:
        path = tmp_path / name
        doc = {"type": "FeatureCollection", "features": features, **extra}
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[..., Path]:
    """``write_text("a.csv", text, encoding="utf-8")`` writes a text file into tmp_path."""

    def write(name: str, text: str, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return write
