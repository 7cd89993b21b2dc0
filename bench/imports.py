"""`import`: 1,000,000 components into the bench database through `grid_mgmt.imports.service.import_layer`."""

# Runs (each after a CHECKPOINT, so one run's dirty pages are not written in the next one's window):
#   * fresh (insert): TRUNCATE component, then import the generated components — graded;
#   * re-import, same rows: the same features again; every row exists and is identical — graded;
#   * re-import, every row changed: a new `note` on every feature, so all rows are rewritten — graded;
#   * variant (full runs): the re-import without `grid_code`, so the importer assigns every component to its
#     grid spatially (what a survey file without grid codes costs);
#   * file (full runs, --file): write the components to a GeoPackage and time `grid-mgmt import components
#     FILE` (process start + read + import), and `geo.loaders.read_file` alone.
#
# Stage timings come from the importer's progress callback (validation steps, loading=COPY, upserting,
# indexing) and from polling pg_stat_activity for the import's connection (which statement runs when).

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import shapely

from bench import procs
from bench.city import BenchDB, get_city
from bench.cpu import CpuMeter, describe, foreign_cores, wait_quiet
from bench.pgstat import Timeline
from bench.util import RESULTS, ROOT, Row, console

TARGET_RATE = 50_000
TARGET = f"≥ {TARGET_RATE:,} features/s"
APP_NAME = "grid-mgmt import components"
#: Longest wait for other users' load to stop before each import (set from --quiet-wait).
quiet_wait_s = 90.0
#: Re-measure an import during which other users' processes used more cores than this (--max-noise)…
max_noise = 0.3
#: …at most this many times (--retries).
retries = 1
VALIDATION_STEPS = ("codes", "values", "geometries", "derive", "references", "spatial rules + defaults")


