"""The `grid-mgmt seed` command: generate and load the demo or benchmark city, with progress and a summary."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from seeds.generator import City, generate_city
from seeds.load import SeedError, is_loaded, load_city
from seeds.params import CityParams, parse_scale
from seeds.users import DEMO_LOGINS, DEMO_PASSWORD, demo_logins

__all__ = ["DEMO_LOGINS", "demo_logins", "register", "run"]

_GENERATION_STEPS = ("lattice", "regions", "duty grids", "pipelines", "components", "users")


def _scale(text: str) -> CityParams:
    try:
        return parse_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `seed [--scale demo|bench|FLOAT] [--if-empty] [--keep]`."""
    parser = subparsers.add_parser(
        "seed",
        help="load the demo city of Zhushan county (竹山县) or the benchmark city",
        description="Generate the city (deterministic) and load it into GRID_DATABASE_URL. Every demo password is "
        f"'{DEMO_PASSWORD}'.",
    )
    parser.add_argument(
        "--scale",
        type=_scale,
        default=parse_scale("demo"),
        help="demo (≈2,000 grids, 20,000 components; default), bench (100,000 grids, 1,000,000 components) "
        "or a fraction of bench such as 0.1",
    )
    parser.add_argument("--if-empty", action="store_true", help="do nothing when a city is already loaded")
    parser.add_argument("--keep", action="store_true", help="upsert over the loaded city instead of deleting it first")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `grid-mgmt seed`."""
    from grid_mgmt.settings import get_settings

    console = Console()
    dsn = get_settings().asyncpg_dsn
    try:
        return asyncio.run(_seed(console, dsn, args.scale, if_empty=args.if_empty, replace=not args.keep))
    except SeedError as exc:
        console.print(f"[red]seed failed:[/red] {exc}", markup=True, highlight=False)
    except asyncpg.UndefinedTableError as exc:
        console.print(f"[red]seed failed:[/red] {exc}; migrate first: grid-mgmt db upgrade", highlight=False)
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(f"[red]seed failed:[/red] cannot use the database: {exc}", highlight=False)
    return 1


async def _seed(console: Console, dsn: str, params: CityParams, *, if_empty: bool, replace: bool) -> int:
    if if_empty and await is_loaded(dsn):
        console.print("a city is already loaded; nothing to do (--if-empty)")
        return 0
    started = time.perf_counter()
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        gen = bar.add_task(f"generating ({params.name})", total=len(_GENERATION_STEPS))
        city = await asyncio.to_thread(generate_city, params, progress=lambda _step: bar.advance(gen))
        generated = time.perf_counter()

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        counts = await load_city(dsn, city, progress=progress, replace=replace)
    loaded = time.perf_counter()
    _summary(console, city, counts, generated - started, loaded - generated)
    return 0


def _summary(console: Console, city: City, counts: dict[str, int], gen_s: float, load_s: float) -> None:
    table = Table(title=f"{city.params.name} city: generated {gen_s:.1f} s, loaded {load_s:.1f} s")
    table.add_column("table")
    table.add_column("generated", justify="right")
    table.add_column("rows in database", justify="right")
    generated: dict[str, Any] = city.counts()
    for name, rows in counts.items():
        table.add_row(name, f"{generated.get(name, 0):,}", f"{rows:,}")
    console.print(table)
    logins = Table(title=f"demo logins (password '{city.password}')")
    for column in ("username", "role", "for"):
        logins.add_column(column)
    for row in city.demo_logins():
        logins.add_row(*row)
    console.print(logins)
