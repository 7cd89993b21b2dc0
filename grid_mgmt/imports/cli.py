"""The `grid-mgmt import LAYER FILE` subcommand: read a GIS file, map its fields, import it with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from grid_mgmt.imports.layers import LAYERS, get_spec
from grid_mgmt.imports.service import ImportReport, LayerData, import_layer

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
PROG = "grid-mgmt import"


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `import` to the `grid-mgmt` command."""
    parser = subparsers.add_parser(
        "import",
        help="import a city layer from a GeoJSON, Shapefile, GeoPackage or CSV (WKT) file",
        description=(
            "Validate every feature of FILE as the given layer and, if nothing is wrong, upsert all of them by code "
            "in one transaction; otherwise write nothing and list which features are wrong and why. "
            "Exit codes: 0 imported, 1 file rejected, 2 usage error."
        ),
        epilog=_columns_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(func=run)


def _columns_help() -> str:
    lines = ["columns per layer (* required; fields with these names are taken as they are, any case):"]
    for layer in LAYERS:
        spec = get_spec(layer)
        names = ", ".join(c.name + ("*" if c.required else "") for c in spec.columns)
        lines.append(f"  {layer:<10} {names}")
    return "\n".join(lines)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("layer", choices=LAYERS, help="which layer the file holds")
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="the file to import (.geojson, .shp/.zip, .gpkg, .csv with WKT)"
    )
    parser.add_argument("--crs", metavar="EPSG", help="EPSG code of the file's coordinates (overrides the file's own)")
    parser.add_argument(
        "--field-map",
        metavar="COLUMN=FIELD,...",
        action="append",
        default=[],
        help="read table COLUMN from file FIELD, e.g. --field-map code=BSM,name=MC (repeatable)",
    )
    parser.add_argument("--wkt-column", metavar="NAME", help="CSV column holding WKT (default: wkt/geometry/geom)")
    parser.add_argument("--dry-run", action="store_true", help="validate only; say what would be inserted/updated")
    parser.add_argument("--limit", type=int, default=50, help="problems listed per kind (default 50)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `import` on its own (tests, `python -m grid_mgmt.imports.cli`); returns the exit code."""
    parser = argparse.ArgumentParser(prog=PROG)
    _add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """The handler: 0 imported (or dry run clean), 1 rejected, 2 usage error."""
    err = Console(stderr=True, highlight=False)
    try:
        crs = parse_crs(args.crs)
        field_map = parse_field_map(args.field_map, args.layer)
        if not args.file.exists():
            raise UsageError(f"no such file: {args.file}")
    except UsageError as exc:
        err.print(f"{PROG}: error: {exc}", markup=False, soft_wrap=True)
        return EXIT_USAGE
    from geo.errors import GeoInputError
    from geo.loaders import read_file
    from grid_mgmt.settings import get_settings

    out = Console(highlight=False)
    with _Bar(err) as bar:
        try:
            loaded = read_file(args.file, crs=crs, wkt_column=args.wkt_column, progress=bar.reading)
        except GeoInputError as exc:
            bar.stop()
            err.print(
                f"{PROG}: {args.file.name} rejected, nothing written: {exc.message}", markup=False, soft_wrap=True
            )
            return EXIT_REJECTED
        try:
            columns = map_fields(loaded.columns, field_map, args.layer)
        except UsageError as exc:
            bar.stop()
            err.print(f"{PROG}: error: {exc}", markup=False, soft_wrap=True)
            return EXIT_USAGE
        data = LayerData(loaded.geometries, columns, dict(loaded.errors))
        try:
            report = asyncio.run(
                import_layer(get_settings().asyncpg_dsn, args.layer, data, progress=bar.stage, dry_run=args.dry_run)
            )
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError) as exc:
            bar.stop()
            err.print(f"{PROG}: database error, nothing written: {exc}", markup=False, soft_wrap=True)
            return EXIT_REJECTED
    return _show(out, err, report, args.limit)


def _show(out: Console, err: Console, report: ImportReport, limit: int) -> int:
    if report.ok:
        out.print(report.to_text(limit), markup=False, soft_wrap=True)
        return EXIT_OK
    err.print(report.to_text(limit), markup=False, soft_wrap=True)
    return EXIT_REJECTED


def parse_crs(text: str | None) -> int | None:
    """--crs as an EPSG code ("4547", "EPSG:4547"); UsageError when it is not a known one."""
    if text is None:
        return None
    raw = text.strip()
    if raw.upper().startswith("EPSG:"):
        raw = raw[5:]
    if not raw.isdigit():
        raise UsageError(f"--crs must be an EPSG code such as 4547 or EPSG:4326, got {text!r}")
    from geo.crs import check_epsg
    from geo.errors import GeoInputError

    try:
        check_epsg(int(raw))
    except GeoInputError as exc:
        raise UsageError(f"--crs {text}: {exc.message}") from None
    return int(raw)


def parse_field_map(items: Sequence[str], layer: str) -> dict[str, str]:
    """["code=BSM,name=MC"] → {"code": "BSM", "name": "MC"} (table column → file field)."""
    columns = get_spec(layer).column_names
    mapping: dict[str, str] = {}
    for item in items:
        for pair in item.split(","):
            if not pair.strip():
                continue
            column, sep, source = (part.strip() for part in pair.partition("="))
            if not sep or not column or not source:
                raise UsageError(f"--field-map wants COLUMN=FIELD pairs separated by commas, got {pair.strip()!r}")
            if column not in columns:
                raise UsageError(f"--field-map: {layer} have no column {column!r}; columns: {', '.join(columns)}")
            if column in mapping and mapping[column] != source:
                raise UsageError(f"--field-map: column {column!r} is mapped twice ({mapping[column]}, {source})")
            mapping[column] = source
    return mapping


def map_fields(fields: dict[str, Any], mapping: dict[str, str], layer: str) -> dict[str, Any]:
    """Table columns from file fields: explicit mapping first, then same-named fields (case-insensitive)."""
    unknown = [source for source in mapping.values() if source not in fields]
    if unknown:
        raise UsageError(
            f"--field-map names field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} that the file "
            f"does not have; its fields are: {', '.join(fields) or '(none)'}"
        )
    columns = {column: fields[source] for column, source in mapping.items()}
    used = set(mapping.values())
    by_lower = {name.lower(): name for name in fields if name not in used}
    for column in get_spec(layer).column_names:
        if column in columns:
            continue
        source = column if column in fields and column not in used else by_lower.get(column)
        if source is not None:
            columns[column] = fields[source]
            used.add(source)
    for name in fields:  # the rest keep their names, so the report can list them as ignored
        if name not in used and name not in columns:
            columns[name] = fields[name]
    return columns


class _Bar:
    """A rich progress display with one bar per stage: reading, validating, loading, upserting, indexing."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.progress.stop()

    def _task(self, name: str, total: int | None) -> TaskID:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)
        return self.tasks[name]

    def reading(self, done: int) -> None:
        self.progress.update(self._task("reading", None), completed=done, total=done or None)

    def stage(self, name: str, done: int, total: int) -> None:
        self.progress.update(self._task(name, total), completed=done, total=total)


if __name__ == "__main__":
    sys.exit(main())