class Stages:
    """Timestamps of the importer's progress callbacks → seconds per stage."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, int, int]] = []
        self.t0 = time.perf_counter()
        self.t_end = 0.0
        self._last_print = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.events.append((now, stage, done, total))
        if now - self._last_print > 3 or (stage != "loading" and stage != "upserting"):
            console.print(f"[dim]    {now - self.t0:6.1f} s  {stage} {done:,}/{total:,}[/dim]")
            self._last_print = now

    @staticmethod
    def _phase(stage: str, done: int, total: int) -> str:
        """What runs after the importer reported (stage, done, total)."""
        if stage == "validating":
            return f"validate: {VALIDATION_STEPS[done]}" if done < len(VALIDATION_STEPS) else "WKB + begin + temp table"
        if stage == "loading":
            return "COPY into staging" if done < total else "after COPY (analyze staging, drop indexes)"
        if stage == "upserting":
            return "upsert: INSERT … ON CONFLICT" if done < total else "after upsert"
        if stage == "indexing":
            return f"rebuild index #{done + 1}" if done < total else "commit + close"
        return f"{stage} {done}/{total}"

    def seconds(self) -> dict[str, float]:
        """Seconds per phase: each callback starts the phase `_phase` names, until the next callback."""
        out: dict[str, float] = {}
        prev_t, label = self.t0, "connect + setup"
        for t, stage, done, total in self.events:
            out[label] = out.get(label, 0.0) + (t - prev_t)
            prev_t, label = t, self._phase(stage, done, total)
        if self.t_end:
            out[label] = out.get(label, 0.0) + (self.t_end - prev_t)
        return {k: round(v, 2) for k, v in out.items() if v >= 0.005}


def _copy_data(data: Any, drop: tuple[str, ...] = ()) -> Any:
    """A fresh LayerData (columns copied, so one run cannot affect the next)."""
    from grid_mgmt.imports.service import LayerData

    return LayerData(
        geometries=data.geometries,
        columns={k: list(v) for k, v in data.columns.items() if k not in drop},
        errors=dict(data.errors),
    )


async def _sql(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


async def _truncate(dsn: str) -> str:
    """Empty the component table for the fresh-insert run, without touching any other table's rows.

    Foreign keys into `component` (e.g. `cases.component_code`) block a plain TRUNCATE. When no row of a
    referencing table actually points at a component (NULLs only), one transaction drops those constraints,
    truncates `component` and adds them back (validated again, so the schema is unchanged; if anything fails,
    the transaction rolls everything back). A DELETE instead would run one foreign-key check per deleted
    row, each a scan of the referencing table when its column has no index: hours for 1M rows. When rows do
    point at components, emptying the table would break them, so the benchmark refuses.
    """
    conn = await asyncpg.connect(dsn)
    try:
        fks = await conn.fetch(
            "SELECT c.conrelid::regclass::text AS tbl, c.conname AS name, pg_get_constraintdef(c.oid) AS def,"
            " array_agg(a.attname::text ORDER BY a.attnum) AS cols"
            " FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
            " WHERE c.contype = 'f' AND c.confrelid = 'component'::regclass AND c.conrelid <> c.confrelid"
            " GROUP BY 1, 2, 3"
        )
        if not fks:
            await conn.execute("TRUNCATE component")
            return "TRUNCATE component"
        used = []
        for fk in fks:
            cond = " OR ".join(f"{col} IS NOT NULL" for col in fk["cols"])
            n = await conn.fetchval(f"SELECT count(*) FROM {fk['tbl']} WHERE {cond}")
            if n:
                used.append(f"{n:,} rows of {fk['tbl']}")
        if used:
            raise RuntimeError(
                f"cannot empty component for the fresh-insert run: {', '.join(used)} reference components"
            )
        async with conn.transaction():
            for fk in fks:
                await conn.execute(f"ALTER TABLE {fk['tbl']} DROP CONSTRAINT {fk['name']}")
            await conn.execute("TRUNCATE component")
            for fk in fks:
                await conn.execute(f"ALTER TABLE {fk['tbl']} ADD CONSTRAINT {fk['name']} {fk['def']}")
        names = ", ".join(f"{fk['tbl']}.{fk['name']}" for fk in fks)
        return f"TRUNCATE component (foreign keys {names} dropped and re-added around it: no row used them)"
    finally:
        await conn.close()


async def _table_facts(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            "rows": int(await conn.fetchval("SELECT count(*) FROM component")),
            "indexes": [
                r["indexname"]
                for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'component' ORDER BY 1")
            ],
            "size": await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('component'))"),
            "reltuples": float(await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'component'::regclass")),
        }
    finally:
        await conn.close()


def _one(db: BenchDB, data: Any, label: str, *, expect: str, graded: bool, n_total: int) -> Row:
    from grid_mgmt.imports.service import import_layer

    quiet = wait_quiet(max_wait=quiet_wait_s)
    asyncio.run(_sql(db.dsn, "CHECKPOINT"))
    before = asyncio.run(_table_facts(db.dsn))
    stages = Stages()
    console.print(f"  {label}: importing {n_total:,} features ({before['rows']:,} rows in the table)")
    with CpuMeter(database=db.name, top_at=10.0) as meter, Timeline(db.dsn, APP_NAME) as timeline:
        stages.t0 = time.perf_counter()
        report = asyncio.run(import_layer(db.dsn, "components", data, progress=stages))
        stages.t_end = time.perf_counter()
    wall = stages.t_end - stages.t0
    after = asyncio.run(_table_facts(db.dsn))
    rate = n_total / wall
    split = meter.split()
    unchanged = getattr(report, "unchanged", 0)
    if expect == "insert":
        ok = report.ok and report.inserted == n_total
    elif expect == "update":
        ok = report.ok and report.updated == n_total
    else:  # "upsert": every row existed; updated or (identical, skipped) unchanged
        ok = report.ok and report.inserted == 0 and report.updated + unchanged == n_total
    console.print(f"  {label}: {report.summary()}")
    if not report.ok:
        console.print(report.to_text(limit=5))
    stage_s = stages.seconds()
    biggest = sorted(stage_s.items(), key=lambda kv: -kv[1])[:3]
    notes = [
        f"{wall:.1f} s for {n_total:,}: inserted {report.inserted:,}, updated {report.updated:,}"
        + (f", unchanged {unchanged:,}" if unchanged else ""),
        "slowest: " + ", ".join(f"{k} {v:.1f} s" for k, v in biggest),
        describe(split),
    ]
    if not ok:
        notes.insert(0, "import FAILED or counts wrong: " + report.to_text(limit=3).replace("\n", " | ")[:300])
    if not quiet["quiet"]:
        notes.append(f"machine busy before the run: {quiet['busy_cores_last']} cores")
    return Row(
        benchmark=label,
        target=TARGET if graded else f"diagnostic (target {TARGET})",
        measured=f"{rate:,.0f} features/s" if ok else "rejected / failed",
        passed=(ok and rate >= TARGET_RATE) if graded else (None if ok else False),
        notes="; ".join(notes),
        metrics={
            "features": n_total,
            "seconds": round(wall, 2),
            "report_seconds": round(report.seconds, 2),
            "features_per_s": round(rate, 1),
            "inserted": report.inserted,
            "updated": report.updated,
            "ok": report.ok,
            "stages_s": stage_s,
        },
        details={
            "cpu": split,
            "top": meter.top_snapshot,
            "stages": stage_s,
            "timeline": timeline.summary(),
            "table_before": before,
            "table_after": after,
            "report": report.to_text(limit=10),
            "quiet_before": quiet,
        },
    )


def _geometry_mix(geoms: np.ndarray[Any, Any]) -> dict[str, int]:
    names = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon"}
    ids, counts = np.unique(shapely.get_type_id(geoms), return_counts=True)
    return {names.get(int(i), str(i)): int(c) for i, c in zip(ids, counts, strict=True)}


def _write_gpkg(data: Any, path: Path) -> float:
    """The components as a GeoPackage (pyogrio); returns seconds."""
    import pyogrio.raw

    t0 = time.perf_counter()
    fields, arrays = [], []
    for name, values in data.columns.items():
        if name == "attributes":
            arr = np.array([json.dumps(v, ensure_ascii=False) if v is not None else None for v in values], dtype=object)
        elif name in ("survey_date", "change_date"):
            arr = np.array([v.isoformat() if v is not None else None for v in values], dtype=object)
        else:
            arr = np.array(values, dtype=object)
        fields.append(name)
        arrays.append(arr)
    wkb = shapely.to_wkb(data.geometries, output_dimension=2)
    path.unlink(missing_ok=True)
    pyogrio.raw.write(
        path,
        wkb,
        arrays,
        fields,
        driver="GPKG",
        geometry_type="Unknown",
        crs="EPSG:4326",
        layer="components",
        encoding="UTF-8",
    )
    return time.perf_counter() - t0


def _file_import(db: BenchDB, data: Any, n_total: int) -> Row:
    """Write a GeoPackage and time `grid-mgmt import components FILE` end to end (a re-import: updates)."""
    path = RESULTS / "cache" / f"components-{db.name}.gpkg"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_s = _write_gpkg(data, path)
    console.print(f"  wrote {path.name} ({path.stat().st_size / 1e6:,.0f} MB) in {write_s:.1f} s")
    exe = shutil.which("grid-mgmt", path=str(Path(sys.executable).parent)) or "grid-mgmt"
    argv = [exe, "import", "components", str(path)]
    env = {**os.environ, "GRID_DATABASE_URL": db.url, "PYTHONPATH": str(ROOT)}
    wait_quiet(max_wait=quiet_wait_s)
    asyncio.run(_sql(db.dsn, "CHECKPOINT"))
    t0 = time.perf_counter()
    with CpuMeter(database=db.name) as meter:
        cp = procs.run(argv, timeout=1800, env=env)
    wall = time.perf_counter() - t0
    out = (cp.stdout + cp.stderr).strip()
    ok = cp.returncode == 0
    rate = n_total / wall
    m = re.search(r"features, .* in ([0-9.]+) s", out)
    cli_import_s = float(m.group(1)) if m else None
    # Reading alone, in this process: geo.loaders.read_file (what the CLI does before import_layer).
    from geo.loaders import read_file

    t1 = time.perf_counter()
    loaded = read_file(path)
    read_s = time.perf_counter() - t1
    read_note = f"reading alone (geo.loaders.read_file) {read_s:.1f} s = {loaded.count / read_s:,.0f} features/s"
    return Row(
        benchmark="import from GeoPackage (CLI)",
        target=f"diagnostic (target {TARGET})",
        measured=f"{rate:,.0f} features/s" if ok else "failed",
        passed=None if ok else False,
        notes=f"`grid-mgmt import components FILE` (same rows again): {wall:.1f} s end to end"
        + (f", of which import_layer {cli_import_s:.1f} s" if cli_import_s else "")
        + f"; {read_note}; {describe(meter.split())}"
        + ("" if ok else f"; exit {cp.returncode}: {out[-300:]}"),
        metrics={
            "seconds": round(wall, 2),
            "features_per_s": round(rate, 1),
            "file_mb": round(path.stat().st_size / 1e6),
            "write_gpkg_s": round(write_s, 1),
            "cli_import_layer_s": cli_import_s,
            "read_file_s": round(read_s, 2),
            "exit": cp.returncode,
        },
        details={"cpu": meter.split(), "output": out[-4000:], "command": " ".join(argv)},
    )


def _measured(
    db: BenchDB,
    label: str,
    make: Any,
    *,
    prepare: Any = None,
    expect: str,
    graded: bool,
    n_total: int,
) -> Row:
    """`_one`, measured again (after `prepare()`) while other users' load spoiled it; keeps the quietest."""
    best: Row | None = None
    attempts: list[dict[str, Any]] = []
    for attempt in range(1 + max(0, retries)):
        if prepare is not None:
            prepare()
        row = _one(db, make(), label, expect=expect, graded=graded, n_total=n_total)
        noise = foreign_cores(row.details["cpu"])
        attempts.append({"features_per_s": row.metrics["features_per_s"], "noise_cores": round(noise, 2)})
        if best is None or noise < foreign_cores(best.details["cpu"]):
            best = row
        if noise <= max_noise or not row.metrics["ok"]:
            break
        if attempt < retries:
            console.print(f"[yellow]  {label}: other users' processes took {noise:.2f} cores; measuring again[/yellow]")
    assert best is not None
    best.metrics["attempts"] = attempts
    if len(attempts) > 1:
        best.notes += f"; measured {len(attempts)}× because of other users' load, kept the quietest"
    return best


