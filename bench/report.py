"""The results: a rich table on the console, bench/results/latest.json and latest.md (plus a timestamped copy)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.util import RESULTS, Row, console


def table(rows: list[Row], title: str) -> Table:
    t = Table(title=title, show_lines=True)
    t.add_column("benchmark", style="bold", no_wrap=True)
    t.add_column("target")
    t.add_column("measured")
    t.add_column("pass/miss", justify="center")
    t.add_column("notes", overflow="fold")
    for r in rows:
        style = {True: "green", False: "red", None: "dim"}[r.passed]
        t.add_row(r.benchmark, r.target, r.measured, f"[{style}]{r.verdict}[/{style}]", r.notes)
    return t


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", "<br>")


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        f"# grid-mgmt benchmarks — {meta['started_at']}",
        "",
        *(
            [f"**INTERRUPTED (exit {meta['interrupted']}): only what was measured before is below.**", ""]
            if meta.get("interrupted")
            else []
        ),
        f"Mode: {'quick (smoke check, scale 0.1, short runs)' if meta['quick'] else 'full'}; "
        f"command: `{meta['command']}`; total {meta['elapsed_s']:.0f} s.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB RAM, {m['os']}, kernel {m['kernel']}, "
        f"Python {m['python']}; load generator: {meta.get('load_generator', '?')}.",
        "",
        "| benchmark | target | measured | pass/miss | notes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {_md_escape(r.benchmark)} | {_md_escape(r.target)} | {_md_escape(r.measured)} | {r.verdict} "
            f"| {_md_escape(r.notes)} |"
        )
    lines += ["", "## Details", ""]
    for r in rows:
        if not r.details and not r.metrics:
            continue
        lines += [f"### {r.benchmark}", ""]
        if r.metrics:
            lines += ["```json", json.dumps(r.metrics, indent=2, default=str), "```", ""]
        cpu = r.details.get("cpu")
        if cpu:
            lines += [
                "CPU split during the measured window (cores = CPU-seconds / wall seconds):",
                "",
                "| process group | CPU s | cores | share |",
                "|---|---|---|---|",
            ]
            for name, g in cpu["groups"].items():
                lines.append(f"| {name} | {g['cpu_s']} | {g['cores']} | {g['share']:.0%} |")
            lines += [
                "",
                f"Machine busy: {cpu['system_busy_cores']} of {cpu['ncpu']} cores over {cpu['wall_s']} s.",
                "",
            ]
        top = r.details.get("top")
        if top:
            lines += ["`top -b -n1` mid-run:", "", "```", top, "```", ""]
        for key in ("stages", "timeline"):
            if r.details.get(key):
                lines += [f"{key}:", "", "```", json.dumps(r.details[key], indent=2, default=str), "```", ""]
    pg = meta.get("postgres")
    if pg:
        lines += ["## PostgreSQL", "", "```", json.dumps(pg, indent=2), "```", ""]
    lines += [
        "## Machine",
        "",
        "```",
        m["free_g"],
        "```",
        "",
        "```json",
        json.dumps(m["packages"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def save(rows: list[Row], meta: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "rows": [r.to_dict() for r in rows]}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = "-quick" if meta["quick"] else ""
    js = json.dumps(data, indent=2, default=str)
    md = markdown(rows, meta)
    latest_json, latest_md = RESULTS / "latest.json", RESULTS / "latest.md"
    latest_json.write_text(js)
    latest_md.write_text(md)
    (RESULTS / f"run-{stamp}{suffix}.json").write_text(js)
    (RESULTS / f"run-{stamp}{suffix}.md").write_text(md)
    return latest_json, latest_md


def show(rows: list[Row], meta: dict[str, Any]) -> None:
    title = f"grid-mgmt benchmarks ({'quick' if meta['quick'] else 'full'}) — {meta['machine']['nproc']} CPUs"
    if meta.get("interrupted"):
        title += " — INTERRUPTED"
    console.print(table(rows, title))
