"""Scale presets of the generated city (demo, bench, or a float fraction of the benchmark city)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).parent / "data"

#: Root of every random stream; each stage derives its own stream from it (see `rng`).
SEED = 420323

#: Benchmark city size; a float scale is a fraction of it.
BENCH_GRIDS = 100_000


@dataclass(frozen=True, slots=True)
class CityParams:
    """How big the generated city is. Counts of grids and components are targets, met to within ~1 %."""

    name: str
    grids: int
    communities: int
    streets: int
    components: int
    duty_grid_size: int = 40
    seed: int = SEED


DEMO = CityParams(name="demo", grids=2_000, communities=12, streets=3, components=20_000)
BENCH = CityParams(name="bench", grids=BENCH_GRIDS, communities=500, streets=20, components=1_000_000)


def parse_scale(scale: str | float | CityParams) -> CityParams:
    """`"demo"`, `"bench"` or a positive float: the fraction of the benchmark city (0.02 ≈ demo size)."""
    if isinstance(scale, CityParams):
        return scale
    if isinstance(scale, str):
        key = scale.strip().lower()
        if key == "demo":
            return DEMO
        if key == "bench":
            return BENCH
        try:
            factor = float(key)
        except ValueError:
            raise ValueError(f"scale must be 'demo', 'bench' or a positive number, not {scale!r}") from None
    else:
        factor = float(scale)
    if not math.isfinite(factor) or factor <= 0 or factor > 10:
        raise ValueError(f"scale factor must be in (0, 10], not {factor!r}")
    grids = max(60, round(BENCH_GRIDS * factor))
    communities = max(1, round(grids / 200))
    streets = max(1, min(communities, round(0.9 * math.sqrt(communities))))
    return CityParams(name=f"x{factor:g}", grids=grids, communities=communities, streets=streets, components=10 * grids)


def rng(params: CityParams, stage: int) -> np.random.Generator:
    """An independent, reproducible random stream per generation stage."""
    return np.random.default_rng([params.seed, stage])


@cache
def load_json(name: str) -> Any:
    """A data file of seeds/data, parsed (cached; treat the result as read-only)."""
    with (DATA / name).open(encoding="utf-8") as f:
        return json.load(f)