def run(
    db: BenchDB, *, upsert: bool = True, variants: bool = True, file: bool = False, sink: list[Row] | None = None
) -> list[Row]:
    """The import runs; rows are appended to `sink` (returned) as they are measured."""
    city = get_city(db)
    data = city.components
    n = len(data.geometries)
    mix = _geometry_mix(np.asarray(data.geometries))
    console.print(f"  {n:,} components: {mix}; columns: {', '.join(data.columns)}")
    rows: list[Row] = sink if sink is not None else []
    how: list[str] = []

    def vacuum() -> None:  # the previous run's dead row versions would otherwise slow this one down
        asyncio.run(_sql(db.dsn, "VACUUM ANALYZE component"))

    def empty_table() -> None:
        how.append(asyncio.run(_truncate(db.dsn)))
        console.print(f"  emptied the table: {how[-1]}")

    fresh = _measured(
        db,
        "import fresh (insert)",
        lambda: _copy_data(data),
        prepare=empty_table,
        expect="insert",
        graded=True,
        n_total=n,
    )
    fresh.notes += f"; geometries {mix}; emptied by {how[-1]}"
    rows.append(fresh)
    ok = bool(fresh.metrics["ok"])
    if upsert and ok:
        rows.append(
            _measured(
                db, "re-import, same rows (upsert)", lambda: _copy_data(data), expect="upsert", graded=True, n_total=n
            )
        )

        def changed() -> Any:
            d = _copy_data(data)
            d.columns["note"] = [f"bench re-import {time.time_ns()}"] * n  # differs from every earlier run
            return d

        row = _measured(
            db,
            "re-import, every row changed (upsert)",
            changed,
            prepare=vacuum,
            expect="update",
            graded=True,
            n_total=n,
        )
        row.notes = "a new `note` on every feature, so all rows are rewritten; " + row.notes
        rows.append(row)
    if variants and ok:
        row = _measured(
            db,
            "re-import, grid_code derived (diag)",
            lambda: _copy_data(data, drop=("grid_code",)),
            prepare=vacuum,
            expect="upsert",
            graded=False,
            n_total=n,
        )
        row.notes = "grid_code dropped: the importer assigns each component to its grid (STRtree); " + row.notes
        rows.append(row)
    if file and ok:
        rows.append(_file_import(db, data, n))
    asyncio.run(_sql(db.dsn, "ANALYZE component"))
    return rows
