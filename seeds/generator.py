"""Generate the demo city of Zhushan county (竹山县, 420323) or the benchmark city: deterministic, vectorized."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grid_mgmt.imports.service import LayerData
from seeds.categories import load_categories
from seeds.components import build_components
from seeds.lattice import build_lattice
from seeds.network import build_pipes, build_roads
from seeds.params import CityParams, parse_scale, rng
from seeds.regions import Admin, build_admin, duty_grids, grids_layer, regions_layer
from seeds.units import build_units
from seeds.users import DEMO_PASSWORD, build_users, demo_logins

__all__ = ["City", "CityParams", "generate_city"]


@dataclass
class City:
    """A generated city, column by column, ready for `seeds.load.load_city`.

    Layers (`grid_mgmt.imports.service.LayerData`, WGS84): `regions` (district, streets, communities, parents
    first), `units` (parents first; street and community offices carry their area), `grids`, `pipelines`,
    `components`. Plain rows: `categories` (the class dictionary), `duty_grids` ({code, name, community_code}),
    `duty_grid_grids` ((grid code, duty grid code)), `duty_grid_workers` ((duty grid code, username)), `users`
    (no password hashes: every demo user's password is `password`, hashed once at load time).
    """

    params: CityParams
    district_code: str
    regions: LayerData
    units: LayerData
    grids: LayerData
    pipelines: LayerData
    components: LayerData
    categories: list[dict[str, Any]]
    duty_grids: list[dict[str, Any]]
    duty_grid_grids: list[tuple[str, str]]
    duty_grid_workers: list[tuple[str, str]]
    users: list[dict[str, Any]]
    password: str = DEMO_PASSWORD
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def layers(self) -> dict[str, LayerData]:
        """The importable layers in load order (parents before what references them)."""
        return {
            "regions": self.regions,
            "units": self.units,
            "grids": self.grids,
            "pipelines": self.pipelines,
            "components": self.components,
        }

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {
            "category": len(self.categories),
            "region": len(self.regions.geometries),
            "unit": len(self.units.geometries),
            "grid": len(self.grids.geometries),
            "pipeline": len(self.pipelines.geometries),
            "component": len(self.components.geometries),
            "duty_grid": len(self.duty_grids),
            "duty_grid_grid": len(self.duty_grid_grids),
            "app_user": len(self.users),
            "duty_grid_worker": len(self.duty_grid_workers),
        }

    def demo_logins(self) -> list[tuple[str, str, str]]:
        """(username, role, what for) of the logins worth showing; every password is `password`."""
        units = list(zip(self.units.columns["code"], self.units.columns["name"], strict=True))
        return demo_logins(self.duty_grids, units)


def generate_city(scale: str | float | CityParams = "demo", *, progress: Callable[[str], None] | None = None) -> City:
    """The city at `scale`: "demo" (≈2,000 grids, 20,000 components), "bench" (100,000 grids, 1,000,000
    components) or a float fraction of the benchmark city. Same scale, same output, every run."""
    params = parse_scale(scale)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now
        if progress:
            progress(name)

    categories = load_categories()
    lattice = build_lattice(params.grids, rng(params, 1))
    step("lattice")
    admin: Admin = build_admin(params, lattice)
    step("regions")
    units = build_units(admin)
    duties, links = duty_grids(admin, params)
    step("duty grids")
    roads = build_roads(lattice)
    pipes = build_pipes(roads, params)
    step("pipelines")
    components = build_components(params, admin, roads, pipes, units)
    step("components")
    unit_names = list(zip(units.codes, units.layer.columns["name"], strict=True))
    users, workers = build_users(params, admin.district_code, duties, unit_names)
    step("users")
    return City(
        params=params,
        district_code=admin.district_code,
        regions=regions_layer(admin),
        units=units.layer,
        grids=grids_layer(admin),
        pipelines=pipes.layer,
        components=components,
        categories=categories,
        duty_grids=duties,
        duty_grid_grids=links,
        duty_grid_workers=workers,
        users=users,
        timings=timings,
    )
